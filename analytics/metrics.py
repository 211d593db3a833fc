"""The metrics of METRICS.md as pure functions over plain records.

Each public function is named after its metric id. No database, no network, no clock:
the period's facts are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analytics.records import MemberActivity, PeriodFacts


@dataclass(frozen=True, slots=True)
class ActivityRule:
    """``active_members``: at least ``min_messages`` messages and ``min_active_days`` days."""

    min_messages: int = 1
    min_active_days: int = 0


@dataclass(frozen=True, slots=True)
class RankEntry:
    position: int
    member: str
    name: str | None
    messages: int
    opted_out: bool


@dataclass(frozen=True, slots=True)
class Change:
    """A countable metric beside its value in the previous period."""

    value: float | int | None
    previous: float | int | None

    @property
    def delta(self) -> float | int | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def delta_pct(self) -> float | None:
        """The change as a fraction of the previous value (None when that was 0)."""
        delta = self.delta
        if delta is None or not self.previous:
            return None
        return delta / self.previous

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "value": self.value,
            "previous": self.previous,
            "delta": self.delta,
            "delta_pct": self.delta_pct,
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def active_members(
    activity: Iterable[MemberActivity],
    rule: ActivityRule,
    members: frozenset[int] | None = None,
) -> int:
    """活跃用户数: members meeting the activity rule.

    With ``members`` (ids in the group at the end of the period), someone who spoke and
    then left does not count, so that ``activity_rate`` stays within [0, 1].
    """
    return sum(
        1
        for member in activity
        if member.messages >= rule.min_messages
        and member.active_days >= rule.min_active_days
        and (members is None or member.member_id in members)
    )


def activity_rate(active: int, members: int) -> float | None:
    """社群活跃度: active_members ÷ members (None for an empty group)."""
    return _ratio(active, members)


def net_growth(joins: int, leaves: int, removed: int) -> int:
    """净增长人数: joins − leaves − removed."""
    return joins - leaves - removed


def leave_rate(leaves: int, members_at_start: int) -> float | None:
    """退群率: leaves ÷ members at the start of the period."""
    return _ratio(leaves, members_at_start)


def messages_per_member(messages: int, members: int) -> float | None:
    """人均消息量: messages ÷ members."""
    return _ratio(messages, members)


def message_rank(activity: Sequence[MemberActivity]) -> list[RankEntry]:
    """消息量排名: by messages, descending; ties to whoever reached the count first, then id."""
    ordered = sorted(activity, key=lambda m: (-m.messages, m.last_at, m.user_id))
    return [
        RankEntry(index, m.user_id, m.name, m.messages, m.opted_out)
        for index, m in enumerate(ordered, start=1)
    ]


#: The countable metrics, in the order reports show them.
COUNTABLE = (
    "messages",
    "active_members",
    "activity_rate",
    "members",
    "joins",
    "leaves",
    "removed",
    "net_growth",
    "leave_rate",
    "messages_per_member",
)


def countable_metrics(facts: PeriodFacts, rule: ActivityRule) -> dict[str, float | int | None]:
    """Every countable metric of one period, keyed by metric id."""
    active = active_members(facts.activity, rule, facts.member_ids_at_end)
    members = facts.members_at_end
    return {
        "messages": facts.messages,
        "active_members": active,
        "activity_rate": activity_rate(active, members),
        "members": members,
        "joins": facts.joins,
        "leaves": facts.leaves,
        "removed": facts.removed,
        "net_growth": net_growth(facts.joins, facts.leaves, facts.removed),
        "leave_rate": leave_rate(facts.leaves, facts.members_at_start),
        "messages_per_member": messages_per_member(facts.messages, members),
    }


def compare(
    current: dict[str, float | int | None], previous: dict[str, float | int | None]
) -> dict[str, Change]:
    """Pair each metric with its value in the previous period."""
    return {key: Change(current[key], previous.get(key)) for key in current}
