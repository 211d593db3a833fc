"""The background sentiment scorer: SnowNLP off the request path, in batches.

Callbacks store messages and answer at once; this worker finds text messages without a
score (``sentiment IS NULL``), scores them (and cuts their words), stores the scores and
then calls its listeners with the newly scored messages, which is where alerting hooks
in::

    worker.listeners.append(my_async_callback)   # async def cb(scored: list[Scored]) -> None

The work runs in a separate process (one worker of a ``spawn`` process pool), not in a
thread: SnowNLP and jieba are pure Python and load for seconds, and even the reading and
writing of a batch through SQLAlchemy is Python that would hold the GIL the server's
event loop needs. That process reads the batch with its own engine, scores it, writes
the scores and sends the scored messages back; the server only awaits them and tells the
listeners. One scoring process serves every worker of a process (it keeps an engine per
database); it loads the sentiment model once, when it starts: at the first batch, or at
once for ``qunpulse serve`` (:func:`preload_scorer`). It ignores SIGINT and SIGTERM (the
server stops it in order, :func:`stop_scorer`, or at interpreter exit) and exits by
itself if the server dies.

It walks the primary key from where it left off and looks back ``LOOKBACK`` ids on every
pass, because on PostgreSQL a transaction holding a smaller id can commit after a larger
one. Several processes may score the same message; the score is the same, so that is
harmless. Commands to the bot and messages without text are never scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, bindparam, or_, select, update

from analytics.sentiment import score
from analytics.text import TextConfig, segmenter
from bot.workers import exit_with_parent
from config import Settings
from handlers.stats import StatsOptions
from storage.models import Message

log = logging.getLogger(__name__)
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
LOOKBACK = 1000
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Scored:
    """A message that just got its score."""

    message_id: int
    group_id: int
    member_id: int
    text: str
    sent_at: datetime
    sentiment: float
    #: False for a message scored earlier that only got its words now (not news).
    new: bool = True


Listener = Callable[[list[Scored]], Awaitable[None]]


def score_batch(
    engine: Engine,
    *,
    after_id: int,
    limit: int,
    min_chinese_chars: int,
    text: TextConfig | None = None,
    only_unscored: bool = True,
    backfill_words: bool = False,
    group_id: int | None = None,
) -> list[Scored]:
    """Score up to ``limit`` text messages with an id above ``after_id``; store the scores.

    With ``text``, each message's words are cut (jieba) and stored as well
    (``message.words``), so that reports count words without segmenting again. With
    ``backfill_words`` too, ``only_unscored`` also takes scored messages that have no
    words yet (stored before migration 0010): they keep their score and come back with
    ``new=False``. The background worker does not backfill (a long history would hold
    up the scoring of new messages, and so their alerts); ``sentiment rescore
    --unscored`` does.
    """
    query = (
        select(
            _MESSAGE.c.id,
            _MESSAGE.c.group_id,
            _MESSAGE.c.member_id,
            _MESSAGE.c.text,
            _MESSAGE.c.sent_at,
            _MESSAGE.c.sentiment,
        )
        .where(
            _MESSAGE.c.id > after_id,
            _MESSAGE.c.text.is_not(None),
            _MESSAGE.c.is_command.is_(False),
        )
        .order_by(_MESSAGE.c.id)
        .limit(limit)
    )
    if only_unscored:
        unscored = _MESSAGE.c.sentiment.is_(None)
        if text is not None and backfill_words:
            query = query.where(or_(unscored, _MESSAGE.c.words.is_(None)))
        else:
            query = query.where(unscored)
    if group_id is not None:
        query = query.where(_MESSAGE.c.group_id == group_id)
    with engine.connect() as connection:
        found = connection.execute(query).all()
    scored = [
        Scored(
            int(r.id),
            int(r.group_id),
            int(r.member_id),
            str(r.text),
            r.sent_at,
            # 4 decimals: enough for any threshold, and sums stay exact (metric_queries).
            round(score(str(r.text), min_chinese_chars), 4) if new else float(r.sentiment),
            new,
        )
        for r in found
        for new in (not only_unscored or r.sentiment is None,)
    ]
    if scored:
        values: dict[str, Any] = {"sentiment": bindparam("value")}
        rows: list[dict[str, Any]] = [
            {"target": s.message_id, "value": s.sentiment} for s in scored
        ]
        if text is not None:
            cutter = segmenter(text)
            values["words"] = bindparam("cut")
            for row, message in zip(rows, scored, strict=True):
                row["cut"] = cutter.stored(message.text)
        # A text erased meanwhile (`member forget`, retention) keeps neither score nor words.
        statement = (
            update(_MESSAGE)
            .where(_MESSAGE.c.id == bindparam("target"), _MESSAGE.c.text.is_not(None))
            .values(values)
        )
        with engine.begin() as connection:
            connection.execute(statement, rows)
    return scored


def rescore(
    engine: Engine, settings: Settings, *, group_id: int | None = None, only_unscored: bool = False
) -> int:
    """Score every text message again (or only unscored ones) and store its words.

    Returns how many messages got a score (words filled in alone do not count).
    """
    cursor, total = 0, 0
    while True:
        batch = score_batch(
            engine,
            after_id=cursor,
            limit=max(settings.sentiment.batch_size, 500),
            min_chinese_chars=settings.sentiment.min_chinese_chars,
            text=StatsOptions.from_settings(settings).text_config(),
            only_unscored=only_unscored,
            backfill_words=True,
            group_id=group_id,
        )
        if not batch:
            return total
        total += sum(1 for s in batch if s.new)
        cursor = batch[-1].message_id


class SentimentWorker:
    """Scores newly stored messages in the background while the server runs."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        # The scoring process opens its own engine on the same database.
        self._url = engine.url.render_as_string(hide_password=False)
        self._batch = settings.sentiment.batch_size
        self._interval = settings.sentiment.interval_seconds
        self._min_chars = settings.sentiment.min_chinese_chars
        self._text = StatsOptions.from_settings(settings).text_config()
        self._cursor = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: Async callbacks called with each batch of newly scored messages.
        self.listeners: list[Listener] = []

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sentiment-worker")

    async def stop(self) -> None:
        """Finish the batch in hand (the scoring process is not interrupted), then stop.

        The scoring process is the process's, not this worker's: :func:`stop_scorer`.
        """
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None

    def wake(self) -> None:
        """Look for new messages now instead of at the next interval."""
        self._wake.set()

    async def run_once(self) -> list[Scored]:
        """Score one batch (in the scoring process), then tell the listeners."""
        scored = await _in_scorer(
            _score_next,
            self._url,
            max(0, self._cursor - LOOKBACK),
            self._batch,
            self._min_chars,
            self._text,
        )
        if scored:
            self._cursor = max(self._cursor, scored[-1].message_id)
        fresh = [s for s in scored if s.new]
        if fresh:
            for listener in list(self.listeners):
                try:
                    await listener(fresh)
                except Exception:
                    log.exception("a sentiment listener failed; the scores are stored")
        return scored

    async def _run(self) -> None:
        # The first pass waits one interval (or a wake()), so that a short-lived service
        # (a test, a demo) does not start the scoring process for nothing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._interval)
        while not self._stopping:
            try:
                scored = await self.run_once()
            except Exception:
                log.exception("sentiment scoring failed; retrying in %.0f s", self._interval)
                scored = []
            if len(scored) < self._batch and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval)


