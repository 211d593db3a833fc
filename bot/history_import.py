"""``qunpulse import``: load history files idempotently, streaming, in batches.

Three formats (README "Import history" shows a sample of each):

* ``archive-jsonl``: decrypted WeCom session-archive records, one JSON object a line.
* ``csv``: messages, columns ``platform, chat_id, chat_name, sender_id, sender_name,
  sent_at, msg_type, text, msg_id`` (``msg_id`` optional).
* ``orders-csv``: orders, columns ``order_id, platform, user_id, amount, cost, status,
  paid_at``.

A second process reads and parses the file while the first writes (see
:func:`_read_aside`). Rows are read as plain tuples and messages are stored by
:class:`storage.history.MessageImporter`, a bulk path that writes the same rows under the
same unique keys as live callbacks, so a re-run, an overlapping file or a message also
received live is stored once. Every batch is its own transaction: a crash loses at most
the batch in flight, and re-running the command skips what was stored. A bad row is
reported with file, line and reason and skipped; with ``strict`` the whole file is
checked first and nothing is written when any row is bad.
"""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import io
import json
import marshal
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import IO, Literal, get_args

from sqlalchemy import Engine

from bot.events import MessageEvent, PlatformName
from storage.history import (
    ImportedMessage,
    MessageImporter,
    OrderRow,
    OrderStore,
    PreparedChunk,
    Recall,
    apply_recalls,
    prepare,
)

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


Item = ImportedMessage | Recall | OrderRow


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


def message_parser(header: Sequence[str], zone: tzinfo) -> Callable[[list[str]], ImportedMessage]:
    """A function that reads one message CSV row (its cells, in ``header`` order).

    Without ``msg_id``, the key is a hash of platform, chat, sender, time, type and
    text, stable across files (so overlapping exports de-duplicate); the price is that
    one person sending the same text twice within the same second counts once.

    The parser raises :class:`BadRow` when a required cell is empty or a value is
    malformed. It is the hot loop of an import (a million rows is common), so it reads
    cells by position and builds one tuple, nothing more.
    """
    position = {name: index for index, name in enumerate(header)}  # a repeated name: the last

    def column(name: str) -> int:
        return position.get(name, -1)

    platform_at, chat_at, sender_at, sent_at_at = (column(name) for name in MESSAGE_COLUMNS)
    chat_name_at, sender_name_at, type_at, text_at, id_at = (
        column(name) for name in OPTIONAL_MESSAGE_COLUMNS
    )

    def parse(cells: list[str]) -> ImportedMessage:
        platform = cells[platform_at].strip().lower()
        if not platform:
            raise BadRow("platform: empty")
        if platform not in PLATFORMS:
            raise BadRow(f"platform: expected one of {', '.join(PLATFORMS)}, got {platform!r}")
        chat_id = cells[chat_at].strip()
        if not chat_id:
            raise BadRow("chat_id: empty")
        sender_id = cells[sender_at].strip()
        if not sender_id:
            raise BadRow("sender_id: empty")
        sent_text = cells[sent_at_at].strip()
        if not sent_text:
            raise BadRow("sent_at: empty")
        sent_at = parse_time(sent_text, zone)
        msg_type = (cells[type_at].strip() if type_at >= 0 else "") or "text"
        text = (cells[text_at] if text_at >= 0 else "") or None
        msg_id = cells[id_at].strip() if id_at >= 0 else ""
        if not msg_id:
            material = "\x1f".join(
                [platform, chat_id, sender_id, sent_at.isoformat(), msg_type, text or ""]
            )
            msg_id = "csv:" + hashlib.sha256(material.encode()).hexdigest()[:40]
        if len(msg_id) > 120 or len(chat_id) > 128 or len(sender_id) > 128:
            raise BadRow("msg_id, chat_id or sender_id: longer than 120 characters")
        return ImportedMessage(
            platform,
            msg_id,
            chat_id,
            (cells[chat_name_at].strip() if chat_name_at >= 0 else "") or None,
            "at_mentions_only",  # never downgrades a group; a CSV says nothing of completeness
            sender_id,
            (cells[sender_name_at].strip() if sender_name_at >= 0 else "") or None,
            msg_type[:32],
            text,
            sent_at,
        )

    return parse


