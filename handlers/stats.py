"""Gather a group's figures for a period: storage aggregates in, analytics metrics out.

The CLI's ``qunpulse stats``, the ``/stats`` command and the digests all call
:func:`collect_stats`, so every surface shows the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from analytics.metrics import (
    ActivityRule,
    Change,
    RankEntry,
    compare,
    countable_metrics,
    message_rank,
)
from analytics.periods import Period, offset_segments
from analytics.records import PeriodFacts
from storage.queries import GroupRecord, PeriodQueries


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One group's metrics for one period, with the previous period beside them."""

    group: GroupRecord
    period: Period
    metrics: dict[str, Change]
    rank: list[RankEntry]

    def to_json(self) -> dict[str, Any]:
        """An object keyed by the metric ids of METRICS.md (plus ``group`` and ``period``)."""
        document: dict[str, Any] = {
            "group": {
                "platform": self.group.platform,
                "chat_id": self.group.chat_id,
                "name": self.group.name,
                "source": self.group.source,
            },
            "period": {
                "kind": self.period.kind,
                "from": self.period.first.isoformat(),
                "to": self.period.last.isoformat(),
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "timezone": self.period.zone.key,
            },
        }
        document.update({key: change.as_dict() for key, change in self.metrics.items()})
        document["message_rank"] = [
            {"position": e.position, "member": e.member, "name": e.name, "messages": e.messages}
            | ({"opted_out": True} if e.opted_out else {})
            for e in self.rank
        ]
        return document


def collect_stats(
    engine: Engine, group: GroupRecord, period: Period, rule: ActivityRule
) -> GroupStats:
    """Compute ``group``'s metrics for ``period`` and the period before it."""
    previous = period.previous()
    with engine.connect() as connection:
        queries = PeriodQueries(connection, group.id)
        facts = _facts(queries, period, rule)
        before = _facts(queries, previous, rule)
    current_values = countable_metrics(facts, rule)
    previous_values = countable_metrics(before, rule)
    return GroupStats(
        group=group,
        period=period,
        metrics=compare(current_values, previous_values),
        rank=message_rank(facts.activity),
    )


def _facts(queries: PeriodQueries, period: Period, rule: ActivityRule) -> PeriodFacts:
    start, end = period.start_utc, period.end_utc
    changes = queries.membership_changes(start, end)
    activity = queries.member_activity(
        start,
        end,
        offset_segments(period.zone, start, end),
        count_days=rule.min_active_days > 0,
    )
    return PeriodFacts(
        messages=queries.message_count(start, end),
        activity=tuple(activity),
        joins=changes.get("join", 0),
        leaves=changes.get("leave", 0),
        removed=changes.get("removed", 0),
        members_at_start=queries.members_at(start),
        members_at_end=queries.members_at(end),
    )
