"""``qunpulse import``: load history files idempotently, streaming, in batches.

Three formats (README "Import history" shows a sample of each):

* ``archive-jsonl``: decrypted WeCom session-archive records, one JSON object a line.
* ``csv``: messages, columns ``platform, chat_id, chat_name, sender_id, sender_name,
  sent_at, msg_type, text, msg_id`` (``msg_id`` optional).
* ``orders-csv``: orders, columns ``order_id, platform, user_id, amount, cost, status,
  paid_at``.

Messages are stored through :class:`storage.ingest.EventStore` with the same unique
keys as live callbacks, so a re-run, an overlapping file or a message also received live
is stored once. Every batch is its own transaction: a crash loses at most the batch in
flight, and re-running the command skips what was stored. A bad row is reported with
file, line and reason and skipped; with ``strict`` the whole file is checked first and
nothing is written when any row is bad.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Literal, get_args

from sqlalchemy import Engine

from bot.events import Chat, ChatId, MessageEvent, Person, PlatformName, UserId
from bot.platforms.wecom_archive import archive_item
from storage.history import OrderRow, OrderStore, Recall, apply_recalls
from storage.ingest import EventStore

ImportFormat = Literal["archive-jsonl", "csv", "orders-csv"]
FORMATS: tuple[str, ...] = get_args(ImportFormat)

#: The bot id imported events are recorded under (``inbound_event.bot_id``).
IMPORT_BOT_ID = "import"
PLATFORMS: tuple[str, ...] = get_args(PlatformName)
MESSAGE_COLUMNS = ("platform", "chat_id", "sender_id", "sent_at")
OPTIONAL_MESSAGE_COLUMNS = ("chat_name", "sender_name", "msg_type", "text", "msg_id")
ORDER_COLUMNS = ("order_id", "platform", "user_id", "amount", "status", "paid_at")
ORDER_STATUSES = {
    "paid": "paid",
    "completed": "completed",
    "refunded": "refunded",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "已支付": "paid",
    "已付款": "paid",
    "已完成": "completed",
    "已退款": "refunded",
    "已取消": "cancelled",
}
#: Rejected rows printed in full; beyond this only the count is given.
SHOWN_REJECTIONS = 50


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, unknown format, missing columns)."""


class BadRow(ValueError):
    """One row cannot be imported; the message is the reason."""


Item = MessageEvent | Recall | OrderRow


@dataclass(slots=True)
class ImportSummary:
    """The outcome of one import."""

    file: str
    format: ImportFormat
    dry_run: bool = False
    rows: int = 0
    imported: int = 0
    duplicated: int = 0
    recalled: int = 0
    skipped: int = 0
    rejected: int = 0
    #: ``FILE:LINE: reason`` for the first :data:`SHOWN_REJECTIONS` rejected rows.
    rejections: list[str] = field(default_factory=list)
    stopped_at: str | None = None
    seconds: float = 0.0

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < SHOWN_REJECTIONS:
            self.rejections.append(f"{self.file}:{line}: {reason}")

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """The one-paragraph summary printed at the end."""
        if self.stopped_at:
            return f"--strict: stopped at {self.stopped_at}; nothing was written"
        if self.dry_run:
            valid = self.rows - self.rejected - self.skipped
            head = f"dry run, nothing written: {valid} rows valid"
        else:
            head = f"imported {self.imported}, duplicated {self.duplicated}"
        parts = [head, f"rejected {self.rejected}", f"skipped {self.skipped}"]
        if self.recalled:
            parts.append(f"recalls applied {self.recalled}")
        return (
            f"{self.file} ({self.format}): {', '.join(parts)} "
            f"({self.rows} rows in {self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s)"
        )


