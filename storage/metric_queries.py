"""Aggregates behind the rest of the metric catalogue (content, business, lifecycle).

Like :class:`storage.queries.PeriodQueries`, everything runs as GROUP BY in the database
over the indexed ``(group_id, sent_at)`` / ``(group_id, member_id, sent_at)`` columns and
returns plain records; only the text metrics read message text, and only the period's
texts of the asked groups, newest first, up to a limit.

Which messages count where (the "noise" rule, README "Which messages count"):
- ``messages``, the hour histogram, the heatmap and volume anomalies: every message of a
  member (bots excluded, commands to the bot included: a member did send them);
- rank, words, topics, check-ins, sentiment and everything about one member: only
  conversation, i.e. no bots, no commands, no ``activity.exclude_users``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from analytics.periods import OffsetSegment
from storage.models import GroupMember, Member, MembershipEvent, Message, Order
from storage.queries import (
    DEPARTURES,
    QueryScope,
    Rows,
    ScopedQueries,
    as_date,
    aware_utc,
    bot_ids,
    local_date,
    local_day_number,
    local_epoch_seconds,
    members_before,
)

_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipEvent.__table__  # type: ignore[attr-defined]
_ORDER = Order.__table__  # type: ignore[attr-defined]

#: Order states that mean money arrived (refunded and cancelled orders do not count).
PAID_STATES = ("paid", "completed")

#: ``msg_type`` values (as the platforms name them) per behaviour; see README.
IMAGE_TYPES = ("image", "picture", "emotion", "sticker")
SHARE_TYPES = ("link", "card", "weapp", "news", "share", "sharing", "miniprogram", "location")
RED_PACKET_TYPES = ("redpacket", "red_packet", "hongbao", "external_redpacket")


@dataclass(frozen=True, slots=True)
class HourCount:
    """Messages in one local hour: ``hour`` is the local wall-clock start of the hour."""

    hour: datetime
    messages: int
    negative: int


@dataclass(frozen=True, slots=True)
class SentimentRow:
    """Scored text messages of one member (or, with ``member`` None, of the groups)."""

    member: str | None
    name: str | None
    positive: int
    neutral: int
    negative: int
    mean: float | None
    #: Texts not scored yet (overall only; None per member).
    unscored: int | None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    orders_imported: bool
    orders: int
    gmv_fen: int
    cost_fen: int
    payers: int


@dataclass(frozen=True, slots=True)
class CurrentMember:
    member_id: int
    user_id: str
    name: str | None
    opted_out: bool
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class RecentActivity:
    """One member's messages up to an instant: the last 7 days, the 7 before, the last."""

    member_id: int
    last_7: int
    previous_7: int
    days_last_7: int
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class Joiner:
    member_id: int
    user_id: str
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class WindowFacts:
    """A member's conversation in a window: messages, and scores (sum in 1/10000, count)."""

    member_id: int
    messages: int
    score_total: int
    scored: int


