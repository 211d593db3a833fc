"""What each dashboard page shows: figures gathered from storage, charts drawn, rows sorted.

Every figure comes from :func:`handlers.stats.collect_stats` (the numbers of
``qunpulse stats --json``), read by metric id, and from the SQL aggregates of
:mod:`storage.queries`. Optional catalogue metrics (heatmap, top words, segments,
retention, targets, stickiness, sentiment) are shown when the stats document has them
and as "not available yet" otherwise. Nothing here computes a metric.

These functions are synchronous: the web layer runs them on a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import Engine

from analytics import svg_charts as charts
from analytics.labels import Locale
from analytics.member_days import activity_streak
from analytics.metrics import Change
from analytics.periods import Period, offset_segments, resolve_period
from analytics.report import RATES, format_delta, format_value
from bot.dashboard.words import metric_label, w
from config.settings import Settings
from handlers.commands import KEY_METRICS, word_pairs
from handlers.stats import StatsOptions, collect_stats
from storage.queries import (
    DailyRow,
    GroupRecord,
    MemberRow,
    daily_sentiment,
    daily_series,
    member_directory,
    members_active_days,
)

#: Columns of the "My groups" table, each sortable.
OVERVIEW_COLUMNS = ("members", "messages", "activity_rate", "net_growth", "sentiment")
#: Columns of the member table, each sortable.
MEMBER_SORTS = ("name", "joined", "last_message", "messages")
MEMBERS_PER_PAGE = 100


#: What the member table needs from the catalogue: each member's segment and stickiness.
MEMBER_METRICS = frozenset({"segments", "stickiness"})
#: What the "My groups" table shows: computing these alone keeps the page quick.
OVERVIEW_METRICS = frozenset(
    {"members", "messages", "active_members", "activity_rate", "net_growth", "sentiment_split"}
)


def stats_document(
    engine: Engine,
    settings: Settings,
    group: GroupRecord,
    period: Period,
    wanted: frozenset[str] | None = None,
) -> Any:
    """The group's ``stats --json`` document: the one place pages get metrics from.

    ``wanted`` limits it to the metric ids a page shows (default: the whole catalogue).
    """
    options = StatsOptions.from_settings(settings)
    return collect_stats(engine, group, period, options=options, wanted=wanted).to_json()


def is_rate(metric_id: str) -> bool:
    return metric_id in RATES or metric_id.endswith("_rate") or metric_id.startswith("retention_")


def show_value(metric_id: str, value: float | int | None) -> str:
    if value is not None and is_rate(metric_id):
        return f"{value * 100:.1f}%"
    return format_value(metric_id, value)


def show_delta(metric_id: str, change: Change) -> str:
    if is_rate(metric_id) and change.delta is not None:
        points = round(change.delta * 100, 1)
        return "0" if points == 0 else f"{'+' if points > 0 else '−'}{abs(points):.1f}pp"
    return format_delta(metric_id, change)


@dataclass(frozen=True, slots=True)
class Figure:
    """One countable metric as a card or a cell: value, previous and change, formatted."""

    metric_id: str
    name: str
    value: str
    previous: str
    delta: str
    raw: float | int | None
    #: ``up``, ``down`` or ``flat``: the CSS class of the change.
    trend: str


def figure(metric_id: str, entry: Any, locale: Locale) -> Figure:
    change = Change(entry.get("value"), entry.get("previous"))
    delta = change.delta
    trend = "flat" if not delta else ("up" if delta > 0 else "down")
    return Figure(
        metric_id,
        metric_label(metric_id, locale),
        show_value(metric_id, change.value),
        show_value(metric_id, change.previous),
        show_delta(metric_id, change),
        change.value,
        trend,
    )


def countable(document: Mapping[str, Any]) -> list[str]:
    """The document's countable metric ids: the key ones first, then the rest as given."""
    keys = [
        k
        for k, v in document.items()
        if isinstance(v, Mapping) and "value" in v and "previous" in v
    ]
    return [k for k in KEY_METRICS if k in keys] + [k for k in keys if k not in KEY_METRICS]


