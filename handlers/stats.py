"""Gather a group's figures for a period: storage aggregates in, analytics metrics out.

The CLI's ``qunpulse stats``, the ``/stats`` command and the digests all call
:func:`collect_stats`, so every surface shows the same numbers. It takes one group or
several (all groups of an operator), and computes only the metric ids asked for: the
text metrics (``top_words``, ``topics``) start jieba, which costs about half a second
the first time in a process, so they are skipped unless wanted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from analytics import catalogue
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
from storage.metric_queries import SCORE_SCALE, MetricQueries
from storage.queries import GroupRecord, PeriodQueries, QueryScope

if TYPE_CHECKING:
    from analytics.text import TextConfig
    from config import Settings

#: Every metric id of METRICS.md, in the order reports show them.
ALL_METRICS = (
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
    "participants",
    "participation_rate",
    "paid_members",
    "conversion_rate",
    "gmv",
    "profit",
    "profit_margin",
    "aov",
    "retention_d1",
    "retention_d7",
    "retention_d30",
    "message_rank",
    "stickiness",
    "behaviours",
    "hour_histogram",
    "heatmap",
    "topics",
    "top_words",
    "sentiment_split",
    "segments",
    "funnel",
    "churn_profile",
    "anomalies",
    "targets",
    "operator_score",
)
TEXT_METRICS = frozenset({"topics", "top_words"})
BUSINESS = ("paid_members", "conversion_rate", "gmv", "profit", "profit_margin", "aov")
RETENTION = {"retention_d1": 1, "retention_d7": 7, "retention_d30": 30}


class UnknownMetric(ValueError):
    """A metric id that METRICS.md does not define."""


def parse_metrics(text: str | None) -> frozenset[str]:
    """Turn ``--metrics a,b,c`` into ids (all when None).

    Raises:
        UnknownMetric: an id is not in the catalogue; the message lists the known ones.
    """
    if not text:
        return frozenset(ALL_METRICS)
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(ALL_METRICS))
    if unknown:
        raise UnknownMetric(
            f"unknown metric id(s) {', '.join(unknown)}; known: {', '.join(ALL_METRICS)}"
        )
    return frozenset(wanted)


@dataclass(frozen=True, slots=True)
class StatsOptions:
    """Everything from settings the metrics depend on."""

    rule: ActivityRule = field(default_factory=ActivityRule)
    checkin_keywords: tuple[str, ...] = ("打卡",)
    exclude_users: tuple[str, ...] = ()
    positive: float = 0.7
    negative: float = 0.3
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    top_n: int = 30
    max_texts: int = 5000
    stop_words: tuple[str, ...] = ()
    user_dict: str | None = None
    cache_dir: str | None = None
    stickiness: catalogue.StickinessRule = field(default_factory=catalogue.StickinessRule)
    silent_days: int = 14
    high_active_days: int = 4
    churn_window_days: int = 14
    anomaly_weeks: int = 4
    anomaly_sigmas: float = 3.0
    anomaly_minimums: dict[str, int] = field(
        default_factory=lambda: {"messages": 10, "negative": 3, "leaves": 3}
    )
    targets: dict[str, float | None] = field(default_factory=dict)
    gmv_target: float | None = None
    weights: catalogue.ScoreWeights = field(default_factory=catalogue.ScoreWeights)
    locale: str = "zh_CN"

    def text_config(self) -> TextConfig:
        """How words are cut and which are dropped (``[text]``)."""
        from analytics.text import TextConfig

        return TextConfig(self.stop_words, self.user_dict, self.cache_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> StatsOptions:
        s = settings
        return cls(
            rule=ActivityRule(s.activity.min_messages, s.activity.min_active_days),
            checkin_keywords=s.activity.checkin_keywords,
            exclude_users=s.activity.exclude_users,
            positive=s.sentiment.positive,
            negative=s.sentiment.negative,
            topics=dict(s.topics),
            top_n=s.text.top_n,
            max_texts=s.text.max_texts,
            stop_words=s.text.stop_words,
            user_dict=s.text.user_dict,
            cache_dir=s.text.cache_dir,
            stickiness=catalogue.StickinessRule(
                s.stickiness.weight_days,
                s.stickiness.weight_volume,
                s.stickiness.weight_participation,
                s.stickiness.high,
                s.stickiness.mid,
            ),
            silent_days=s.segments.silent_days,
            high_active_days=s.segments.high_active_days,
            churn_window_days=s.segments.churn_window_days,
            anomaly_weeks=s.anomalies.weeks,
            anomaly_sigmas=s.anomalies.sigmas,
            anomaly_minimums={
                "messages": s.anomalies.min_messages,
                "negative": s.anomalies.min_negative,
                "leaves": s.anomalies.min_leaves,
            },
            targets={
                "activity_rate": s.targets.activity_rate,
                "retention_d7": s.targets.retention_d7,
                "conversion_rate": s.targets.conversion_rate,
                "gmv": s.targets.gmv,
            },
            gmv_target=s.targets.gmv,
            weights=catalogue.ScoreWeights(
                s.score.weight_activity,
                s.score.weight_growth,
                s.score.weight_sentiment,
                s.score.weight_conversion,
                s.score.weight_gmv,
            ),
            locale=s.locale,
        )


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One group's (or an operator's groups') metrics for one period."""

    group: GroupRecord
    period: Period
    metrics: dict[str, Change]
    rank: list[RankEntry]
    #: Non-countable metrics (lists and objects), keyed by metric id.
    details: dict[str, Any] = field(default_factory=dict)
    #: The groups summed up, when this is an operator's view.
    groups: tuple[GroupRecord, ...] = ()
    operator: str | None = None
    wanted: frozenset[str] = frozenset(ALL_METRICS)
    #: The message rank of the period before (the leaderboard's "yesterday"), when
    #: ``message_rank`` is wanted: the same as that period's own ``rank``.
    previous_rank: list[RankEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """An object keyed by the metric ids of METRICS.md (plus ``group`` and ``period``)."""
        document: dict[str, Any] = {}
        if self.operator is not None:
            document["operator"] = self.operator
            document["groups"] = [_group_json(g) for g in self.groups]
        else:
            document["group"] = _group_json(self.group)
        document["period"] = {
            "kind": self.period.kind,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "timezone": self.period.zone.key,
        }
        for key in ALL_METRICS:
            if key not in self.wanted:
                continue
            if key == "message_rank":
                document[key] = rank_json(self.rank)
            elif key in self.metrics:
                document[key] = self.metrics[key].as_dict() | self.details.get(key, {})
            elif key in self.details:
                document[key] = self.details[key]
        return document


def rank_json(rank: Sequence[RankEntry]) -> list[dict[str, Any]]:
    """``message_rank`` as the stats document has it."""
    return [
        {"position": e.position, "member": e.member, "name": e.name, "messages": e.messages}
        | ({"opted_out": True} if e.opted_out else {})
        for e in rank
    ]


def _group_json(group: GroupRecord) -> dict[str, Any]:
    return {
        "platform": group.platform,
        "chat_id": group.chat_id,
        "name": group.name,
        "source": group.source,
    }


def collect_stats(
    engine: Engine,
    group: GroupRecord | Sequence[GroupRecord],
    period: Period,
    rule: ActivityRule | None = None,
    *,
    options: StatsOptions | None = None,
    wanted: Collection[str] | None = None,
    now: datetime | None = None,
    operator: str | None = None,
) -> GroupStats:
    """Compute the metrics of ``group`` (or several groups) for ``period`` and the one before.

    Args:
        engine: the database.
        group: one group, or all groups of an operator (their figures add up; people
            count once).
        period: the period; the previous one of the same shape is computed beside it.
        rule: the activity rule (overrides ``options.rule``; kept for older callers).
        options: settings the metrics depend on (defaults: METRICS.md's defaults).
        wanted: metric ids to compute (default: all).
        now: the present, for retention / funnel windows that must have passed
            (default: the end of the period).
        operator: the operator's user id, for an operator's view.
    """
    opts = options or StatsOptions()
    if rule is not None:
        opts = _with_rule(opts, rule)
    groups = (group,) if isinstance(group, GroupRecord) else tuple(group)
    if not groups:
        raise ValueError("collect_stats needs at least one group")
    keys = frozenset(wanted) if wanted is not None else frozenset(ALL_METRICS)
    with engine.connect() as connection:
        stats = _collect(
            connection,
            QueryScope([g.id for g in groups]),
            groups,
            period,
            opts,
            keys,
            now,
            operator,
        )
    if "operator_score" in keys and operator is not None and len(groups) > 1:
        # 贡献度 per group as well, so an operator sees which group carries the score.
        each = collect_stats_many(
            engine, groups, period, options=opts, wanted={"operator_score"}, now=now
        )
        stats.details["operator_score"]["groups"] = [
            {"chat_id": g.chat_id, "platform": g.platform}
            | {
                k: v
                for k, v in each[g.id].details["operator_score"].items()
                if k in ("value", "grade")
            }
            for g in groups
        ]
    return stats


#: Groups per batch of :func:`collect_stats_many`'s callers: the answers of a batch are
#: kept in memory until its stats are made (a few MB for a few hundred groups).
BATCH_GROUPS = 250


def collect_stats_many(
    engine: Engine,
    groups: Sequence[GroupRecord],
    period: Period,
    *,
    options: StatsOptions | None = None,
    wanted: Collection[str] | None = None,
    now: datetime | None = None,
    scope: QueryScope | None = None,
) -> dict[int, GroupStats]:
    """Compute every group's own metrics for ``period``, asking the database once for all.

    Each group's stats are exactly what :func:`collect_stats` gives for that group alone
    (the same code computes them, from the same queries grouped by group as well): one
    pass of about sixty statements for all the groups instead of that many per group.
    Callers with thousands of groups pass them in batches (:data:`BATCH_GROUPS`).

    Args:
        engine: the database.
        groups: the groups (distinct).
        period: the period; the previous one of the same shape is computed beside it.
        options: as for :func:`collect_stats`.
        wanted: metric ids to compute (default: all).
        now: as for :func:`collect_stats`.
        scope: an ``each`` scope over (at least) these groups whose answers to share, e.g.
            between a day's stats and the day before's (default: a new one).

    Returns:
        The stats by group id.
    """
    if not groups:
        return {}
    opts = options or StatsOptions()
    keys = frozenset(wanted) if wanted is not None else frozenset(ALL_METRICS)
    if scope is None:
        scope = QueryScope([g.id for g in groups], each=True)
    elif not scope.each:
        raise ValueError("collect_stats_many needs a scope with each=True")
    with engine.connect() as connection:
        return {
            g.id: _collect(connection, scope, (g,), period, opts, keys, now, None) for g in groups
        }


def _collect(
    connection: Connection,
    scope: QueryScope,
    groups: tuple[GroupRecord, ...],
    period: Period,
    opts: StatsOptions,
    keys: frozenset[str],
    now: datetime | None,
    operator: str | None,
) -> GroupStats:
    """The stats of ``groups`` (one, or an operator's added up) as ``scope`` answers them."""
    ids = [g.id for g in groups]
    as_of = min(now, period.end_utc) if now is not None else period.end_utc
    previous = period.previous()
    details: dict[str, Any] = {}
    queries = PeriodQueries(connection, ids, scope=scope)
    more = MetricQueries(connection, ids, excluded_users=opts.exclude_users, scope=scope)
    excluded_users = frozenset(opts.exclude_users)
    facts = _facts(queries, more, period, opts.rule, excluded_users)
    before = _facts(queries, more, previous, opts.rule, excluded_users)
    current = countable_metrics(facts, opts.rule)
    earlier = countable_metrics(before, opts.rule)
    checkins = _participation(more, period, opts, facts, current)
    _participation(more, previous, opts, before, earlier)
    if keys & {*BUSINESS, "operator_score", "targets"}:
        _business(more, period, opts.rule, facts, current, details)
        _business(more, previous, opts.rule, before, earlier, {})
    if keys & {*RETENTION, "targets"}:
        last_day = (
            (now.astimezone(period.zone).date() - timedelta(days=1))
            if now is not None
            else period.last
        )
        for key, days in RETENTION.items():
            now_value = _retention(more, period, days, last_day, now)
            before_value = _retention(more, previous, days, last_day, now)
            current[key] = now_value.pop("value")
            earlier[key] = before_value.pop("value")
            details[key] = now_value
    if keys & {"sentiment_split", "operator_score", "churn_profile"}:
        details["sentiment_split"] = _sentiment(more, period, opts)
    if "stickiness" in keys:
        details["stickiness"] = _stickiness(more, period, opts, facts, checkins)
    if "behaviours" in keys:
        counts = more.behaviours(period.start_utc, period.end_utc, opts.checkin_keywords)
        total = counts.pop("messages")
        details["behaviours"] = {
            name: {"count": count, "rate": catalogue.ratio(count, total)}
            for name, count in counts.items()
        }
    if keys & {"hour_histogram", "heatmap", "anomalies"}:
        _time_shape(more, period, opts, keys, details)
    if keys & TEXT_METRICS:
        _text(more, period, opts, keys, details)
    if "segments" in keys:
        details["segments"] = _segments(more, period, opts, as_of)
    if "funnel" in keys:
        # Steps after the join count up to now, not only within the period.
        details["funnel"] = _funnel(more, period, opts, now or period.end_utc)
    if "churn_profile" in keys:
        details["churn_profile"] = _churn(more, period, opts)
    if "targets" in keys:
        details["targets"] = catalogue.targets(
            opts.targets,
            {
                "activity_rate": current.get("activity_rate"),
                "retention_d7": current.get("retention_d7"),
                "conversion_rate": current.get("conversion_rate"),
                "gmv": current.get("gmv"),
            },
        )
    if "operator_score" in keys:
        details["operator_score"] = catalogue.operator_score(
            activity_rate=current.get("activity_rate"),
            net_growth=int(current.get("net_growth") or 0),
            members_at_start=facts.members_at_start,
            mean_sentiment=details["sentiment_split"]["mean"],
            conversion_rate=current.get("conversion_rate")
            if details.get("orders_imported")
            else None,
            gmv_yuan=float(current.get("gmv") or 0),
            activity_target=opts.targets.get("activity_rate") or 0.15,
            conversion_target=opts.targets.get("conversion_rate") or 0.05,
            gmv_target=opts.gmv_target,
            weights=opts.weights,
        )
    if "sentiment_split" not in keys:
        details.pop("sentiment_split", None)
    details.pop("orders_imported", None)
    excluded = set(opts.exclude_users)
    activity = [a for a in facts.activity if a.user_id not in excluded]
    return GroupStats(
        group=groups[0],
        period=period,
        metrics=compare(current, earlier),
        rank=message_rank(activity),
        details=details,
        groups=groups if operator is not None else (),
        operator=operator,
        wanted=keys,
        previous_rank=(
            message_rank([a for a in before.activity if a.user_id not in excluded])
            if "message_rank" in keys
            else []
        ),
    )


def _with_rule(options: StatsOptions, rule: ActivityRule) -> StatsOptions:
    from dataclasses import replace

    return replace(options, rule=rule)


def _facts(
    queries: PeriodQueries,
    more: MetricQueries,
    period: Period,
    rule: ActivityRule,
    excluded: frozenset[str],
) -> PeriodFacts:
    """The period's counts; ``activity.exclude_users`` leave rank and active members."""
    start, end = period.start_utc, period.end_utc
    changes = queries.membership_changes(start, end)
    activity = queries.member_activity(
        start,
        end,
        offset_segments(period.zone, start, end),
        count_days=True,
    )
    return PeriodFacts(
        messages=queries.message_count(start, end),
        activity=tuple(a for a in activity if a.user_id not in excluded),
        joins=changes.get("join", 0),
        leaves=changes.get("leave", 0),
        removed=changes.get("removed", 0),
        members_at_start=queries.members_at(start),
        members_at_end=queries.members_at(end),
        member_ids_at_end=frozenset(m.member_id for m in more.current_members(end)),
    )


def _participation(
    more: MetricQueries,
    period: Period,
    opts: StatsOptions,
    facts: PeriodFacts,
    values: dict[str, float | int | None],
) -> dict[int, int]:
    start, end = period.start_utc, period.end_utc
    days = more.checkin_days(
        start, end, offset_segments(period.zone, start, end), opts.checkin_keywords
    )
    values["participants"] = len(days)
    values["participation_rate"] = catalogue.ratio(len(days), facts.members_at_end)
    return days


def _business(
    more: MetricQueries,
    period: Period,
    rule: ActivityRule,
    facts: PeriodFacts,
    values: dict[str, float | int | None],
    details: dict[str, Any],
) -> None:
    start, end = period.start_utc, period.end_utc
    orders = more.orders(start, end)
    members = facts.member_ids_at_end or frozenset()
    # "Members with a paid order ÷ members": a payer who has left is not in either count.
    payers = more.payer_ids(start, end) & members
    active = {
        a.member_id
        for a in facts.activity
        if a.member_id in members
        and a.messages >= rule.min_messages
        and a.active_days >= rule.min_active_days
    }
    gmv = orders.gmv_fen / 100
    profit = (orders.gmv_fen - orders.cost_fen) / 100
    values["paid_members"] = more.paid_members(end)
    values["conversion_rate"] = catalogue.ratio(len(payers), facts.members_at_end)
    values["gmv"] = gmv
    values["profit"] = profit
    values["profit_margin"] = catalogue.ratio(profit, orders.cost_fen / 100)
    values["aov"] = catalogue.ratio(gmv, orders.payers)
    details["orders_imported"] = orders.orders_imported
    note = {} if orders.orders_imported else {"note": "no orders imported"}
    details["conversion_rate"] = {
        "payers": len(payers),
        "of_active": catalogue.ratio(len(payers & active), len(active)),
    } | note
    details["gmv"] = {"orders": orders.orders, "currency": "CNY"} | note
    details["profit"] = {"cost": orders.cost_fen / 100} | note
    for key in ("profit_margin", "aov", "paid_members"):
        details[key] = dict(note)


def _retention(
    more: MetricQueries, period: Period, days: int, last_day: Any, now: datetime | None
) -> dict[str, Any]:
    joiners = more.joiners(period.start_utc, period.end_utc)
    zone = period.zone
    cohort = [(j.user_id, j.joined_at.astimezone(zone).date()) for j in joiners]
    until = period.end_utc + timedelta(days=days + 1)
    if now is not None:
        until = min(until, now)
    by_member = more.joiner_message_days(
        period.start_utc,
        period.end_utc,
        period.start_utc,
        until,
        offset_segments(zone, period.start_utc, max(until, period.start_utc)),
    )
    user_of = {j.member_id: j.user_id for j in joiners}
    message_days = {user_of[m]: d for m, d in by_member.items()}
    return catalogue.retention(cohort, message_days, days, last_day)


def _sentiment(more: MetricQueries, period: Period, opts: StatsOptions) -> dict[str, Any]:
    start, end = period.start_utc, period.end_utc
    overall = more.sentiment(start, end, opts.positive, opts.negative, per_member=False)[0]

    def split(row: Any) -> dict[str, Any]:
        scored = row.positive + row.neutral + row.negative
        return {
            "positive": catalogue.ratio(row.positive, scored),
            "neutral": catalogue.ratio(row.neutral, scored),
            "negative": catalogue.ratio(row.negative, scored),
            "counts": {
                "positive": row.positive,
                "neutral": row.neutral,
                "negative": row.negative,
            }
            | ({} if row.unscored is None else {"unscored": row.unscored}),
            "mean": round(row.mean, 4) if row.mean is not None else None,
        }

    members = more.sentiment(start, end, opts.positive, opts.negative, per_member=True)
    return split(overall) | {
        "cutoffs": {"positive": opts.positive, "negative": opts.negative},
        "by_member": [{"member": r.member, "name": r.name} | split(r) for r in members],
    }


def _stickiness(
    more: MetricQueries,
    period: Period,
    opts: StatsOptions,
    facts: PeriodFacts,
    checkins: dict[int, int],
) -> dict[str, Any]:
    end = period.end_utc
    excluded = set(opts.exclude_users)
    by_id = {a.member_id: a for a in facts.activity}
    rows = []
    for member in more.current_members(end):
        if member.user_id in excluded:
            continue
        act = by_id.get(member.member_id)
        rows.append(
            (
                member.user_id,
                act.messages if act else 0,
                act.active_days if act else 0,
                checkins.get(member.member_id, 0),
            )
        )
    return catalogue.stickiness(rows, period.days, opts.stickiness)


def _period_hours(period: Period) -> list[datetime]:
    first = datetime.combine(period.first, datetime.min.time())
    return [first + timedelta(hours=h) for h in range(period.days * 24)]


def _time_shape(
    more: MetricQueries,
    period: Period,
    opts: StatsOptions,
    keys: frozenset[str],
    details: dict[str, Any],
) -> None:
    with_history = "anomalies" in keys and period.days <= 31
    start = period.start_utc - timedelta(weeks=opts.anomaly_weeks if with_history else 0)
    end = period.end_utc
    segments = offset_segments(period.zone, start, end)
    hourly = more.hourly(start, end, segments, opts.negative)
    hours = set(_period_hours(period))
    in_period = {h.hour: h.messages for h in hourly if h.hour in hours}
    details["hour_histogram"] = catalogue.hour_histogram(in_period)
    details["heatmap"] = catalogue.heatmap(in_period)
    if "anomalies" in keys:
        if not with_history:
            details["anomalies"] = {"note": "periods longer than 31 days are not scanned"}
            return
        series = {
            "messages": {h.hour: h.messages for h in hourly},
            "negative": {h.hour: h.negative for h in hourly},
            "leaves": more.hourly_leaves(start, end, segments),
        }
        details["anomalies"] = catalogue.anomalies(
            series,
            _period_hours(period),
            opts.anomaly_weeks,
            opts.anomaly_sigmas,
            opts.anomaly_minimums,
        )


def _text(
    more: MetricQueries,
    period: Period,
    opts: StatsOptions,
    keys: frozenset[str],
    details: dict[str, Any],
) -> None:
    from analytics.text import count_words, keywords, top_words

    start, end = period.start_utc, period.end_utc
    counts = count_words(opts.text_config(), more.texts(start, end, opts.max_texts))
    if "top_words" in keys:
        details["top_words"] = [{"word": w, "count": n} for w, n in top_words(counts, opts.top_n)]
    if "topics" in keys:
        if opts.topics:
            matched = more.topic_counts(start, end, opts.topics)
            details["topics"] = {
                "source": "configured",
                "topics": [
                    {"name": name, "keywords": list(words), "messages": matched[name]}
                    for name, words in opts.topics.items()
                ],
            }
        else:
            details["topics"] = {
                "source": "automatic",
                "keywords": [
                    {"keyword": w, "weight": round(s, 4)}
                    for w, s in keywords(counts, 10, opts.cache_dir)
                ],
            }


def _segments(
    more: MetricQueries, period: Period, opts: StatsOptions, as_of: datetime
) -> dict[str, Any]:
    since = as_of - timedelta(days=max(opts.silent_days, 14))
    # Only the window matters: silent means no message in it, whenever the last one was.
    recent = more.recent_activity(as_of, offset_segments(period.zone, since, as_of), since=since)
    excluded = set(opts.exclude_users)
    members = [
        catalogue.MemberRecent(
            m.user_id,
            recent[m.member_id].last_7 if m.member_id in recent else 0,
            recent[m.member_id].previous_7 if m.member_id in recent else 0,
            recent[m.member_id].days_last_7 if m.member_id in recent else 0,
            recent[m.member_id].last_at if m.member_id in recent else None,
            m.first_seen_at,
        )
        for m in more.current_members(as_of)
        if m.user_id not in excluded
    ]
    result = catalogue.segments(
        members, as_of, opts.silent_days, opts.high_active_days, opts.locale
    )
    result["as_of"] = as_of.astimezone(period.zone).isoformat()
    return result


def _funnel(
    more: MetricQueries, period: Period, opts: StatsOptions, as_of: datetime
) -> dict[str, Any]:
    joiners = more.joiners(period.start_utc, period.end_utc)
    joined_at = {j.member_id: j.joined_at for j in joiners}
    first_message, first_checkin, first_paid = more.joiner_first_times(
        period.start_utc,
        period.end_utc,
        period.start_utc,
        max(as_of, period.end_utc),
        opts.checkin_keywords,
    )

    def after_join(found: dict[int, datetime]) -> set[int]:
        return {m for m, at in found.items() if at >= joined_at[m]}

    spoke = after_join(first_message)
    took_part = after_join(first_checkin) & spoke
    paid = after_join(first_paid) & took_part
    return catalogue.funnel(len(joiners), len(spoke), len(took_part), len(paid))


def _churn(more: MetricQueries, period: Period, opts: StatsOptions) -> dict[str, Any]:
    window = timedelta(days=opts.churn_window_days)
    left: list[tuple[int, int, int]] = []
    leavers = more.departures(period.start_utc, period.end_utc)
    for member_id, at in leavers:
        facts = more.window([member_id], at - window, at)
        left.append(
            (facts[0].messages, facts[0].score_total, facts[0].scored) if facts else (0, 0, 0)
        )
    stayed_ids = {m.member_id for m in more.current_members(period.end_utc)}
    # One index-only pass over the window for everybody, then keep those who stayed.
    spoke = {
        f.member_id: f
        for f in more.window(None, period.end_utc - window, period.end_utc)
        if f.member_id in stayed_ids
    }
    stayed = [(f.messages, f.score_total, f.scored) for f in spoke.values()]
    stayed += [(0, 0, 0)] * (len(stayed_ids) - len(spoke))
    return {
        "window_days": opts.churn_window_days,
        "left": catalogue.profile(left, len(leavers), SCORE_SCALE),
        "stayed": catalogue.profile(stayed, len(stayed_ids), SCORE_SCALE),
    }