# --- the scoring process ----------------------------------------------------------------

_scorer: ProcessPoolExecutor | None = None
_scorer_lock = threading.Lock()


def _scorer_pool() -> ProcessPoolExecutor:
    global _scorer
    with _scorer_lock:
        if _scorer is None:
            _scorer = ProcessPoolExecutor(
                max_workers=1,
                # spawn, not fork: forking a process that runs an event loop and threads
                # is unsafe, and the scorer need not inherit the server's memory.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_scorer,
            )
        return _scorer


def preload_scorer() -> None:
    """Start the scoring process (and its model load) now rather than at the first batch."""
    _scorer_pool().submit(_ready)


async def _in_scorer(function: Callable[..., _T], *args: object) -> _T:
    """Run ``function(*args)`` in the scoring process.

    Raises:
        concurrent.futures.process.BrokenProcessPool: the scoring process died (killed,
            out of memory); the next call starts a new one.
    """
    global _scorer
    pool = _scorer_pool()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
    except BrokenProcessPool:
        with _scorer_lock:
            if _scorer is pool:
                _scorer = None
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def stop_scorer() -> None:
    """Stop the scoring process, if it runs (waits for a model load in progress)."""
    global _scorer
    with _scorer_lock:
        pool, _scorer = _scorer, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_scorer() -> None:
    """Initialise the scoring process: signals, a watch on the parent, the model."""
    # Ctrl-C reaches the whole process group, and a service manager may send SIGTERM to
    # every process of the service: the server stops this one in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exit_with_parent()
    score("模型加载一次", 1)  # SnowNLP's model, once, before the first batch


#: The scoring process's engines by database URL, newest last (a test session makes many).
_ENGINES: dict[str, Engine] = {}
_MAX_ENGINES = 4


def _score_next(
    url: str, after_id: int, limit: int, min_chinese_chars: int, text: TextConfig
) -> list[Scored]:
    """:func:`score_batch` in the scoring process, on its own engine for ``url``."""
    engine = _ENGINES.pop(url, None)
    if engine is None:
        from sqlalchemy.pool import NullPool

        from storage.db import make_engine

        # SQLite files are opened per batch (cheap), so that none stays open.
        extra = {"poolclass": NullPool} if url.startswith("sqlite") else {}
        engine = make_engine(url, **extra)
    _ENGINES[url] = engine
    while len(_ENGINES) > _MAX_ENGINES:
        _ENGINES.pop(next(iter(_ENGINES))).dispose()
    return score_batch(
        engine, after_id=after_id, limit=limit, min_chinese_chars=min_chinese_chars, text=text
    )


def _ready() -> bool:
    return True