# --- reading ------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file is valid UTF-8 (BOM or not), else ``gb18030``.

    Chinese Excel saves CSV as GB18030 (GBK); checking the whole file, incrementally,
    keeps memory flat and never misreads a file whose first non-ASCII byte comes late.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as raw:
        try:
            while chunk := raw.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def guess_format(path: Path, encoding: str) -> ImportFormat:
    """Guess the format from the first non-empty line.

    Raises:
        ImportFileError: the first line is neither JSON nor a known CSV header.
    """
    with path.open(encoding=encoding, newline="") as text:
        for line in text:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("{"):
                return "archive-jsonl"
            header = {name.strip().lower() for name in next(csv.reader([stripped]))}
            if "order_id" in header:
                return "orders-csv"
            if {"chat_id", "sent_at"} <= header:
                return "csv"
            break
    raise ImportFileError(
        f"{path}: cannot tell the format from the first line; pass --format ({', '.join(FORMATS)})"
    )


class _Counting(io.RawIOBase):
    """A read-through file that counts bytes, for the progress bar's ETA."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


# --- parsing rows -------------------------------------------------------------------------


def parse_time(value: str, zone: tzinfo) -> datetime:
    """ISO 8601 or ``YYYY-MM-DD HH:MM[:SS]`` (also with ``/``); naive means ``zone``.

    Raises:
        BadRow: the value is not such a time.
    """
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise BadRow(
            f"expected a time like 2026-11-20 09:30[:00] or ISO 8601, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def _cell(row: dict[str, str | None], name: str) -> str:
    value = row.get(name)
    return value.strip() if isinstance(value, str) else ""


def _required(row: dict[str, str | None], name: str) -> str:
    value = _cell(row, name)
    if not value:
        raise BadRow(f"{name}: empty")
    return value


def _platform(row: dict[str, str | None]) -> PlatformName:
    value = _required(row, "platform").lower()
    if value not in PLATFORMS:
        raise BadRow(f"platform: expected one of {', '.join(PLATFORMS)}, got {value!r}")
    return value  # type: ignore[return-value]


def message_from_csv(row: dict[str, str | None], zone: tzinfo) -> MessageEvent:
    """One message CSV row as a message event.

    Without ``msg_id``, the key is a hash of platform, chat, sender, time, type and
    text, stable across files (so overlapping exports de-duplicate); the price is that
    one person sending the same text twice within the same second counts once.

    Raises:
        BadRow: a required cell is empty or a value is malformed.
    """
    platform = _platform(row)
    chat_id = _required(row, "chat_id")
    sender_id = _required(row, "sender_id")
    sent_at = parse_time(_required(row, "sent_at"), zone)
    msg_type = _cell(row, "msg_type") or "text"
    text = row.get("text")
    msg_id = _cell(row, "msg_id")
    if not msg_id:
        material = "\x1f".join(
            [platform, chat_id, sender_id, sent_at.isoformat(), msg_type, text or ""]
        )
        msg_id = "csv:" + hashlib.sha256(material.encode()).hexdigest()[:40]
    if len(msg_id) > 120 or len(chat_id) > 128 or len(sender_id) > 128:
        raise BadRow("msg_id, chat_id or sender_id: longer than 120 characters")
    return MessageEvent(
        platform=platform,
        bot_id=IMPORT_BOT_ID,
        message_id=msg_id,
        chat=Chat(ChatId(chat_id), "group", _cell(row, "chat_name") or None),
        sender=Person(UserId(sender_id), _cell(row, "sender_name") or None),
        msg_type=msg_type[:32],
        text=text if text else None,
        sent_at=sent_at,
        source="at_mentions_only",  # never downgrades a group; a CSV says nothing of completeness
        mentions_bot=False,
    )


def yuan_to_fen(value: str, name: str) -> int:
    """``"12.5"`` → 1250, exactly (Decimal, no float).

    Raises:
        BadRow: not a non-negative amount with at most two decimals.
    """
    text = value.strip().replace(",", "").removeprefix("¥").removeprefix("￥")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise BadRow(f"{name}: expected an amount in yuan like 99.90, got {value!r}") from None
    fen = amount * 100
    if not amount.is_finite() or fen != fen.to_integral_value() or amount < 0:
        raise BadRow(
            f"{name}: expected a non-negative amount with at most 2 decimals, got {value!r}"
        )
    return int(fen)


def order_from_csv(row: dict[str, str | None], zone: tzinfo) -> OrderRow:
    """One orders CSV row.

    Raises:
        BadRow: a required cell is empty or a value is malformed.
    """
    status_text = _required(row, "status")
    status = ORDER_STATUSES.get(status_text.lower())
    if status is None:
        raise BadRow(
            f"status: expected paid, completed, refunded or cancelled, got {status_text!r}"
        )
    cost = _cell(row, "cost")
    return OrderRow(
        platform=_platform(row),
        order_id=_required(row, "order_id"),
        user_id=_required(row, "user_id"),
        amount_fen=yuan_to_fen(_required(row, "amount"), "amount"),
        cost_fen=yuan_to_fen(cost, "cost") if cost else None,
        status=status,
        paid_at=parse_time(_required(row, "paid_at"), zone),
    )


RowOutcome = tuple[int, Item | BadRow | None]


def _archive_rows(text: IO[str], group: str | None) -> Iterator[RowOutcome]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, BadRow(f"not JSON ({error.msg})")
            continue
        if not isinstance(record, dict):
            yield number, BadRow("not a JSON object")
            continue
        try:
            item = archive_item(record, IMPORT_BOT_ID)
        except ValueError as error:
            yield number, BadRow(str(error))
            continue
        if group is not None and isinstance(item, MessageEvent) and item.chat.chat_id != group:
            item = None
        yield number, item


def _csv_rows(
    text: IO[str],
    required: tuple[str, ...],
    parse: Callable[[dict[str, str | None]], Item],
    group: str | None,
) -> Iterator[RowOutcome]:
    reader = csv.DictReader(text)
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFileError(
            f"missing column(s) {', '.join(missing)} in the header line; found: {', '.join(header)}"
        )
    reader.fieldnames = header
    for row in reader:
        if not any(value and value.strip() for value in row.values() if isinstance(value, str)):
            continue  # blank line
        if None in row:
            yield reader.line_num, BadRow(f"more cells than the {len(header)} header columns")
            continue
        try:
            item = parse(row)
        except BadRow as error:
            yield reader.line_num, error
            continue
        if group is not None and isinstance(item, MessageEvent) and item.chat.chat_id != group:
            yield reader.line_num, None
            continue
        yield reader.line_num, item


# --- the import ---------------------------------------------------------------------------


class Progress:
    """A rich progress bar on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, label: str, total_bytes: int, *, tty: bool, every: float = 5.0) -> None:
        self._label = label
        self._total = max(total_bytes, 1)
        self._every = every
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar = None
        if tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows · {task.fields[rate]:,.0f} rows/s · ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),  # stdout keeps only the summary
                transient=False,
            )
            self._task = self._bar.add_task(label, total=self._total, rows=0, rate=0.0)
            self._bar.start()

    def update(self, rows: int, position: int) -> None:
        now = time.monotonic()
        elapsed = max(now - self._started, 1e-6)
        rate = rows / elapsed
        if self._bar is not None:
            self._bar.update(self._task, completed=position, rows=rows, rate=rate)
            return
        if now - self._last_line < self._every:
            return
        self._last_line = now
        share = min(position / self._total, 1.0)
        eta = (elapsed / share - elapsed) if share > 0 else 0.0
        print(
            f"{self._label}: {rows:,} rows ({share:.0%}), {rate:,.0f} rows/s, ETA {eta:,.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._total)
            self._bar.stop()


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """What to import and how."""

    path: Path
    format: ImportFormat | None = None
    group: str | None = None
    dry_run: bool = False
    strict: bool = False
    batch_size: int = 5000


def run_import(
    request: ImportRequest, engine: Engine, zone: tzinfo, *, tty: bool = False
) -> ImportSummary:
    """Import one file; return what happened.

    Raises:
        ImportFileError: the file cannot be read, its format is unknown or its header
            lacks a column.
        sqlalchemy.exc.SQLAlchemyError: the database failed; batches committed before
            stay, and re-running resumes (they count as duplicates).
    """
    path = request.path
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    encoding = detect_encoding(path)
    chosen = request.format or guess_format(path, encoding)
    if chosen == "archive-jsonl":
        encoding = "utf-8-sig"  # JSON is UTF-8 by definition
    summary = ImportSummary(str(path), chosen, dry_run=request.dry_run)
    started = time.monotonic()
    if request.strict and not request.dry_run:
        check = ImportSummary(str(path), chosen, dry_run=True)
        _run(request, chosen, encoding, None, zone, check, tty=False)
        if check.rejected:
            summary.stopped_at = check.rejections[0]
            summary.rows, summary.rejected = check.rows, check.rejected
            summary.rejections = check.rejections[:1]
            summary.seconds = time.monotonic() - started
            return summary
    writer = None if request.dry_run else _Writer(engine)
    _run(request, chosen, encoding, writer, zone, summary, tty=tty)
    summary.seconds = time.monotonic() - started
    return summary


def _run(
    request: ImportRequest,
    chosen: ImportFormat,
    encoding: str,
    writer: _Writer | None,
    zone: tzinfo,
    summary: ImportSummary,
    *,
    tty: bool,
) -> None:
    total = request.path.stat().st_size
    progress = Progress(f"import {request.path.name}", total, tty=tty)
    batch: list[Item] = []
    try:
        with request.path.open("rb") as raw:
            counting = _Counting(raw)
            text = io.TextIOWrapper(
                io.BufferedReader(counting, 1 << 16), encoding=encoding, newline=""
            )
            rows: Iterator[RowOutcome]
            if chosen == "archive-jsonl":
                rows = _archive_rows(text, request.group)
            elif chosen == "csv":
                rows = _csv_rows(
                    text,
                    MESSAGE_COLUMNS,
                    lambda row: message_from_csv(row, zone),
                    request.group,
                )
            else:
                rows = _csv_rows(text, ORDER_COLUMNS, lambda row: order_from_csv(row, zone), None)
            for line, outcome in rows:
                summary.rows += 1
                if isinstance(outcome, BadRow):
                    summary.reject(line, str(outcome))
                    if request.strict:
                        summary.stopped_at = summary.rejections[-1]
                        return
                    continue
                if outcome is None:
                    summary.skipped += 1
                    continue
                batch.append(outcome)
                if len(batch) >= request.batch_size:
                    if writer is not None:
                        writer.write(batch, summary)
                    batch = []
                    progress.update(summary.rows, counting.position)
            if batch and writer is not None:
                writer.write(batch, summary)
            progress.update(summary.rows, counting.position)
    except UnicodeDecodeError as error:
        raise ImportFileError(
            f"{request.path}: not valid {encoding} text ({error.reason})"
        ) from None
    finally:
        progress.close()


class _Writer:
    """One transaction per batch: messages, then recalls (which follow their originals)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._events = EventStore(engine)
        self._orders = OrderStore(engine)

    def write(self, batch: list[Item], summary: ImportSummary) -> None:
        messages = [item for item in batch if isinstance(item, MessageEvent)]
        recalls = [item for item in batch if isinstance(item, Recall)]
        orders = [item for item in batch if isinstance(item, OrderRow)]
        if messages:
            stored = self._events.store_messages(messages)
            new = sum(stored)
            summary.imported += new
            summary.duplicated += len(stored) - new
        if recalls:
            with self._engine.begin() as connection:
                changed = apply_recalls(connection, recalls)
            summary.recalled += sum(changed)
            # A recall applied by an earlier run (or of a message never stored) changes
            # nothing: report it as a duplicate, so a re-run reports no new work.
            summary.duplicated += len(changed) - sum(changed)
        if orders:
            new_orders = self._orders.store(orders)
            summary.imported += sum(new_orders)
            summary.duplicated += len(new_orders) - sum(new_orders)
