"""Group commit: concurrent callbacks share one database transaction.

A callback hands its events to :meth:`GroupCommitWriter.submit` and waits. One writer
task collects whatever arrives within ``max_delay`` (or until ``max_batch`` callbacks),
stores it all in one transaction (:meth:`storage.ingest.EventStore.store_async`: from
the event loop itself, never waiting on it for a lock), and wakes every waiting callback
with its own result. Only then does each callback answer the platform: nothing is
acknowledged before it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from bot.events import Event
from bot.telemetry import Telemetry
from storage.ingest import EventStore, Stored

log = logging.getLogger(__name__)

_Pending = tuple[Sequence[Event], "asyncio.Future[list[Stored]]"]


class GroupCommitWriter:
    """Store callbacks' events in shared transactions.

    Args:
        store: where the events go (:meth:`stop` closes its connection).
        max_batch: most callbacks per transaction.
        max_delay: longest a callback waits for others to join its transaction (s).

    One transaction runs at a time; callbacks arriving meanwhile queue up and form the
    next batch, so under load batches grow by themselves. Waiting costs one timer per
    batch, not one per callback.
    """

    def __init__(
        self,
        store: EventStore,
        telemetry: Telemetry,
        *,
        max_batch: int = 256,
        max_delay: float = 0.002,
    ) -> None:
        self._store = store
        self._telemetry = telemetry
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._pending: deque[_Pending] = deque()
        #: Resolved when the writer should look at the queue (first arrival, full batch).
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="qunpulse-group-commit")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._poke()
        try:
            await self._task
        finally:
            self._task = None
            await self._store.aclose()
            while self._pending:  # arrived after the last batch: refuse, do not hang
                _, done = self._pending.popleft()
                if not done.done():
                    done.set_exception(StorageUnavailable("the server is stopping"))

    async def submit(self, events: Sequence[Event]) -> list[Stored]:
        """Store ``events`` (one callback's) and return what became of each.

        Raises:
            RuntimeError: the writer is not running.
            StorageUnavailable: the database refused them; nothing was stored.
        """
        if self._task is None:
            raise RuntimeError("GroupCommitWriter.submit() before start()")
        if not events:
            return []
        done: asyncio.Future[list[Stored]] = asyncio.get_running_loop().create_future()
        self._pending.append((events, done))
        if len(self._pending) == 1 or len(self._pending) >= self._max_batch:
            self._poke()
        return await done

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _wait(self, delay: float | None) -> None:
        """Sleep until poked, or until ``delay`` seconds passed (if given)."""
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        timer = None if delay is None else loop.call_later(delay, self._poke)
        try:
            await self._wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    return
                await self._wait(None)
                continue
            if len(self._pending) < self._max_batch and not self._stopping:
                await self._wait(self._max_delay)  # let others join this transaction
            count = min(len(self._pending), self._max_batch)
            await self._commit([self._pending.popleft() for _ in range(count)])

    async def _commit(self, batch: list[_Pending]) -> None:
        self._telemetry.ingest_batch_size.observe(len(batch))
        try:
            results = await self._store.store_async([events for events, _ in batch])
        except Exception:
            if len(batch) == 1:
                log.exception("storing a callback failed; the platform will retry it")
                self._telemetry.ingest_failures.inc()
                done = batch[0][1]
                if not done.done():  # the callback may have given up already
                    done.set_exception(
                        StorageUnavailable("the database did not take this callback")
                    )
                return
            # One bad callback must not fail the others: store them one by one.
            for pending in batch:
                await self._commit([pending])
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)


class StorageUnavailable(Exception):
    """The callback could not be stored; answer 503 so that the platform retries."""