def positive_share(document: Mapping[str, Any]) -> float | None:
    """The positive share of ``sentiment_split`` when the document has it."""
    split = document.get("sentiment_split")
    if not isinstance(split, Mapping):
        return None
    if isinstance(split.get("value"), Mapping):
        split = split["value"]
    share = split.get("positive")
    if isinstance(share, Mapping):
        share = share.get("share", share.get("value"))
    return float(share) if isinstance(share, int | float) else None


# ------------------------------------------------------------------ My groups


@dataclass(frozen=True, slots=True)
class GroupRow:
    group: GroupRecord
    label: str
    figures: dict[str, Figure]
    sentiment: float | None

    def sort_value(self, column: str) -> tuple[int, float | str]:
        """A key that sorts missing values last in either direction (see :func:`overview`)."""
        if column == "name":
            return (0, self.label)
        if column == "sentiment":
            return (0, self.sentiment) if self.sentiment is not None else (1, 0.0)
        raw = self.figures[column].raw if column in self.figures else None
        return (0, float(raw)) if raw is not None else (1, 0.0)


def group_label(settings: Settings, group: GroupRecord) -> str:
    """``[[groups]].name``, else the platform's name for it, else its chat id."""
    for entry in settings.groups:
        if entry.platform == group.platform and entry.chat_id == group.chat_id and entry.name:
            return entry.name
    return group.name or group.chat_id


def overview(
    engine: Engine,
    settings: Settings,
    groups: Sequence[GroupRecord],
    period: Period,
    sort: str,
    descending: bool,
) -> list[GroupRow]:
    """One row per group with its key figures for ``period``, sorted by ``sort``."""
    locale = settings.locale
    rows: list[GroupRow] = []
    for group in groups:
        document = stats_document(engine, settings, group, period, OVERVIEW_METRICS)
        figures = {
            key: figure(key, document[key], locale)
            for key in OVERVIEW_COLUMNS
            if isinstance(document.get(key), Mapping)
        }
        rows.append(
            GroupRow(group, group_label(settings, group), figures, positive_share(document))
        )
    column = sort if sort in (*OVERVIEW_COLUMNS, "name") else "messages"
    present = [r for r in rows if r.sort_value(column)[0] == 0]
    missing = [r for r in rows if r.sort_value(column)[0] == 1]
    present.sort(key=lambda r: r.sort_value(column)[1], reverse=descending)
    return present + sorted(missing, key=lambda r: r.label)


# ------------------------------------------------------------------ one group


@dataclass
class Section:
    """One block of the group page: a chart or a table, or a placeholder when absent."""

    key: str
    title: str
    svg: Markup | None = None
    table: list[list[str]] | None = None
    headers: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def available(self) -> bool:
        return self.svg is not None or self.table is not None


@dataclass
class GroupPage:
    group: GroupRecord
    label: str
    document: dict[str, Any]
    figures: list[Figure]
    sections: list[Section]


def _day_labels(period: Period) -> list[str]:
    return [d.strftime("%m-%d") for d in period.dates()]


def _daily(engine: Engine, group: GroupRecord, period: Period, min_messages: int) -> list[DailyRow]:
    start, end = period.start_utc, period.end_utc
    with engine.connect() as connection:
        by_day = daily_series(
            connection,
            group.id,
            start,
            end,
            offset_segments(period.zone, start, end),
            min_messages=min_messages,
        )
    return [by_day.get(day) or DailyRow(day, 0, 0, 0, 0, 0) for day in period.dates()]


