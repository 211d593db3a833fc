"""A clock tests move by hand: ``sleep`` advances it instead of waiting."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    """``now()`` returns the simulated time; ``await sleep(s)`` moves it ``s`` seconds on."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.slept = 0.0

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.advance(seconds)
        await asyncio.sleep(0)
