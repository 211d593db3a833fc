"""Group commit: concurrent callbacks share one database transaction.

A callback hands its events to :meth:`GroupCommitWriter.submit` and waits. One writer
task collects whatever arrives within ``max_delay`` (or until ``max_batch`` callbacks),
stores it all in one transaction on a worker thread, and wakes every waiting callback
with its own result. Only then does each callback answer the platform: nothing is
acknowledged before it is committed, and the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.events import Event
from bot.telemetry import Telemetry
from storage.ingest import EventStore, Stored

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    events: Sequence[Event]
    done: asyncio.Future[list[Stored]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitWriter:
    """Store callbacks' events in shared transactions.

    Args:
        store: the synchronous writer (runs on a worker thread).
        max_batch: most callbacks per transaction.
        max_delay: longest a callback waits for others to join its transaction (s).
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
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="qunpulse-group-commit")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, events: Sequence[Event]) -> list[Stored]:
        """Store ``events`` (one callback's) and return what became of each.

        Raises:
            RuntimeError: the writer is not running.
            sqlalchemy.exc.SQLAlchemyError: the database refused them; nothing was stored.
        """
        if self._task is None:
            raise RuntimeError("GroupCommitWriter.submit() before start()")
        if not events:
            return []
        pending = _Pending(events)
        await self._queue.put(pending)
        return await pending.done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._max_delay
            while len(batch) < self._max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        self._telemetry.ingest_batch_size.observe(len(batch))
        try:
            results = await asyncio.to_thread(self._store.store, [p.events for p in batch])
        except Exception:
            if len(batch) == 1:
                log.exception("storing a callback failed; the platform will retry it")
                self._telemetry.ingest_failures.inc()
                if not batch[0].done.done():  # the callback may have given up already
                    batch[0].done.set_exception(
                        StorageUnavailable("the database did not take this callback")
                    )
                return
            # One bad callback must not fail the others: store them one by one.
            for pending in batch:
                await self._commit([pending])
            return
        for pending, result in zip(batch, results, strict=True):
            if not pending.done.done():
                pending.done.set_result(result)


class StorageUnavailable(Exception):
    """The callback could not be stored; answer 503 so that the platform retries."""