def group_page(engine: Engine, settings: Settings, group: GroupRecord, period: Period) -> GroupPage:
    """The group page: key figures, trends, and every catalogue section the document has."""
    locale = settings.locale
    # The metrics and the daily series are independent scans: run them side by side
    # (each on its own pooled connection; the database does the work, not Python).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="qunpulse-page") as pool:
        pending_document = pool.submit(stats_document, engine, settings, group, period)
        pending_daily = pool.submit(_daily, engine, group, period, settings.activity.min_messages)
        document, daily = pending_document.result(), pending_daily.result()
    figures = [figure(key, document[key], locale) for key in countable(document)]
    labels = _day_labels(period)
    sections = [
        Section(
            "daily_activity",
            w("daily_activity", locale),
            svg=Markup(  # noqa: S704 - charts escape every text they draw
                charts.line_chart(
                    labels,
                    [
                        charts.Series(
                            w("messages", locale),
                            tuple(d.messages for d in daily),
                            charts.PALETTE[0],
                        ),
                        charts.Series(
                            w("active", locale),
                            tuple(d.active_members for d in daily),
                            charts.PALETTE[1],
                        ),
                    ],
                    title=w("daily_activity", locale),
                )
            ),
        ),
        Section(
            "daily_membership",
            w("daily_membership", locale),
            svg=Markup(  # noqa: S704
                charts.bar_chart(
                    labels,
                    [
                        charts.Series(
                            w("joins", locale), tuple(d.joins for d in daily), charts.PALETTE[2]
                        ),
                        charts.Series(
                            w("leaves", locale),
                            tuple(d.leaves + d.removed for d in daily),
                            charts.PALETTE[3],
                        ),
                    ],
                    title=w("daily_membership", locale),
                )
            ),
        ),
        _heatmap(document, locale),
        _rank(document, locale),
        _words(document, locale),
        _sentiment(engine, group, period, document, locale),
        _segments(document, locale),
        _retention(document, locale),
        _targets(document, locale),
    ]
    return GroupPage(group, group_label(settings, group), document, figures, sections)


def _heatmap(document: Mapping[str, Any], locale: Locale) -> Section:
    section = Section("heatmap", w("heatmap", locale))
    value = document.get("heatmap")
    grid = value.get("counts") if isinstance(value, Mapping) else value
    if isinstance(grid, Sequence) and len(grid) == 7:
        rows = w("weekdays", locale).split(",")
        values = [[float(v) for v in row] for row in grid]
        section.svg = Markup(  # noqa: S704
            charts.heatmap(rows, [str(h) for h in range(24)], values, title=section.title)
        )
    return section


def _rank(document: Mapping[str, Any], locale: Locale) -> Section:
    section = Section("rank", w("rank", locale))
    entries = document.get("message_rank")
    if isinstance(entries, list):
        items = []
        for entry in entries[:15]:
            name = entry.get("name") or entry.get("member")
            if entry.get("opted_out"):
                name = f"{name} ({w('opted_out', locale)})"
            items.append((str(name), float(entry.get("messages", 0))))
        if items:
            section.svg = Markup(  # noqa: S704
                charts.horizontal_bars(items, title=section.title)
            )
        else:
            section.note = w("no_data", locale)
            section.table = []
    return section


def _words(document: Mapping[str, Any], locale: Locale) -> Section:
    section = Section("top_words", w("top_words", locale))
    if "top_words" in document:
        pairs = word_pairs(document["top_words"])[:40]
        if pairs:
            section.svg = Markup(charts.word_cloud(pairs, title=section.title))  # noqa: S704
        else:
            section.table, section.note = [], w("no_data", locale)
    return section


def _sentiment(
    engine: Engine,
    group: GroupRecord,
    period: Period,
    document: Mapping[str, Any],
    locale: Locale,
) -> Section:
    section = Section("sentiment", w("sentiment_over_time", locale))
    start, end = period.start_utc, period.end_utc
    with engine.connect() as connection:
        days = {
            row.day: row
            for row in daily_sentiment(
                connection, group.id, start, end, offset_segments(period.zone, start, end)
            )
        }
    split = document.get("sentiment_split")
    if isinstance(split, Mapping):
        parts = []
        for key in ("positive", "neutral", "negative"):
            share = split.get(key)
            if isinstance(share, Mapping):
                share = share.get("share", share.get("value"))
            if isinstance(share, int | float):
                parts.append(f"{w(key, locale)} {share * 100:.0f}%")
        mean = split.get("mean", split.get("mean_score"))
        if isinstance(mean, int | float):
            parts.append(f"{w('mean', locale)} {mean:.2f}")
        section.note = " · ".join(parts) or None
    if days:
        labels = _day_labels(period)
        values = tuple(round(days[d].mean * 100, 1) if d in days else 0.0 for d in period.dates())
        section.svg = Markup(  # noqa: S704
            charts.line_chart(
                labels,
                [charts.Series(w("mean", locale) + " ×100", values, charts.PALETTE[2])],
                title=section.title,
            )
        )
    elif section.note:
        section.table = []
    return section


