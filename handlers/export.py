"""A group's period as a workbook operators open in Excel or WPS (``qunpulse export``).

Sheets: Summary (every metric of :func:`handlers.stats.collect_stats` with the previous
period and the change), Message rank, Members, Daily and Alerts. Numbers are numbers,
dates are real dates in the configured time zone, headers are in the configured locale.
The same sheets can be written as CSV files (UTF-8 with BOM, so that Excel shows
Chinese correctly), one file per sheet.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from analytics.alerts import kind_label
from analytics.labels import Locale, metric_name, word
from analytics.periods import Period, offset_segments
from analytics.report import RATES
from handlers.stats import GroupStats, StatsOptions, collect_stats
from storage.alerts import AlertRecord, AlertStore
from storage.queries import DailyRow, GroupRecord, MemberRow, daily_series, member_directory

Cell = str | int | float | date | datetime | None
#: How a column's numbers are shown: Excel number formats per kind.
ColumnKind = Literal["text", "int", "number", "percent", "date", "datetime"]

_FORMATS: dict[ColumnKind, str] = {
    "int": "0",
    "number": "0.00",
    "percent": "0.0%",
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
}

#: The sheets in workbook order; the key names the CSV file of each.
SHEET_KEYS = ("summary", "rank", "members", "daily", "alerts")


@dataclass(frozen=True, slots=True)
class Sheet:
    key: str
    title: str
    headers: tuple[str, ...]
    kinds: tuple[ColumnKind, ...]
    rows: list[tuple[Cell, ...]]
    #: Lines above the table (group, period): shown in the workbook, first in the CSV.
    preamble: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExportData:
    """Everything one export shows, gathered in one go."""

    stats: GroupStats
    members: list[MemberRow]
    daily: list[DailyRow]
    exported_at: datetime
    #: The group's alerts raised in the period, oldest first.
    alerts: list[AlertRecord] = field(default_factory=list)


def gather_export(
    engine: Engine, group: GroupRecord, period: Period, options: StatsOptions, now: datetime
) -> ExportData:
    """Read a group's figures for ``period`` (the same numbers as ``qunpulse stats``)."""
    stats = collect_stats(engine, group, period, options=options, now=now)
    start, end = period.start_utc, period.end_utc
    with engine.connect() as connection:
        members = member_directory(connection, group.id, start, end)
        by_day = daily_series(
            connection,
            group.id,
            start,
            end,
            offset_segments(period.zone, start, end),
            min_messages=options.rule.min_messages,
        )
    daily = [by_day.get(day) or DailyRow(day, 0, 0, 0, 0, 0) for day in period.dates()]
    alerts = [
        a
        for a in reversed(AlertStore(engine).list(group_id=group.id, since=start, limit=100_000))
        if a.raised_at < end
    ]
    return ExportData(stats, members, daily, now, alerts)


