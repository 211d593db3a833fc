"""Terminal output: aligned tables (CJK-aware widths, via rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from analytics.labels import Locale, metric_name, word
from analytics.report import format_count, metric_rows
from handlers.stats import GroupStats

RANK_ROWS = 10


def print_stats(stats: GroupStats, locale: Locale, console: Console | None = None) -> None:
    """Print a group's metrics and its top senders as two tables."""
    out = console or Console(highlight=False)
    group = stats.group
    title = f"{word('group', locale)}: {group.name or group.chat_id} ({group.platform})"
    out.print(title)
    out.print(f"{word('period', locale)}: {stats.period.label()} ({stats.period.zone.key})")
    note = "source_full" if group.source == "full" else "source_at_only"
    out.print(word(note, locale))

    table = Table(show_edge=False)
    for column in ("metric", "value", "previous", "change"):
        table.add_column(word(column, locale), justify="left" if column == "metric" else "right")
    for row in metric_rows(stats.metrics, locale):
        table.add_row(*row)
    out.print(table)

    out.print(metric_name("message_rank", locale))
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