def _names(document: Mapping[str, Any]) -> dict[str, str]:
    """Display names by user id, from the message rank (segments carry ids only)."""
    names: dict[str, str] = {}
    for entry in document.get("message_rank") or []:
        if isinstance(entry, Mapping) and entry.get("name"):
            names[str(entry.get("member"))] = str(entry["name"])
    return names


def _segments(document: Mapping[str, Any], locale: Locale) -> Section:
    section = Section("segments", w("segments", locale))
    value = document.get("segments")
    names = _names(document)
    if isinstance(value, Mapping):
        section.headers = [
            w("segment", locale),
            w("count", locale),
            w("member", locale),
            w("action", locale),
        ]
        rows = []
        for key in ("high_active", "churn_warning", "silent"):
            entry = value.get(key)
            if not isinstance(entry, Mapping):
                continue
            members = [names.get(str(m), str(m)) for m in entry.get("members") or []]
            shown = "、".join(members[:12]) + ("…" if len(members) > 12 else "")
            rows.append(
                [
                    w(key, locale),
                    str(entry.get("count", len(members))),
                    shown,
                    str(entry.get("action") or ""),
                ]
            )
        section.table = rows
    return section


def _retention(document: Mapping[str, Any], locale: Locale) -> Section:
    section = Section("retention", w("retention", locale))
    found = [k for k in ("retention_d1", "retention_d7", "retention_d30") if k in document]
    if not found:
        return section
    section.note = " · ".join(
        f"{metric_label(k, locale)} {show_value(k, document[k].get('value'))}" for k in found
    )
    cohorts = document.get("retention_d7", {}).get("cohorts") or []
    section.headers = [
        w("cohort", locale),
        w("joined_n", locale),
        w("retained", locale),
        w("rate", locale),
    ]
    section.table = [
        [
            str(c.get("day")),
            str(c.get("joined")),
            str(c.get("retained")),
            show_value("retention_d7", c.get("rate")),
        ]
        for c in cohorts
        if isinstance(c, Mapping)
    ]
    return section


def _targets(document: Mapping[str, Any], locale: Locale) -> Section:
    section = Section("targets", w("targets", locale))
    value = document.get("targets")
    if isinstance(value, Mapping):
        section.headers = ["", w("target", locale), w("actual", locale), w("met", locale)]
        section.table = []
        for key, entry in value.items():
            if not isinstance(entry, Mapping):
                continue
            met = entry.get("met")
            section.table.append(
                [
                    metric_label(str(key), locale),
                    show_value(str(key), entry.get("target")),
                    show_value(str(key), entry.get("actual")),
                    "–" if met is None else w("yes" if met else "no", locale),
                ]
            )
        if not section.table:
            section.note = w("no_targets", locale)
    return section


# -------------------------------------------------------------------- members


#: How far back the member table looks for a streak of active days.
STREAK_WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class MemberLine:
    row: MemberRow
    segment: str | None
    stickiness: str | None
    #: Consecutive active days up to today (``≥30`` past the window); None if not looked up.
    streak: str | None = None


@dataclass
class MembersPage:
    group: GroupRecord
    label: str
    lines: list[MemberLine]
    total: int
    matching: int
    page: int
    pages: int


def _segment_of(document: Mapping[str, Any], locale: Locale) -> dict[str, str]:
    value = document.get("segments")
    found: dict[str, str] = {}
    if isinstance(value, Mapping):
        for key in ("high_active", "churn_warning", "silent"):
            entry = value.get(key)
            if isinstance(entry, Mapping):
                for member in entry.get("members") or []:
                    found.setdefault(str(member), w(key, locale))
    return found


def _stickiness_of(document: Mapping[str, Any]) -> dict[str, str]:
    value = document.get("stickiness")
    found: dict[str, str] = {}
    if isinstance(value, Mapping):
        for entry in value.get("members") or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("score"), int | float):
                found[str(entry.get("member"))] = f"{entry['score']:.2f} {entry.get('bucket', '')}"
    return found