def imported_message(event: MessageEvent) -> ImportedMessage:
    """A group message event (from the WeCom archive) as an imported message."""
    return ImportedMessage(
        event.platform,
        event.message_id,
        event.chat.chat_id,
        event.chat.name,
        event.source,
        event.sender.user_id,
        event.sender.name,
        event.msg_type,
        event.text,
        event.sent_at,
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
    # Imported here: the platform modules cost half a second to import, CSV needs none.
    from bot.platforms.wecom_archive import archive_item

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
        if isinstance(item, MessageEvent):
            # The archive gives group chats only (a one-to-one chat is None) and people.
            yield number, imported_message(item) if group in (None, item.chat.chat_id) else None
            continue
        yield number, item


def _csv_rows(
    text: IO[str],
    required: tuple[str, ...],
    parser: Callable[[list[str]], Callable[[list[str]], Item]],
    group: str | None,
) -> Iterator[RowOutcome]:
    reader = csv.reader(text)
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFileError(
            f"missing column(s) {', '.join(missing)} in the header line; found: {', '.join(header)}"
        )
    parse = parser(header)
    width = len(header)
    for cells in reader:
        if len(cells) != width:
            if len(cells) > width:
                if "".join(cells[:width]).strip():
                    yield reader.line_num, BadRow(f"more cells than the {width} header columns")
                continue  # a blank line
            cells += [""] * (width - len(cells))
        try:
            item = parse(cells)
        except BadRow as error:
            # Asked only here: a row that parses has a required cell, so it is not blank.
            if "".join(cells).strip():
                yield reader.line_num, error
            continue
        if group is not None and isinstance(item, ImportedMessage) and item.chat_id != group:
            yield reader.line_num, None
            continue
        yield reader.line_num, item


def _order_parser(header: Sequence[str], zone: tzinfo) -> Callable[[list[str]], OrderRow]:
    def parse(cells: list[str]) -> OrderRow:
        return order_from_csv(dict(zip(header, cells, strict=True)), zone)

    return parse


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
    batch_size: int = 50_000


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
    reading = _Reading(
        path, chosen, encoding, zone, request.group, request.strict, request.batch_size
    )
    summary = ImportSummary(str(path), chosen, dry_run=request.dry_run)
    started = time.monotonic()
    if request.strict and not request.dry_run:
        check = ImportSummary(str(path), chosen, dry_run=True)
        _run(reading, None, check, tty=False)
        if check.rejected:
            summary.stopped_at = check.rejections[0]
            summary.rows, summary.rejected = check.rows, check.rejected
            summary.rejections = check.rejections[:1]
            summary.seconds = time.monotonic() - started
            return summary
    writer = None if request.dry_run else _Writer(engine)
    try:
        with _collecting_per_chunk():
            _run(reading, writer, summary, tty=tty)
    finally:
        if writer is not None:
            writer.close()
    summary.seconds = time.monotonic() - started
    return summary


@contextmanager
def _collecting_per_chunk() -> Iterator[None]:
    """The garbage collector off, but for :func:`gc.collect` once per chunk.

    Automatic collections start every few hundred new containers, and an import makes
    tens of thousands per chunk (a tuple per row, in both processes), which reference
    counting frees anyway: nearly all of them cycle-free. Each collection that reached
    the oldest generation scanned every row alive, several times a chunk. The objects
    alive now (modules, the engine) live as long as the process: frozen, no collection
    scans them again.
    """
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def _run(reading: _Reading, writer: _Writer | None, summary: ImportSummary, *, tty: bool) -> None:
    with _read_aside(reading) as chunks:
        # The progress bar starts after the reader: a terminal's bar runs a thread, and
        # a process forked beside a thread could inherit a lock it holds.
        progress = Progress(f"import {reading.path.name}", reading.path.stat().st_size, tty=tty)
        try:
            for chunk in chunks:
                summary.rows += chunk.rows
                summary.skipped += chunk.skipped
                for line, reason in chunk.rejections:
                    summary.reject(line, reason)
                if reading.strict and chunk.rejections:
                    summary.stopped_at = summary.rejections[-1]
                    return
                if writer is not None:
                    writer.write(chunk, summary)
                progress.update(summary.rows, chunk.position)
                gc.collect()
        finally:
            progress.close()


# --- reading in a second process ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reading:
    """What the reader process reads, and how."""

    path: Path
    format: ImportFormat
    encoding: str
    zone: tzinfo
    group: str | None
    strict: bool
    batch_size: int


#: The reader asks whether the writer waits for a chunk every this many items.
_HANDOVER_ITEMS = 1_000


@dataclass(slots=True)
class _Chunk:
    """Up to a batch of items read from the file (one transaction's worth), and what the
    other rows read meanwhile were."""

    rows: int = 0
    #: Messages read, repeats included.
    message_rows: int = 0
    #: The messages prepared for storing (:func:`storage.history.prepare`), marshalled:
    #: for plain tuples of strings ``marshal`` is about three times quicker than pickle,
    #: and the writing process unpacks a million of them.
    messages: bytes = b""
    #: Recalls and orders, in file order.
    others: list[Recall | OrderRow] = field(default_factory=list)
    skipped: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)
    #: Bytes of the file read so far, for the progress bar.
    position: int = 0


