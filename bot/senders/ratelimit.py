"""At most N posts per window per robot, shared by every job of the process.

A sliding window, not a plain token bucket: a bucket holding 20 tokens refilled at
20/min lets 20 posts through at once and 20 more over the next minute (up to 39 within
one minute), which is exactly what earns WeCom 45009 and DingTalk's 10-minute throttle
(130101). The window keeps the send times of the last N posts and waits until the oldest
leaves the window, so no 60-second span ever holds more than N.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.platforms.base import Clock

Sleep = Callable[[float], Awaitable[None]]


class SlidingWindowLimiter:
    """Per-key limiter with an injectable clock and sleep (tests pass a fake pair)."""

    def __init__(
        self,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        *,
        limit: int = 20,
        window: timedelta = timedelta(minutes=1),
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limit = limit
        self._window = window
        self._sent: dict[str, deque[datetime]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, key: str) -> None:
        """Wait until one more post to ``key`` stays within the limit, and count it."""
        async with self._lock(key):
            await self._wait_for_room(key)
            self._sent[key].append(self._clock())

    def room(self, key: str) -> int:
        """How many more posts to ``key`` fit in the window right now (none counted)."""
        return self._limit - len(self._in_window(key, self._clock()))

    async def wait_for_room(self, key: str) -> int:
        """Wait until a post to ``key`` fits; how many fit then (none counted)."""
        async with self._lock(key):
            return await self._wait_for_room(key)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _in_window(self, key: str, now: datetime) -> deque[datetime]:
        """The send times of ``key`` still inside the window ending ``now``."""
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - self._window:
            sent.popleft()
        return sent

    async def _wait_for_room(self, key: str) -> int:
        while True:
            now = self._clock()
            sent = self._in_window(key, now)
            if len(sent) < self._limit:
                return self._limit - len(sent)
            wait = (sent[0] + self._window - now).total_seconds()
            await self._sleep(max(wait, 0.001))
