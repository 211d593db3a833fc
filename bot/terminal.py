"""Terminal output: aligned tables (CJK-aware widths, via rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from analytics.labels import Locale, metric_name, part_name, word
from analytics.report import format_count, metric_rows
from handlers.stats import GroupStats

RANK_ROWS = 10
WORD_ROWS = 15


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def print_stats(stats: GroupStats, locale: Locale, console: Console | None = None) -> None:
    """Print the metrics: a table of countable ones, then one block per other metric."""
    out = console or Console(highlight=False)
    if stats.operator is not None:
        names = ", ".join(g.name or g.chat_id for g in stats.groups)
        out.print(f"{stats.operator}: {names}")
    else:
        group = stats.group
        out.print(f"{word('group', locale)}: {group.name or group.chat_id} ({group.platform})")
        note = "source_full" if group.source == "full" else "source_at_only"
        out.print(word(note, locale))
    out.print(f"{word('period', locale)}: {stats.period.label()} ({stats.period.zone.key})")

    wanted = {k: v for k, v in stats.metrics.items() if k in stats.wanted}
    if wanted:
        table = Table(show_edge=False)
        for column in ("metric", "value", "previous", "change"):
            table.add_column(
                word(column, locale), justify="left" if column == "metric" else "right"
            )
        for row in metric_rows(wanted, locale):
            table.add_row(*row)
        out.print(table)

    if "message_rank" in stats.wanted:
        _rank(out, stats, locale)
    details = stats.details
    for key, show in _BLOCKS:
        if key in stats.wanted and key in details:
            lines = show(details[key], locale)
            if lines:
                out.print(f"[bold]{metric_name(key, locale)}[/bold]")
                for line in lines:
                    out.print(f"  {line}", markup=False)


def _rank(out: Console, stats: GroupStats, locale: Locale) -> None:
    out.print(f"[bold]{metric_name('message_rank', locale)}[/bold]")
    if not stats.rank:
        out.print(word("no_messages", locale))
        return
    ranking = Table(show_edge=False)
    ranking.add_column(word("rank", locale), justify="right")
    ranking.add_column(word("member", locale))
    ranking.add_column(word("count", locale), justify="right")
    for entry in stats.rank[:RANK_ROWS]:
        name = entry.name or entry.member
        if entry.opted_out:
            name = f"{name} {word('opted_out', locale)}"
        ranking.add_row(str(entry.position), name, format_count(entry.messages))
    out.print(ranking)


def _sentiment(value: dict[str, Any], locale: Locale) -> list[str]:
    parts = [
        f"{part_name(k, locale)} {_pct(value[k])}" for k in ("positive", "neutral", "negative")
    ]
    mean = "–" if value["mean"] is None else f"{value['mean']:.2f}"
    return ["  ".join(parts) + f"  {part_name('mean', locale)} {mean}"]


def _words(value: list[dict[str, Any]], locale: Locale) -> list[str]:
    if not value:
        return [part_name("none", locale)]
    return ["  ".join(f"{w['word']}({w['count']})" for w in value[:WORD_ROWS])]


def _topics(value: dict[str, Any], locale: Locale) -> list[str]:
    if value.get("source") == "configured":
        return ["  ".join(f"{t['name']}({t['messages']})" for t in value["topics"])]
    return ["  ".join(k["keyword"] for k in value.get("keywords", [])) or part_name("none", locale)]


def _hours(value: dict[str, Any], locale: Locale) -> list[str]:
    peak = value["peak_hour"]
    shown = "–" if peak is None else f"{peak:02d}:00–{peak:02d}:59"
    bars = " ".join(str(c) for c in value["counts"])
    return [f"{part_name('peak_hour', locale)}: {shown}", f"0–23h: {bars}"]


def _heatmap(value: dict[str, Any], locale: Locale) -> list[str]:
    peak = value["peak_weekday"]
    days = part_name("weekdays", locale)
    shown = "–" if peak is None else days[peak]
    totals = " ".join(f"{days[d]}:{n}" for d, n in enumerate(value["weekday_totals"]))
    return [f"{part_name('peak_weekday', locale)}: {shown}", totals]


def _behaviours(value: dict[str, Any], locale: Locale) -> list[str]:
    return [
        "  ".join(
            f"{part_name(k, locale)} {v['count']} ({_pct(v['rate'])})" for k, v in value.items()
        )
    ]


def _stickiness(value: dict[str, Any], locale: Locale) -> list[str]:
    return ["  ".join(f"{part_name(k, locale)} {n}" for k, n in value["buckets"].items())]


def _segments(value: dict[str, Any], locale: Locale) -> list[str]:
    return [
        f"{part_name(k, locale)} {v['count']}: {v['action']}"
        for k, v in value.items()
        if isinstance(v, dict)
    ]


def _funnel(value: dict[str, Any], locale: Locale) -> list[str]:
    return [" → ".join(f"{part_name(s['step'], locale)} {s['members']}" for s in value["steps"])]


def _churn(value: dict[str, Any], locale: Locale) -> list[str]:
    lines = []
    for key in ("left", "stayed"):
        p = value[key]
        per = "–" if p["messages_per_member"] is None else f"{p['messages_per_member']:.1f}"
        mean = "–" if p["mean_sentiment"] is None else f"{p['mean_sentiment']:.2f}"
        lines.append(f"{part_name(key, locale)} {p['members']}: {per} / {mean}")
    return lines


def _anomalies(value: Any, locale: Locale) -> list[str]:
    if isinstance(value, dict):
        return [str(value.get("note", ""))]
    if not value:
        return [part_name("none", locale)]
    return [
        f"{a['hour']} {a['measure']} {a['value']} (μ {a['mean']}, σ {a['sigma']})" for a in value
    ]


def _targets(value: dict[str, Any], locale: Locale) -> list[str]:
    lines = []
    for key, t in value.items():
        state = (
            part_name("no_data", locale)
            if t["met"] is None
            else part_name("met" if t["met"] else "missed", locale)
        )
        lines.append(f"{metric_name(key, locale)}: {t['actual']} / {t['target']} {state}")
    return lines


def _score(value: dict[str, Any], locale: Locale) -> list[str]:
    if value["value"] is None:
        return [part_name("no_data", locale)]
    return [f"{value['value']}  {part_name('grade', locale)} {value['grade']}"]


_BLOCKS = (
    ("sentiment_split", _sentiment),
    ("top_words", _words),
    ("topics", _topics),
    ("hour_histogram", _hours),
    ("heatmap", _heatmap),
    ("behaviours", _behaviours),
    ("stickiness", _stickiness),
    ("segments", _segments),
    ("funnel", _funnel),
    ("churn_profile", _churn),
    ("anomalies", _anomalies),
    ("targets", _targets),
    ("operator_score", _score),
)