def _member_key(sort: str) -> Any:
    far = datetime.min.replace(tzinfo=UTC)

    def key(line: MemberLine) -> Any:
        row = line.row
        if sort == "name":
            return (row.name or row.user_id).lower()
        if sort == "joined":
            return row.joined_at or row.first_seen_at
        if sort == "last_message":
            return row.last_message_at or far
        return row.messages

    return key


def _with_streaks(
    engine: Engine, group: GroupRecord, lines: list[MemberLine], today: date, zone: ZoneInfo
) -> list[MemberLine]:
    """The lines with each member's active streak up to ``today`` (one query for the page)."""
    window = resolve_period(f"{STREAK_WINDOW_DAYS}d", today, zone)
    start, end = window.start_utc, window.end_utc
    with engine.connect() as connection:
        days = members_active_days(
            connection,
            group.id,
            [line.row.user_id for line in lines],
            start,
            end,
            offset_segments(window.zone, start, end),
        )
    result = []
    for line in lines:
        streak = activity_streak(days.get(line.row.user_id, set()), today)
        shown = f"≥{STREAK_WINDOW_DAYS}" if streak >= STREAK_WINDOW_DAYS else str(streak)
        result.append(replace(line, streak=shown))
    return result


def _directory(engine: Engine, group: GroupRecord, period: Period) -> list[MemberRow]:
    with engine.connect() as connection:
        return member_directory(connection, group.id, period.start_utc, period.end_utc)


def members_page(
    engine: Engine,
    settings: Settings,
    group: GroupRecord,
    period: Period,
    *,
    query: str,
    sort: str,
    descending: bool,
    page: int,
    today: date,
) -> MembersPage:
    """The member table: everyone seen in the group, filtered, sorted, one page of it."""

    def one_page() -> tuple[list[MemberLine], int, int, int, int]:
        rows = _directory(engine, group, period)
        lines = [MemberLine(r, None, None) for r in rows]
        needle = query.strip().lower()
        if needle:
            lines = [
                line
                for line in lines
                if needle in line.row.user_id.lower() or needle in (line.row.name or "").lower()
            ]
        column = sort if sort in MEMBER_SORTS else "messages"
        lines.sort(key=_member_key(column), reverse=descending)
        pages = max(1, -(-len(lines) // MEMBERS_PER_PAGE))
        number = min(max(page, 1), pages)
        chosen = lines[(number - 1) * MEMBERS_PER_PAGE : number * MEMBERS_PER_PAGE]
        shown = _with_streaks(engine, group, chosen, today, period.zone)
        return shown, len(rows), len(lines), number, pages

    # The metrics (for segments and stickiness) and the member list with its streaks are
    # independent: fetch them side by side.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="qunpulse-page") as pool:
        pending_page = pool.submit(one_page)
        pending_document = pool.submit(
            stats_document, engine, settings, group, period, MEMBER_METRICS
        )
        (shown, total, matching, number, pages), document = (
            pending_page.result(),
            pending_document.result(),
        )
    segments = _segment_of(document, settings.locale)
    stickiness = _stickiness_of(document)
    shown = [
        replace(
            line,
            segment=segments.get(line.row.user_id),
            stickiness=stickiness.get(line.row.user_id),
        )
        for line in shown
    ]
    return MembersPage(group, group_label(settings, group), shown, total, matching, number, pages)


# ------------------------------------------------------------------ alerts


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One stored alert as the alerts page lists it."""

    time: str
    kind: str
    detail: str
    state: str


def alert_rows(
    engine: Engine, settings: Settings, group: GroupRecord, period: Period
) -> list[AlertRow]:
    """The group's alerts raised in ``period``, newest first."""
    from analytics.alerts import kind_label
    from storage.alerts import AlertStore

    zone = settings.zone
    rows = []
    for alert in AlertStore(engine).list(group_id=group.id, since=period.start_utc):
        if alert.raised_at >= period.end_utc:
            continue
        who = alert.sender_name or alert.sender_user_id
        quoted = f"{who}: {alert.text}" if who and alert.text else alert.summary.split("\n")[0]
        rows.append(
            AlertRow(
                alert.raised_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                kind_label(alert.kind, settings.locale),
                quoted,
                alert.state + (f" ({alert.error})" if alert.error else ""),
            )
        )
    return rows
