"""``import_1m``: ``qunpulse import`` of a big message CSV into SQLite.

The CSV holds the generator's messages (cached under ``bench/.data/``). ``qunpulse import``
runs as a subprocess, as a user runs it; it reports its peak RSS (VmHWM) and its reader
process's. The baseline
reads the same CSV with the ``csv`` module and inserts the raw rows into a plain table
with ``sqlite3`` ``executemany`` in batches of 10,000: no validation, no members, no
de-duplication, the floor of what an import can cost.
"""

from __future__ import annotations

import csv
import itertools
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import LAST_DAY, ZONE
from bench.stats import DATA

HEADER = ("platform", "chat_id", "chat_name", "sender_id", "sender_name", "sent_at", "msg_type")
COLUMNS = (*HEADER, "text", "msg_id")
SEED = 77


@dataclass(frozen=True)
class ImportRun:
    rows: int
    seconds: float
    baseline_seconds: float
    peak_rss_mb: float
    reader_rss_mb: float


def message_csv(rows: int) -> Path:
    """A CSV of ``rows`` generated messages (built once, then cached)."""
    from bot.demo.generator import DemoSize, generate
    from bot.events import MessageEvent

    path = DATA / f"messages-{rows}-s{SEED}.csv"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    groups = max(1, rows // 10_000)
    size = DemoSize(groups, 500, 30, rows / (groups * 500 * 30) / 0.8)
    _, events = generate(SEED, size, LAST_DAY, ZONE)
    messages = (e for e in events if isinstance(e, MessageEvent))
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        written = 0
        for event in itertools.islice(messages, rows):
            writer.writerow(
                (
                    event.platform,
                    event.chat.chat_id,
                    event.chat.name or "",
                    event.sender.user_id,
                    event.sender.name or "",
                    event.sent_at.isoformat(),
                    event.msg_type,
                    event.text or "",
                    event.message_id,
                )
            )
            written += 1
    if written < rows:
        raise RuntimeError(f"the generator made {written} messages, fewer than {rows}")
    partial.rename(path)
    return path


def bench_import(rows: int) -> ImportRun:
    from bench.ingest import ROOT

    source = message_csv(rows)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = directory / "qunpulse.toml"
        config.write_text(f'[storage]\nurl = "sqlite:///{directory / "import.db"}"\n')
        started = time.perf_counter()
        # The child reports its own high-water mark (VmHWM): wait4's ru_maxrss would
        # include this parent's memory, which Linux carries into a child across exec.
        # Its reader process, which it has waited for, reports through its ru_maxrss
        # (forked, it counts the pages it still shares with the importing process).
        script = (
            "import resource, sys; from bot.cli import main; code = main(sys.argv[1:]); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]; "
            "reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "print('PEAK_KB', hwm[0].split()[1], reader, file=sys.stderr); sys.exit(code)"
        )
        process = subprocess.run(
            [sys.executable, "-c", script, "import", "-c", str(config), str(source)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"qunpulse import failed: {process.stderr[-2000:]}")
        peak_kb, reader_kb = map(int, process.stderr.rsplit("PEAK_KB", 1)[1].split()[:2])
        baseline = _baseline(source, directory / "raw.db")
    return ImportRun(rows, seconds, baseline, peak_kb / 1024, reader_kb / 1024)


def _baseline(source: Path, database: Path) -> float:
    started = time.perf_counter()
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"CREATE TABLE raw ({', '.join(COLUMNS)})")
    insert = f"INSERT INTO raw VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - constant columns
    with source.open(encoding="utf-8", newline="") as lines:
        reader = csv.reader(lines)
        next(reader)
        while batch := list(itertools.islice(reader, 10_000)):
            connection.executemany(insert, batch)
            connection.commit()
    connection.close()
    return time.perf_counter() - started
