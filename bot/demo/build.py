"""Write the sample community into a fresh SQLite database."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

from bot.demo.generator import Community, DemoSize, generate
from bot.sentiment import rescore
from config import Settings
from storage.db import make_engine, upgrade
from storage.history import OrderRow, OrderStore
from storage.ingest import EventStore

BATCH = 2000


def build_demo(
    path: Path,
    seed: int,
    size: DemoSize,
    last_day: date,
    settings: Settings,
    *,
    score: bool = True,
) -> Community:
    """(Re)create ``path`` holding the community of ``seed`` whose history ends ``last_day``.

    Messages and membership go in like callbacks, orders like an import; with ``score``
    every text gets its sentiment, as the background worker would give it.
    """
    zone = settings.zone
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        community, events = generate(seed, size, last_day, zone)
        store = EventStore(engine)
        while batch := list(itertools.islice(events, BATCH)):
            store.store([batch])
        OrderStore(engine).store(
            [
                OrderRow(
                    o.platform, o.order_id, o.user_id, o.amount_fen, o.cost_fen, o.status, o.paid_at
                )
                for o in community.orders
            ]
        )
        if score:
            rescore(engine, settings, only_unscored=True)
    finally:
        engine.dispose()
    return community
