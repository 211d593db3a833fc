"""Benchmark datasets, all from the one demo generator (:mod:`bot.demo.generator`)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from bot.demo.generator import DemoSize, generate
from bot.events import MessageEvent

ZONE = ZoneInfo("Asia/Shanghai")
LAST_DAY = date(2026, 11, 1)


def chat_texts(count: int, seed: int = 11) -> list[str]:
    """``count`` short chat messages as the generator writes them, in time order."""
    members = max(50, count // 50)
    _, events = generate(seed, DemoSize(groups=6, members=members, days=30), LAST_DAY, ZONE)
    texts = [e.text for e in events if isinstance(e, MessageEvent) and e.text]
    if len(texts) < count:
        raise ValueError(f"the generator made {len(texts)} texts, fewer than {count}")
    return texts[:count]