def _local(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Excel has no time zones: show the local wall time of the configured zone."""
    if value is None:
        return None
    return value.astimezone(zone).replace(tzinfo=None, microsecond=0)


def build_sheets(data: ExportData, locale: Locale) -> list[Sheet]:
    """The workbook's sheets, in order, with headers in ``locale``."""
    stats = data.stats
    zone = stats.period.zone
    group = stats.group
    preamble = (
        f"{word('group', locale)}: {group.name or group.chat_id} ({group.platform})",
        f"{word('period', locale)}: {stats.period.label()} ({zone.key})",
        f"{word('generated_at', locale)}: "
        f"{data.exported_at.astimezone(zone).isoformat(timespec='seconds')}",
        word("source_full" if group.source == "full" else "source_at_only", locale),
    )
    summary_rows: list[tuple[Cell, ...]] = []
    for metric_id, change in stats.metrics.items():
        summary_rows.append(
            (
                metric_id,
                metric_name(metric_id, locale),
                change.value,
                change.previous,
                change.delta,
                change.delta_pct,
            )
        )
    value_kind: ColumnKind = "number"
    summary = Sheet(
        "summary",
        word("sheet_summary", locale),
        (
            word("metric_id", locale),
            word("metric", locale),
            word("value", locale),
            word("previous", locale),
            word("change", locale),
            word("change_pct", locale),
        ),
        ("text", "text", value_kind, value_kind, value_kind, "percent"),
        summary_rows,
        preamble,
    )
    opted = word("opted_out_short", locale)
    rank = Sheet(
        "rank",
        word("sheet_rank", locale),
        (
            word("rank", locale),
            word("user_id", locale),
            word("name", locale),
            word("count", locale),
            word("privacy", locale),
        ),
        ("int", "text", "text", "int", "text"),
        [
            (e.position, e.member, e.name, e.messages, opted if e.opted_out else None)
            for e in stats.rank
        ],
    )
    members = Sheet(
        "members",
        word("sheet_members", locale),
        (
            word("user_id", locale),
            word("name", locale),
            word("first_seen", locale),
            word("joined", locale),
            word("last_message", locale),
            word("messages_in_period", locale),
            word("status", locale),
            word("privacy", locale),
        ),
        ("text", "text", "datetime", "datetime", "datetime", "int", "text", "text"),
        [
            (
                m.user_id,
                m.name,
                _local(m.first_seen_at, zone),
                _local(m.joined_at, zone),
                _local(m.last_message_at, zone),
                m.messages,
                word(f"status_{m.status or 'join'}", locale),
                opted if m.opted_out else None,
            )
            for m in data.members
        ],
    )
    daily = Sheet(
        "daily",
        word("sheet_daily", locale),
        (
            word("date", locale),
            metric_name("messages", locale),
            metric_name("active_members", locale),
            metric_name("joins", locale),
            metric_name("leaves", locale),
            metric_name("removed", locale),
        ),
        ("date", "int", "int", "int", "int", "int"),
        [(d.day, d.messages, d.active_members, d.joins, d.leaves, d.removed) for d in data.daily],
    )
    alerts = Sheet(
        "alerts",
        word("sheet_alerts", locale),
        (
            word("time", locale),
            word("member", locale),
            word("alert_kind", locale),
            word("text", locale),
            word("score", locale),
        ),
        ("datetime", "text", "text", "text", "number"),
        [
            (
                _local(a.message_at or a.raised_at, zone),
                a.sender_name or a.sender_user_id,
                kind_label(a.kind, locale),
                a.text if a.text is not None else a.summary,
                a.score,
            )
            for a in data.alerts
        ],
    )
    return [summary, rank, members, daily, alerts]


def _summary_kind(metric_id: str) -> ColumnKind:
    return "percent" if metric_id in RATES else "number"


def write_xlsx(sheets: Sequence[Sheet], path: Path) -> Path:
    """Write the sheets as one ``.xlsx`` workbook (Excel 2010+, WPS)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for sheet in sheets:
        ws = workbook.create_sheet(sheet.title[:31])
        for line in sheet.preamble:
            ws.append([line])
        if sheet.preamble:
            ws.append([])
        ws.append(list(sheet.headers))
        header_row = ws.max_row
        for cell in ws[header_row]:
            cell.font = Font(bold=True)
        ws.freeze_panes = f"A{header_row + 1}"  # keep the headers in view
        for values in sheet.rows:
            ws.append(list(values))
            row = ws.max_row
            for column, kind in enumerate(sheet.kinds, start=1):
                if sheet.key == "summary" and column in (3, 4, 5):
                    kind = _summary_kind(str(values[0]))
                if kind in _FORMATS:
                    ws.cell(row=row, column=column).number_format = _FORMATS[kind]
        for column, header in enumerate(sheet.headers, start=1):
            width = max(10, 2 * len(header) + 2, 18 if sheet.kinds[column - 1] == "datetime" else 0)
            ws.column_dimensions[get_column_letter(column)].width = width
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def write_csv(sheets: Sequence[Sheet], path: Path) -> list[Path]:
    """Write one CSV per sheet: ``path`` itself for the summary, ``STEM-KEY.csv`` beside it.

    UTF-8 with a byte-order mark (Excel then reads Chinese correctly); dates as
    ``YYYY-MM-DD`` and times as ``YYYY-MM-DD HH:MM:SS`` in the configured zone.
    """
    written: list[Path] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for sheet in sheets:
        target = path if sheet.key == "summary" else path.with_name(f"{path.stem}-{sheet.key}.csv")
        with target.open("w", encoding="utf-8-sig", newline="") as handle:
            out = csv.writer(handle)
            for line in sheet.preamble:
                out.writerow([line])
            if sheet.preamble:
                out.writerow([])
            out.writerow(sheet.headers)
            for values in sheet.rows:
                out.writerow([_csv_cell(value) for value in values])
        written.append(target)
    return written


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
