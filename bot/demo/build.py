"""Write the sample community into a fresh SQLite database."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.demo.generator import Community, DemoSize, generate
from storage.db import make_engine, upgrade
from storage.ingest import EventStore

BATCH = 2000


def build_demo(path: Path, seed: int, size: DemoSize, last_day: date, zone: ZoneInfo) -> Community:
    """(Re)create ``path`` holding the community of ``seed`` whose history ends ``last_day``."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        community, events = generate(seed, size, last_day, zone)
        store = EventStore(engine)
        while batch := list(itertools.islice(events, BATCH)):
            store.store([batch])
    finally:
        engine.dispose()
    return community
