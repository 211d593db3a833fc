"""Pull the WeCom session archive into storage, from the last stored seq.

One pull: ``GetChatData`` after the stored seq, RSA-decrypt each record's random key,
``DecryptData``, store the group messages (and recalls) like any other events, then move
the durable cursor past the batch; repeat until the archive has nothing newer.

The cursor moves only after a batch is committed. A crash in between means the next
pull fetches that batch again, and the unique message keys make the repeat harmless:
nothing is lost and nothing is stored twice.

Three callers: ``qunpulse archive pull`` (:func:`pull_archive` once), the periodic job
and the ``msgaudit_notify`` app event (both through :meth:`ArchivePuller.pull_async`,
which runs the blocking SDK on a worker thread and never runs two pulls at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import Engine

from bot.events import MessageEvent
from bot.platforms.wecom_archive import (
    ArchiveError,
    FinanceSdk,
    PrivateKeys,
    archive_item,
)
from config.settings import Settings, WecomAppSettings
from storage.history import Recall, advance_archive_seq, apply_recalls, archive_seq
from storage.ingest import EventStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PullSummary:
    """What one pull did."""

    bot_id: str
    from_seq: int = 0
    to_seq: int = 0
    records: int = 0
    stored: int = 0
    duplicated: int = 0
    recalled: int = 0
    skipped: int = 0
    #: ``seq: reason`` of records that could not be read (skipped, the pull goes on).
    unreadable: list[str] = field(default_factory=list)


def archive_apps(settings: Settings) -> list[WecomAppSettings]:
    """The ``wecom_app`` bots with an ``archive`` table."""
    return [
        bot
        for bot in settings.bots
        if isinstance(bot, WecomAppSettings) and bot.archive is not None
    ]


class ArchivePuller:
    """Pulls one corp's archive; keeps the SDK loaded between pulls.

    Raises:
        ArchiveError: (from :meth:`pull`) the SDK, a key or the server failed; what was
            stored before the failure stays stored and the cursor says how far.
    """

    def __init__(self, app: WecomAppSettings, engine: Engine, store: EventStore | None = None):
        if app.archive is None:
            raise ArchiveError(f"bots.{app.id}.archive: not configured")
        self._app = app
        self._archive = app.archive
        self._engine = engine
        self._store = store or EventStore(engine)
        self._keys: PrivateKeys | None = None
        self._sdk: FinanceSdk | None = None
        self._running = asyncio.Lock()
        self._again = False
        self._pulled = asyncio.Condition()
        #: The outcome of the latest pull through :meth:`pull_async`.
        self.last_summary: PullSummary | None = None
        self.last_error: str | None = None
        #: Pulls ended through :meth:`pull_async` (successful or not).
        self.pulls_ended = 0

    def close(self) -> None:
        """Destroy the SDK handle."""
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    def pull(self) -> PullSummary:
        """Pull everything newer than the stored seq (blocking)."""
        if self._keys is None:
            self._keys = PrivateKeys(self._archive.private_keys)
        if self._sdk is None:
            self._sdk = FinanceSdk(
                self._archive.sdk_path,
                self._app.corp_id,
                self._archive.secret.get_secret_value(),
            )
        seq = archive_seq(self._engine, self._app.corp_id)
        summary = PullSummary(self._app.id, from_seq=seq, to_seq=seq)
        password = self._archive.proxy_password
        while True:
            records = self._sdk.get_chat_data(
                seq,
                self._archive.batch_limit,
                proxy=self._archive.proxy,
                proxy_password=password.get_secret_value() if password else None,
                timeout=self._archive.timeout_seconds,
            )
            if not records:
                return summary
            messages: list[MessageEvent] = []
            recalls: list[Recall] = []
            for record in records:
                summary.records += 1
                random_key = self._keys.decrypt_random_key(record)
                try:
                    item = archive_item(
                        self._sdk.decrypt(random_key, record.encrypt_chat_msg), self._app.id
                    )
                except ValueError as error:
                    # One malformed record must not stall the archive forever.
                    summary.unreadable.append(f"seq {record.seq}: {error}")
                    continue
                if isinstance(item, MessageEvent):
                    messages.append(item)
                elif isinstance(item, Recall):
                    recalls.append(item)
                else:
                    summary.skipped += 1
            if messages:
                stored = self._store.store_messages(messages)
                summary.stored += sum(stored)
                summary.duplicated += len(stored) - sum(stored)
            if recalls:
                with self._engine.begin() as connection:
                    summary.recalled += sum(apply_recalls(connection, recalls))
            last = max(record.seq for record in records)
            if last <= seq:
                raise ArchiveError(
                    f"archive: GetChatData after seq {seq} returned nothing newer; stopping"
                )
            advance_archive_seq(self._engine, self._app.corp_id, last)
            seq = summary.to_seq = last

    async def pull_async(self) -> PullSummary | None:
        """Pull on a worker thread; ``None`` when a pull was already running.

        This is the hook for the periodic job and the ``msgaudit_notify`` event. A
        notice arriving during a pull makes that pull go round once more, so no notice
        is lost between its last ``GetChatData`` and its end.

        Raises:
            ArchiveError: the pull failed (also kept in :attr:`last_error`).
        """
        if self._running.locked():
            self._again = True
            return None
        async with self._running:
            try:
                while True:
                    self._again = False
                    summary = await asyncio.to_thread(self.pull)
                    if not self._again:
                        break
            except ArchiveError as error:
                self.last_error = str(error)
                raise
            finally:
                async with self._pulled:
                    self.pulls_ended += 1
                    self._pulled.notify_all()
        self.last_summary, self.last_error = summary, None
        log.info(
            "archive %s: seq %d -> %d, %d records, %d stored, %d duplicated, %d recalled",
            summary.bot_id,
            summary.from_seq,
            summary.to_seq,
            summary.records,
            summary.stored,
            summary.duplicated,
            summary.recalled,
        )
        return summary

    async def wait_for_pulls(self, count: int) -> None:
        """Return once ``count`` pulls through :meth:`pull_async` have ended."""
        async with self._pulled:
            await self._pulled.wait_for(lambda: self.pulls_ended >= count)

    async def run_periodically(self, every_seconds: float) -> None:
        """Pull now and then every ``every_seconds`` until cancelled; log failures."""
        while True:
            try:
                await self.pull_async()
            except ArchiveError as error:
                log.error("archive %s: %s", self._app.id, error)
            except Exception:
                log.exception("archive %s: pull failed; trying again later", self._app.id)
            await asyncio.sleep(every_seconds)


def archive_pullers(settings: Settings, engine: Engine) -> dict[str, ArchivePuller]:
    """One puller per ``wecom_app`` bot with an archive, keyed by bot id."""
    return {app.id: ArchivePuller(app, engine) for app in archive_apps(settings)}


def archive_lifecycle(
    settings: Settings, pullers: dict[str, ArchivePuller]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` that runs each archive's periodic pull while serving."""

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        tasks = []
        for bot_id, puller in pullers.items():
            bot = next(b for b in archive_apps(settings) if b.id == bot_id)
            assert bot.archive is not None  # noqa: S101 - archive_apps() guarantees it
            if bot.archive.pull_every_minutes > 0:
                tasks.append(
                    asyncio.create_task(
                        puller.run_periodically(bot.archive.pull_every_minutes * 60),
                        name=f"qunpulse-archive-{bot_id}",
                    )
                )
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for puller in pullers.values():
            puller.close()

    return lifecycle


def pull_archive(settings: Settings, engine: Engine) -> list[PullSummary]:
    """Pull every configured archive once (``qunpulse archive pull``).

    Raises:
        ArchiveError: no archive is configured, or a pull failed.
    """
    apps = archive_apps(settings)
    if not apps:
        raise ArchiveError(
            'archive: no [[bots]] entry of kind = "wecom_app" has an archive table; '
            "add [bots.archive] with secret, private_keys and sdk_path (see README)"
        )
    summaries = []
    store = EventStore(engine)
    for app in apps:
        puller = ArchivePuller(app, engine, store)
        try:
            summaries.append(puller.pull())
        finally:
            puller.close()
    return summaries
