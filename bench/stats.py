"""``stats_1m``: ``stats`` for the busiest group of a big generated database.

The database comes from the demo generator (one generator for the demo and the
benchmarks) and is cached under ``bench/.data/``, keyed by its size and seed, since building
a million messages takes a few minutes.

The baseline is the bare SQL: every statement ``collect_stats`` sends is recorded (a
SQLAlchemy cursor event, no change to our code) and then replayed directly on the DB-API
connection, fetching all rows. ``time / baseline`` is what the Python around the queries
(the metric functions, counting the stored words for the word metrics) costs on top of
the database. The database is scored and cut as ``serve``'s background scorer leaves it.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from bench.corpus import LAST_DAY, ZONE

DATA = Path(__file__).resolve().parent / ".data"
SEED = 20261101
DAYS = 60


@dataclass(frozen=True)
class StatsRun:
    period: str
    seconds: float
    baseline_seconds: float
    statements: int
    messages: int


def database(messages: int) -> Path:
    """The cached database of about ``messages`` messages over 100 groups (built if missing)."""
    from bot.demo.generator import DemoSize, generate
    from storage.db import make_engine, upgrade
    from storage.ingest import EventStore

    groups = 100 if messages >= 1_000_000 else 10
    members = 500
    # About 0.82 of the drawn messages survive the joins, leaves and weekday weights.
    rate = messages / (groups * members * DAYS) / 0.819
    size = DemoSize(groups, members, DAYS, rate)
    # "-w": built since the scorer stores each message's words (older files lack them).
    path = DATA / f"stats-{messages}-g{groups}-m{members}-d{DAYS}-s{SEED}-w.db"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}")
    try:
        upgrade(engine)
        _, events = generate(SEED, size, LAST_DAY, ZONE)
        store = EventStore(engine)
        while batch := list(itertools.islice(events, 5000)):
            store.store([batch])
        _score_all(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    partial.rename(path)
    return path


def _score_all(engine: Engine) -> None:
    """Sentiment and words for every message, as the background scorer stores them."""
    from bot.sentiment import rescore
    from config.settings import Settings

    rescore(engine, Settings(), only_unscored=True)


def bench_stats(messages: int, repeat: int) -> tuple[list[StatsRun], str]:
    """Time ``collect_stats`` (all metrics) for a week and a month against its bare SQL."""
    from sqlalchemy import func, select

    from analytics.periods import resolve_period
    from handlers.stats import StatsOptions, collect_stats
    from storage.db import make_engine, upgrade
    from storage.models import Message
    from storage.queries import list_groups

    path = database(messages)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)  # a cached database from an older revision, as `serve` would
    table = Message.__table__  # type: ignore[attr-defined]
    try:
        with engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(table)).scalar_one()
            busiest = connection.execute(
                select(table.c.group_id)
                .group_by(table.c.group_id)
                .order_by(func.count().desc())
                .limit(1)
            ).scalar_one()
        group = next(g for g in list_groups(engine) if g.id == busiest)
        options = StatsOptions()
        runs = []
        for spec in ("7d", "30d"):
            period = resolve_period(spec, LAST_DAY, ZONE)
            collect_stats(engine, group, period, options=options)  # warm: models, caches
            recorded: list[tuple[str, Any]] = []

            def record(
                conn: Any, cursor: Any, sql: str, params: Any, *_: Any, into: list[Any] = recorded
            ) -> None:
                into.append((sql, params))

            event.listen(engine, "before_cursor_execute", record)
            try:
                collect_stats(engine, group, period, options=options)
            finally:
                event.remove(engine, "before_cursor_execute", record)
            times, bare = [], []
            for _ in range(repeat):
                started = time.perf_counter()
                collect_stats(engine, group, period, options=options)
                times.append(time.perf_counter() - started)
                bare.append(_replay(engine, recorded))
            runs.append(
                StatsRun(
                    spec,
                    statistics.median(times),
                    statistics.median(bare),
                    len(recorded),
                    int(total),
                )
            )
    finally:
        engine.dispose()
    return runs, group.chat_id


def _replay(engine: Engine, recorded: list[tuple[str, Any]]) -> float:
    """Run the recorded statements directly on the DB-API connection; the wall time."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for sql, params in recorded:
            cursor.execute(sql, params)
            cursor.fetchall()
        elapsed = time.perf_counter() - started
        cursor.close()
    finally:
        raw.close()
    return elapsed