def _read_chunks(reading: _Reading, waiting: Callable[[], bool]) -> Iterator[_Chunk]:
    """The file in chunks of at most ``batch_size`` items; with ``strict``, the chunk
    with the first bad row is the last.

    A chunk goes as soon as ``waiting()`` says the writer waits for one (asked every
    :data:`_HANDOVER_ITEMS` items): the writer starts after the first thousand rows, and
    while it stores a chunk the reader gathers the next, however fast each of the two
    goes. Chunks of sizes fixed beforehand (an eighth of a batch, then doubling) kept the
    writer waiting while each bigger one was read, a fifth of a 100,000-row import.
    """
    with reading.path.open("rb") as raw:
        counting = _Counting(raw)
        text = io.TextIOWrapper(
            io.BufferedReader(counting, 1 << 16), encoding=reading.encoding, newline=""
        )
        chunk, messages = _Chunk(), []
        try:
            for line, outcome in _rows(text, reading):
                chunk.rows += 1
                if isinstance(outcome, ImportedMessage):
                    messages.append(outcome)
                elif isinstance(outcome, BadRow):
                    chunk.rejections.append((line, str(outcome)))
                    if reading.strict:
                        break
                elif outcome is None:
                    chunk.skipped += 1
                else:
                    chunk.others.append(outcome)
                items = len(messages) + len(chunk.others)
                if items >= reading.batch_size or (
                    items % _HANDOVER_ITEMS == 0 and items and waiting()
                ):
                    chunk.message_rows, chunk.messages = len(messages), _prepared(messages)
                    chunk.position = counting.position
                    yield chunk
                    chunk, messages = _Chunk(), []
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"{reading.path}: not valid {reading.encoding} text ({error.reason})"
            ) from None
        chunk.message_rows, chunk.messages = len(messages), _prepared(messages)
        chunk.position = counting.position
        yield chunk


def _prepared(messages: list[ImportedMessage]) -> bytes:
    # marshal takes plain tuples only, not the named one.
    return marshal.dumps(tuple(prepare(messages)))


def _rows(text: IO[str], reading: _Reading) -> Iterator[RowOutcome]:
    if reading.format == "archive-jsonl":
        return _archive_rows(text, reading.group)
    if reading.format == "csv":
        return _csv_rows(
            text,
            MESSAGE_COLUMNS,
            lambda header: message_parser(header, reading.zone),
            reading.group,
        )
    return _csv_rows(text, ORDER_COLUMNS, lambda header: _order_parser(header, reading.zone), None)


#: ``fork`` starts the reader at once, everything already imported; elsewhere than on
#: Linux (macOS's system libraries are not safe to fork) ``spawn`` does the same, only
#: slower to start (``_Reading`` pickles).
_PROCESSES: multiprocessing.context.ForkContext | multiprocessing.context.SpawnContext = (
    multiprocessing.get_context("fork")
    if sys.platform == "linux"
    else multiprocessing.get_context("spawn")
)


@contextmanager
def _read_aside(reading: _Reading) -> Iterator[Iterator[_Chunk]]:
    """The file's chunks, read and parsed by a second process while this one writes.

    Reading, parsing and preparing rows are about a quarter of an import's work; in a
    second process they run on another core, beside the database's inserts. The pipe
    between the two holds one chunk, so the reader is at most a chunk or two ahead and
    memory stays flat.
    """
    receiver, sender = _PROCESSES.Pipe(duplex=False)
    waiting = _PROCESSES.Event()
    reader = _PROCESSES.Process(
        target=_send_chunks,
        args=(sender, reading, waiting),
        name="qunpulse-import-reader",
        daemon=True,
    )
    try:
        reader.start()
        sender.close()
        yield _received(receiver, waiting)
    finally:
        sender.close()
        receiver.close()
        if reader.pid is not None:  # started
            reader.terminate()  # finished, or no longer wanted (a strict stop, an error)
            reader.join()


def _send_chunks(sender: Connection, reading: _Reading, waiting: EventType) -> None:
    """The reader process: each chunk, then ``None``; or the error that stopped it.

    ``waiting`` is set while the importing process waits for a chunk. Ctrl-C is for the
    importing process, which then stops this one.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # as in the importing process (forked, it is already; spawned, not)
    try:
        for chunk in _read_chunks(reading, waiting.is_set):
            waiting.clear()
            sender.send(chunk)
            gc.collect()
        sender.send(None)
    except BrokenPipeError:
        pass  # the importing process stopped reading
    except Exception as error:
        sender.send(error)
    finally:
        sender.close()


def _received(receiver: Connection, waiting: EventType) -> Iterator[_Chunk]:
    while True:
        if not receiver.poll():
            waiting.set()  # nothing sent yet: the reader hands over what it has
        try:
            sent = receiver.recv()
        except EOFError:
            raise RuntimeError("the import's reader process stopped unexpectedly") from None
        if sent is None:
            return
        if isinstance(sent, Exception):
            raise sent
        yield sent


# --- writing ------------------------------------------------------------------------------


class _Writer:
    """One transaction per chunk: messages, then recalls (which follow their originals),
    then orders."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._messages = MessageImporter(engine, IMPORT_BOT_ID)
        self._orders = OrderStore(engine)

    def close(self) -> None:
        self._messages.close()

    def write(self, chunk: _Chunk, summary: ImportSummary) -> None:
        recalls = [item for item in chunk.others if isinstance(item, Recall)]
        orders = [item for item in chunk.others if isinstance(item, OrderRow)]
        if chunk.message_rows:
            prepared = PreparedChunk._make(marshal.loads(chunk.messages))  # noqa: S302 - our reader's
            new = self._messages.store_prepared(prepared)
            summary.imported += new
            summary.duplicated += chunk.message_rows - new
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