class MetricQueries(ScopedQueries):
    """Catalogue aggregates for one group or several (an operator's), on one connection.

    With a :class:`~storage.queries.QueryScope` that is ``each``, ``group_ids`` is one
    group of the scope and every answer is asked for all of the scope's groups at once
    (see there).
    """

    def __init__(
        self,
        connection: Connection,
        group_ids: Sequence[int],
        *,
        excluded_users: Collection[str] = (),
        scope: QueryScope | None = None,
    ) -> None:
        super().__init__(connection, group_ids, scope)
        self._excluded = tuple(excluded_users)

    def _ask(self, question: tuple[Any, ...], build: Callable[[], Any]) -> Rows:
        # The exclusions shape the SQL too: they are part of the question.
        return self._rows((*question, self._excluded), build)

    def _message_keys(self) -> list[ColumnElement[Any]]:
        return self._scope.keys(_MESSAGE.c.group_id)

    # --- building blocks ----------------------------------------------------------

    def _from_messages(self) -> Any:
        # No join: filters use the message's member_id, so the covering index suffices.
        return _MESSAGE

    def _any_message(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        return and_(
            _MESSAGE.c.group_id.in_(self._group_ids),
            _MESSAGE.c.sent_at >= start,
            _MESSAGE.c.sent_at < end,
            _MESSAGE.c.member_id.not_in(bot_ids()),
            # A recalled (撤回) message is gone for its readers, so it counts nowhere.
            _MESSAGE.c.recalled_at.is_(None),
        )

    def _conversation(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        condition = and_(self._any_message(start, end), _MESSAGE.c.is_command.is_(False))
        if self._excluded:
            excluded = select(_MEMBER.c.id).where(_MEMBER.c.user_id.in_(self._excluded))
            condition = and_(condition, _MESSAGE.c.member_id.not_in(excluded))
        return condition

    def _matches_any(self, keywords: Sequence[str]) -> ColumnElement[bool]:
        if not keywords:
            return literal(False)
        return or_(*(_MESSAGE.c.text.contains(k, autoescape=True) for k in keywords))

    def _hour_bucket(
        self, column: ColumnElement[datetime], segments: Sequence[OffsetSegment]
    ) -> ColumnElement[Any]:
        """SQL for the local hour of a stored UTC time, as whole hours since 1970-01-01.

        Integer arithmetic on the epoch (one parse per row) is several times faster on
        SQLite than formatting a shifted timestamp, and exact at hour boundaries.
        """
        return local_epoch_seconds(self._connection, column, segments) // 3600

    def _joined_in(
        self,
        start: datetime,
        end: datetime,
        group: ColumnElement[Any] | None,
        member: ColumnElement[Any],
    ) -> ColumnElement[bool]:
        """SQL for "``member`` joined ``group`` (one of the scope's) in ``[start, end)``".

        Added up (one group or an operator's), a joiner of any of the groups counts in all
        of them, as the joiners' ids once did; per group (``each``), only in that group.
        """

        if self._scope.each and group is not None:
            # (group, member) pairs, not a subquery correlated on every message row.
            pairs = self._joins(start, end, _MEMBERSHIP.c.group_id, _MEMBERSHIP.c.member_id)
            return tuple_(group, member).in_(pairs)
        return member.in_(self._joins(start, end, _MEMBERSHIP.c.member_id))

    def _joins(self, start: datetime, end: datetime, *columns: ColumnElement[Any]) -> Any:
        """``columns`` of the scope's joins (of people, not bots) in ``[start, end)``."""
        return (
            select(*columns)
            .select_from(_MEMBERSHIP.join(_MEMBER, _MEMBER.c.id == _MEMBERSHIP.c.member_id))
            .where(
                _MEMBERSHIP.c.group_id.in_(self._group_ids),
                _MEMBERSHIP.c.kind == "join",
                _MEMBERSHIP.c.occurred_at >= start,
                _MEMBERSHIP.c.occurred_at < end,
                _MEMBER.c.is_bot.is_(False),
            )
        )

    def hourly(
        self,
        start: datetime,
        end: datetime,
        segments: Sequence[OffsetSegment],
        negative_at_or_below: float,
    ) -> list[HourCount]:
        """Messages (as ``messages`` counts them) and negative ones, per local hour."""

        def build() -> Any:
            key = self._hour_bucket(_MESSAGE.c.sent_at, segments).label("hour")
            negative = func.sum(
                case(
                    (
                        and_(
                            _MESSAGE.c.sentiment <= negative_at_or_below,
                            _MESSAGE.c.is_command.is_(False),
                        ),
                        1,
                    ),
                    else_=0,
                )
            )
            keys = self._message_keys()
            return (
                select(*keys, key, func.count(), negative)
                .select_from(self._from_messages())
                .where(self._any_message(start, end))
                .group_by(*keys, key)
                .order_by(*keys, key)
            )

        question = ("hourly", start, end, tuple(segments), negative_at_or_below)
        return [
            HourCount(_from_bucket(hour), int(count), int(neg or 0))
            for hour, count, neg in self._ask(question, build)
        ]

    def hourly_leaves(
        self, start: datetime, end: datetime, segments: Sequence[OffsetSegment]
    ) -> dict[datetime, int]:
        """Departures (leave or removed) per local hour."""

        def build() -> Any:
            key = self._hour_bucket(_MEMBERSHIP.c.occurred_at, segments).label("hour")
            keys = self._scope.keys(_MEMBERSHIP.c.group_id)
            return (
                select(*keys, key, func.count())
                .where(
                    _MEMBERSHIP.c.group_id.in_(self._group_ids),
                    _MEMBERSHIP.c.occurred_at >= start,
                    _MEMBERSHIP.c.occurred_at < end,
                    _MEMBERSHIP.c.kind.in_(DEPARTURES),
                )
                .group_by(*keys, key)
            )

        rows = self._ask(("hourly_leaves", start, end, tuple(segments)), build)
        return {_from_bucket(hour): int(count) for hour, count in rows}

    def texts(self, start: datetime, end: datetime, limit: int) -> list[tuple[str, str | None]]:
        """The period's conversation texts, newest first (then latest stored), at most
        ``limit``, as pairs of (text, its stored words): the text itself only where no
        words are stored yet."""

        def build() -> Any:
            where = and_(self._conversation(start, end), _MESSAGE.c.text.is_not(None))
            newest = (_MESSAGE.c.sent_at.desc(), _MESSAGE.c.id.desc())
            text = case((_MESSAGE.c.words.is_(None), _MESSAGE.c.text), else_=literal(""))
            if not self._scope.each:
                return (
                    select(text, _MESSAGE.c.words)
                    .select_from(self._from_messages())
                    .where(where)
                    .order_by(*newest)
                    .limit(limit)
                )
            # The newest ``limit`` of every group: numbered within the group.
            numbered = (
                select(
                    _MESSAGE.c.group_id,
                    text.label("text"),
                    _MESSAGE.c.words,
                    func.row_number()
                    .over(partition_by=_MESSAGE.c.group_id, order_by=newest)
                    .label("n"),
                )
                .where(where)
                .subquery()
            )
            return (
                select(numbered.c.group_id, numbered.c.text, numbered.c.words)
                .where(numbered.c.n <= limit)
                .order_by(numbered.c.group_id, numbered.c.n)
            )

        rows = self._ask(("texts", start, end, limit), build)
        return [(str(text), words) for text, words in rows]

    def topic_counts(
        self, start: datetime, end: datetime, topics: dict[str, tuple[str, ...]]
    ) -> dict[str, int]:
        """Conversation messages matching each topic's keywords, one query for all."""
        if not topics:
            return {}

        def build() -> Any:
            columns = [
                func.sum(case((self._matches_any(words), 1), else_=0)).label(f"t{index}")
                for index, words in enumerate(topics.values())
            ]
            keys = self._message_keys()
            return (
                select(*keys, *columns)
                .select_from(self._from_messages())
                .where(self._conversation(start, end), _MESSAGE.c.text.is_not(None))
                .group_by(*keys)
            )

        rows = self._ask(("topic_counts", start, end, tuple(topics.items())), build)
        row = rows[0] if rows else (None,) * len(topics)
        return {name: int(row[index] or 0) for index, name in enumerate(topics)}

    def sentiment(
        self, start: datetime, end: datetime, positive: float, negative: float, *, per_member: bool
    ) -> list[SentimentRow]:
        """Scored conversation texts by bucket and their mean, overall or per member.

        The buckets read the covering index only (a score implies a text); the overall
        row also counts texts the background scorer has not reached yet.
        """
        scored = _MESSAGE.c.sentiment
        keys = self._message_keys()

        def buckets() -> Any:
            return (
                select(
                    *keys,
                    *([_MESSAGE.c.member_id] if per_member else []),
                    func.sum(case((scored >= positive, 1), else_=0)).label("pos"),
                    func.sum(case((and_(scored > negative, scored < positive), 1), else_=0)).label(
                        "neu"
                    ),
                    func.sum(case((scored <= negative, 1), else_=0)).label("neg"),
                    _score_sum().label("total"),
                    func.count(scored).label("scored"),
                )
                .select_from(_MESSAGE)
                .where(self._conversation(start, end), scored.is_not(None))
            )

        question = ("sentiment", start, end, positive, negative, per_member)
        if not per_member:
            rows = self._ask(question, lambda: buckets().group_by(*keys))
            row = rows[0] if rows else (None, None, None, None, 0)

            def unscored() -> Any:
                return (
                    select(*keys, func.count())
                    .select_from(_MESSAGE)
                    .where(
                        self._conversation(start, end),
                        scored.is_(None),
                        _MESSAGE.c.text.is_not(None),
                    )
                    .group_by(*keys)
                )

            waiting = self._ask(("unscored", start, end), unscored)
            return [_sentiment_row(None, None, row, int(waiting[0][0]) if waiting else 0)]

        def per_member_rows() -> Any:
            sub = buckets().group_by(*keys, _MESSAGE.c.member_id).subquery()
            return (
                select(
                    *([sub.c.scope_group] if keys else []),
                    _MEMBER.c.user_id,
                    _MEMBER.c.display_name,
                    sub.c.pos,
                    sub.c.neu,
                    sub.c.neg,
                    sub.c.total,
                    sub.c.scored,
                )
                .select_from(sub.join(_MEMBER, _MEMBER.c.id == sub.c.member_id))
                .order_by(*([sub.c.scope_group] if keys else []), _MEMBER.c.user_id, _MEMBER.c.id)
            )

        return [
            _sentiment_row(r[0], r[1], r[2:], None) for r in self._ask(question, per_member_rows)
        ]

    def behaviours(
        self, start: datetime, end: datetime, checkin_keywords: Sequence[str]
    ) -> dict[str, int]:
        """Counts of check-ins, shares, red packets, images and @-mentions (one query)."""
        kind = _MESSAGE.c.msg_type
        text = _MESSAGE.c.text
        is_share = or_(kind.in_(SHARE_TYPES), text.contains("http://"), text.contains("https://"))
        is_red = or_(kind.in_(RED_PACKET_TYPES), text.contains("[红包]"))
        flags = {
            "checkins": self._matches_any(checkin_keywords),
            "shares": is_share,
            "red_packets": is_red,
            "images": kind.in_(IMAGE_TYPES),
            "mentions": text.contains("@"),
        }

        def build() -> Any:
            columns = [func.sum(case((flag, 1), else_=0)) for flag in flags.values()]
            keys = self._message_keys()
            return (
                select(*keys, func.count(), *columns)
                .select_from(self._from_messages())
                .where(self._conversation(start, end))
                .group_by(*keys)
            )

        rows = self._ask(("behaviours", start, end, tuple(checkin_keywords)), build)
        row: tuple[Any, ...] = rows[0] if rows else (0,) + (None,) * len(flags)
        counts = {"messages": int(row[0])}
        counts.update({name: int(row[i + 1] or 0) for i, name in enumerate(flags)})
        return counts

    def checkin_days(
        self,
        start: datetime,
        end: datetime,
        segments: Sequence[OffsetSegment],
        keywords: Sequence[str],
    ) -> dict[int, int]:
        """Per member: distinct local days with a check-in message."""
        if not keywords:
            return {}

        def build() -> Any:
            day = local_day_number(self._connection, _MESSAGE.c.sent_at, segments)
            keys = self._message_keys()
            return (
                select(*keys, _MESSAGE.c.member_id, func.count(func.distinct(day)))
                .select_from(self._from_messages())
                .where(self._conversation(start, end), self._matches_any(keywords))
                .group_by(*keys, _MESSAGE.c.member_id)
            )

        rows = self._ask(("checkin_days", start, end, tuple(segments), tuple(keywords)), build)
        return {int(member): int(days) for member, days in rows}

    # --- business -------------------------------------------------------------------

    def _orders_of_members(self) -> tuple[Any, list[ColumnElement[Any]], ColumnElement[bool]]:
        """FROM, group key and condition for orders of people seen in the groups.

        Orders carry no group of their own. Added up, an order counts once however many
        of the groups its payer is in; per group, it counts in each group of its payer
        (``group_member`` has one row per group and member).
        """
        if not self._scope.each:
            in_groups: ColumnElement[bool] = _ORDER.c.member_id.in_(
                select(_GROUP_MEMBER.c.member_id).where(
                    _GROUP_MEMBER.c.group_id.in_(self._group_ids)
                )
            )
            return _ORDER, [], in_groups
        joined = _ORDER.join(_GROUP_MEMBER, _GROUP_MEMBER.c.member_id == _ORDER.c.member_id)
        return (
            joined,
            self._scope.keys(_GROUP_MEMBER.c.group_id),
            _GROUP_MEMBER.c.group_id.in_(self._group_ids),
        )

    def _paid_in(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        return and_(
            _ORDER.c.status.in_(PAID_STATES),
            _ORDER.c.paid_at >= start,
            _ORDER.c.paid_at < end,
        )

    def orders(self, start: datetime, end: datetime) -> OrderFacts:
        """Paid orders of the groups' members in the range: count, GMV, cost, payers."""

        def imported_orders() -> Any:
            source, keys, in_groups = self._orders_of_members()
            return select(*keys, func.count()).select_from(source).where(in_groups).group_by(*keys)

        imported = self._ask(("orders_imported",), imported_orders)

        def paid() -> Any:
            source, keys, in_groups = self._orders_of_members()
            return (
                select(
                    *keys,
                    func.count(),
                    func.coalesce(func.sum(_ORDER.c.amount_fen), 0),
                    func.coalesce(func.sum(func.coalesce(_ORDER.c.cost_fen, 0)), 0),
                    func.count(func.distinct(_ORDER.c.member_id)),
                )
                .select_from(source)
                .where(in_groups, self._paid_in(start, end))
                .group_by(*keys)
            )

        rows = self._ask(("orders", start, end), paid)
        row = rows[0] if rows else (0, 0, 0, 0)
        return OrderFacts(
            bool(imported and imported[0][0]), int(row[0]), int(row[1]), int(row[2]), int(row[3])
        )

    def payer_ids(self, start: datetime, end: datetime) -> set[int]:
        """Member ids with a paid order in the range (few: one row per paying person)."""

        def payers() -> Any:
            source, keys, in_groups = self._orders_of_members()
            return (
                select(*keys, _ORDER.c.member_id)
                .select_from(source)
                .where(in_groups, self._paid_in(start, end))
                .distinct()
            )

        rows = self._ask(("payer_ids", start, end), payers)
        return {int(member) for (member,) in rows}

    # --- members and lifecycle ------------------------------------------------------

    def current_members(self, instant: datetime) -> list[CurrentMember]:
        """People in the groups just before ``instant`` (same rule as ``members``).

        Answers are kept for the life of the scope (one report on one connection), as
        rank, business, segment and churn metrics all ask for the period's end.
        """

        def build() -> Any:
            keys = self._scope.keys(_GROUP_MEMBER.c.group_id)
            return (
                select(
                    *keys,
                    _MEMBER.c.id,
                    _MEMBER.c.user_id,
                    _MEMBER.c.display_name,
                    _MEMBER.c.opted_out,
                    func.min(_GROUP_MEMBER.c.first_seen_at),
                )
                .select_from(_GROUP_MEMBER.join(_MEMBER, _MEMBER.c.id == _GROUP_MEMBER.c.member_id))
                .where(members_before(self._group_ids, instant))
                .group_by(
                    *keys,
                    _MEMBER.c.id,
                    _MEMBER.c.user_id,
                    _MEMBER.c.display_name,
                    _MEMBER.c.opted_out,
                )
                .order_by(*keys, _MEMBER.c.user_id)
            )

        from storage.models import UTCDateTime

        convert = UTCDateTime().process_result_value

        def records(rows: Rows) -> list[CurrentMember]:
            return [
                CurrentMember(
                    int(row[0]),
                    str(row[1]),
                    row[2],
                    bool(row[3]),
                    _aware(convert(row[4], self._connection.dialect)),
                )
                for row in rows
            ]

        return self._records(("current_members", instant), build, records)

    def paid_members(self, instant: datetime) -> int:
        """Members in the groups before ``instant`` flagged as paid members by then."""

        def build() -> Any:
            keys = self._scope.keys(_GROUP_MEMBER.c.group_id)
            return (
                select(*keys, func.count(func.distinct(_MEMBER.c.id)))
                .select_from(_GROUP_MEMBER.join(_MEMBER, _MEMBER.c.id == _GROUP_MEMBER.c.member_id))
                .where(
                    members_before(self._group_ids, instant),
                    _MEMBER.c.paid_member_since.is_not(None),
                    _MEMBER.c.paid_member_since < instant,
                )
                .group_by(*keys)
            )

        rows = self._rows(("paid_members", instant), build)
        return int(rows[0][0]) if rows else 0

    def recent_activity(
        self, instant: datetime, segments: Sequence[OffsetSegment], since: datetime
    ) -> dict[int, RecentActivity]:
        """Per member: conversation in the 7 days before ``instant``, the 7 before, the last."""
        week = instant - timedelta(days=7)
        fortnight = instant - timedelta(days=14)

        def build() -> Any:
            recent_day = case(
                (
                    _MESSAGE.c.sent_at >= week,
                    local_day_number(self._connection, _MESSAGE.c.sent_at, segments),
                ),
                else_=None,
            )
            keys = self._message_keys()
            return (
                select(
                    *keys,
                    _MESSAGE.c.member_id,
                    func.sum(case((_MESSAGE.c.sent_at >= week, 1), else_=0)),
                    func.sum(
                        case(
                            (and_(_MESSAGE.c.sent_at >= fortnight, _MESSAGE.c.sent_at < week), 1),
                            else_=0,
                        )
                    ),
                    func.count(func.distinct(recent_day)),
                    func.max(_MESSAGE.c.sent_at),
                )
                .select_from(self._from_messages())
                .where(self._conversation(since, instant))
                .group_by(*keys, _MESSAGE.c.member_id)
            )

        from storage.models import UTCDateTime

        convert = UTCDateTime().process_result_value
        question = ("recent_activity", instant, tuple(segments), since)
        return {
            int(row[0]): RecentActivity(
                int(row[0]),
                int(row[1] or 0),
                int(row[2] or 0),
                int(row[3] or 0),
                _aware(convert(row[4], self._connection.dialect)) if row[4] is not None else None,
            )
            for row in self._ask(question, build)
        }

    def joiners(self, start: datetime, end: datetime) -> list[Joiner]:
        """Members whose (first) join in the range falls in it, with that join time."""

        def build() -> Any:
            first_join = func.min(_MEMBERSHIP.c.occurred_at)
            keys = self._scope.keys(_MEMBERSHIP.c.group_id)
            return (
                self._joins(start, end, *keys, _MEMBER.c.id, _MEMBER.c.user_id, first_join)
                .group_by(*keys, _MEMBER.c.id, _MEMBER.c.user_id)
                .order_by(*keys, _MEMBER.c.user_id)
            )

        from storage.models import UTCDateTime

        convert = UTCDateTime().process_result_value

        def records(rows: Rows) -> list[Joiner]:
            return [
                Joiner(int(r[0]), str(r[1]), _aware(convert(r[2], self._connection.dialect)))
                for r in rows
            ]

        return self._records(("joiners", start, end), build, records)

    def joiner_message_days(
        self,
        joined_from: datetime,
        joined_until: datetime,
        start: datetime,
        end: datetime,
        segments: Sequence[OffsetSegment],
    ) -> dict[int, set[date]]:
        """Per member who joined in ``[joined_from, joined_until)`` (see :meth:`joiners`):
        the local days of ``[start, end)`` with a conversation message."""

        def build() -> Any:
            day = local_date(self._connection, _MESSAGE.c.sent_at, segments).label("day")
            keys = self._message_keys()
            return (
                select(*keys, _MESSAGE.c.member_id, day)
                .select_from(self._from_messages())
                .where(
                    self._conversation(start, end),
                    self._joined_in(
                        joined_from, joined_until, _MESSAGE.c.group_id, _MESSAGE.c.member_id
                    ),
                )
                .group_by(*keys, _MESSAGE.c.member_id, day)
            )

        question = ("joiner_days", joined_from, joined_until, start, end, tuple(segments))
        days: dict[int, set[date]] = {}
        for member, value in self._ask(question, build):
            days.setdefault(int(member), set()).add(as_date(value))
        return days

    def joiner_first_times(
        self,
        joined_from: datetime,
        joined_until: datetime,
        start: datetime,
        end: datetime,
        checkin_keywords: Sequence[str],
    ) -> tuple[dict[int, datetime], dict[int, datetime], dict[int, datetime]]:
        """Per member who joined in ``[joined_from, joined_until)``: the first conversation
        message, first check-in and first paid order in ``[start, end)``."""
        from storage.models import UTCDateTime

        convert = UTCDateTime().process_result_value

        def firsts(rows: Rows) -> dict[int, datetime]:
            return {
                int(member): _aware(convert(at, self._connection.dialect))
                for member, at in rows
                if at is not None
            }

        keys = self._message_keys()

        def base() -> Any:
            return (
                select(*keys, _MESSAGE.c.member_id, func.min(_MESSAGE.c.sent_at))
                .select_from(self._from_messages())
                .where(
                    self._conversation(start, end),
                    self._joined_in(
                        joined_from, joined_until, _MESSAGE.c.group_id, _MESSAGE.c.member_id
                    ),
                )
                .group_by(*keys, _MESSAGE.c.member_id)
            )

        def paid() -> Any:
            if not self._scope.each:
                return (
                    select(_ORDER.c.member_id, func.min(_ORDER.c.paid_at))
                    .where(
                        self._joined_in(joined_from, joined_until, None, _ORDER.c.member_id),
                        self._paid_in(start, end),
                    )
                    .group_by(_ORDER.c.member_id)
                )
            # Orders carry no group: each group's joiners (one row per group and member).
            joins = (
                self._joins(
                    joined_from, joined_until, _MEMBERSHIP.c.group_id, _MEMBERSHIP.c.member_id
                )
                .distinct()
                .subquery()
            )
            return (
                select(joins.c.group_id, _ORDER.c.member_id, func.min(_ORDER.c.paid_at))
                .select_from(_ORDER.join(joins, joins.c.member_id == _ORDER.c.member_id))
                .where(self._paid_in(start, end))
                .group_by(joins.c.group_id, _ORDER.c.member_id)
            )

        question = ("joiner_firsts", joined_from, joined_until, start, end)
        return (
            firsts(self._ask((*question, "message"), base)),
            firsts(
                self._ask(
                    (*question, "checkin", tuple(checkin_keywords)),
                    lambda: base().where(self._matches_any(checkin_keywords)),
                )
            ),
            firsts(self._ask((*question, "paid"), paid)),
        )

    def departures(self, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
        """(member, when) of every leave or removal in the range."""

        def build() -> Any:
            keys = self._scope.keys(_MEMBERSHIP.c.group_id)
            return (
                select(*keys, _MEMBERSHIP.c.member_id, _MEMBERSHIP.c.occurred_at)
                .select_from(_MEMBERSHIP.join(_MEMBER, _MEMBER.c.id == _MEMBERSHIP.c.member_id))
                .where(
                    _MEMBERSHIP.c.group_id.in_(self._group_ids),
                    _MEMBERSHIP.c.kind.in_(DEPARTURES),
                    _MEMBERSHIP.c.occurred_at >= start,
                    _MEMBERSHIP.c.occurred_at < end,
                    _MEMBER.c.is_bot.is_(False),
                )
                .order_by(*keys, _MEMBERSHIP.c.occurred_at)
            )

        return [(int(m), _aware(at)) for m, at in self._rows(("departures", start, end), build)]

    def window(
        self, member_ids: Collection[int] | None, start: datetime, end: datetime
    ) -> list[WindowFacts]:
        """Per member (of ``member_ids``, or all): conversation messages and mean sentiment."""
        if member_ids is not None and not member_ids:
            return []
        ids = tuple(member_ids) if member_ids is not None else None

        def build() -> Any:
            keys = self._message_keys()
            query = (
                select(
                    *keys,
                    _MESSAGE.c.member_id,
                    func.count(),
                    _score_sum(),
                    func.count(_MESSAGE.c.sentiment),
                )
                .select_from(self._from_messages())
                .where(self._conversation(start, end))
                .group_by(*keys, _MESSAGE.c.member_id)
            )
            if ids is not None:
                query = query.where(_MESSAGE.c.member_id.in_(ids))
                if self._scope.each:
                    # Asked by one group about its own members (a leaver's last weeks):
                    # no other group asks the same, so only this group is read.
                    query = query.where(_MESSAGE.c.group_id == self._key)
            return query

        question: tuple[Any, ...] = ("window", ids, start, end)
        if ids is not None and self._scope.each:
            question = (*question, self._key)
        return [
            WindowFacts(int(m), int(n), int(total or 0), int(scored))
            for m, n, total, scored in self._ask(question, build)
        ]


SCORE_SCALE = 10_000


def _score_sum() -> ColumnElement[Any]:
    """The sum of scores in integer 1/10000ths: exact, so both databases agree to the digit.

    Scores are stored rounded to 4 decimals, so the rounding here is unambiguous; a float
    AVG would differ in the last bits between SQLite and PostgreSQL.
    """
    return func.sum(cast(func.round(_MESSAGE.c.sentiment * SCORE_SCALE), Integer))


def _mean(total: Any, count: Any) -> float | None:
    return round(int(total) / int(count) / SCORE_SCALE, 4) if count else None


def _sentiment_row(member: Any, name: Any, values: Any, unscored: int | None) -> SentimentRow:
    pos, neu, neg, total, scored = tuple(values)
    return SentimentRow(
        member,
        name,
        int(pos or 0),
        int(neu or 0),
        int(neg or 0),
        _mean(total, scored),
        unscored,
    )


_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - local wall time counts from a naive epoch


def _from_bucket(hours: Any) -> datetime:
    """Local wall-clock start of an hour bucket (naive: the zone is the caller's)."""
    return _EPOCH + timedelta(hours=int(hours))


def _aware(value: Any) -> datetime:
    """A time from the database, aware UTC; here it is never NULL."""
    aware = aware_utc(value)
    if aware is None:
        raise TypeError("expected a time from the database, got NULL")
    return aware
