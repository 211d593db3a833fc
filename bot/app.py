"""The composition root: the one place that constructs the engine, platforms and server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx
from aiohttp import web
from sqlalchemy import Engine

from bot.archive import ArchivePuller, archive_lifecycle, archive_pullers
from bot.dashboard.web import add_dashboard
from bot.events import Event, NoticeEvent
from bot.ingest import GroupCommitWriter
from bot.jobs import JobResult, Jobs, day_for, targets_from
from bot.outbox import OutboxSender
from bot.platforms import DingtalkStream, Platform, build_platforms, build_streams
from bot.platforms.base import Clock
from bot.replies import build_reply_channels
from bot.scheduler import JobScheduler, runner_id
from bot.senders import SlidingWindowLimiter, build_senders
from bot.senders.ratelimit import Sleep
from bot.sentiment import Scored, SentimentWorker, preload_scorer, stop_scorer
from bot.server import create_web_app
from bot.telemetry import Telemetry
from config import Settings, redact_url
from handlers import REGISTRY
from handlers.dispatcher import Dispatcher
from storage.alerts import AlertStore
from storage.db import make_engine, upgrade
from storage.ingest import EventStore, Stored
from storage.outbox import JobRuns, Leases, Outbox

#: Every outbound call has a deadline (a stuck platform must not stall a task).
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

log = logging.getLogger(__name__)


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Service:
    """Everything ``qunpulse serve`` runs, wired together."""

    settings: Settings
    engine: Engine
    platforms: dict[str, Platform]
    telemetry: Telemetry
    writer: GroupCommitWriter
    web_app: web.Application
    dispatcher: Dispatcher
    http: httpx.AsyncClient
    outbox: Outbox
    sender: OutboxSender
    jobs: Jobs
    scheduler: JobScheduler
    #: Scores new messages in the background; alerting adds itself to ``listeners``.
    sentiment: SentimentWorker
    #: WeCom session-archive pullers by bot id: ``pull_async()`` is the hook for the
    #: ``msgaudit_notify`` event and the scheduler.
    archive_pullers: dict[str, ArchivePuller] = field(default_factory=dict)
    #: Connections qunpulse dials itself (DingTalk Stream mode); started with the web app.
    streams: list[DingtalkStream] = field(default_factory=list)


def build_outbound(
    settings: Settings,
    engine: Engine,
    telemetry: Telemetry,
    clock: Clock,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    holder: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> tuple[httpx.AsyncClient, Outbox, OutboxSender, Jobs, JobScheduler]:
    """The outbound half: HTTP client, outbox, sender loop, jobs and scheduler.

    ``serve`` and ``qunpulse run`` both build it here, so they post the same way.
    """
    holder = holder or runner_id()
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, transport=transport)
    outbox = Outbox(engine)
    telemetry.watch_outbox(lambda: outbox.counts()["pending"])
    sender = OutboxSender(
        outbox,
        build_senders(http, clock),
        targets_from(settings),
        SlidingWindowLimiter(clock, sleep, limit=settings.posts.max_per_minute),
        telemetry,
        clock,
        runner_id=holder,
        max_attempts=settings.posts.max_attempts,
        sleep=sleep,
    )
    jobs = Jobs(settings, engine, outbox, clock, telemetry=telemetry)
    sender.finished.append(jobs.alerts.on_post_finished)  # alerts take their posts' state

    async def run_job(job: str, fire_day: date) -> None:
        # Jobs read the database in a worker thread; the sender is woken back on the loop
        # (an asyncio.Event must not be set from another thread) after each saved batch.
        loop = asyncio.get_running_loop()

        def wake_sender(_saved: list[int]) -> None:
            # A loop closed under a job (a shutdown that did not wait) has nobody to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(sender.wake)

        future = asyncio.ensure_future(
            asyncio.to_thread(jobs.run, job, day_for(job, fire_day), on_saved=wake_sender)
        )
        jobs.in_flight.add(future)
        future.add_done_callback(jobs.in_flight.discard)
        await asyncio.shield(future)  # a cancelled caller leaves the thread running

    async def on_lead() -> None:
        abandoned = outbox.abandon_interrupted()  # one quick UPDATE
        if abandoned:
            log.warning("outbox: %d post(s) were interrupted mid-send; marked failed", abandoned)
            AlertStore(engine).settle_pending()  # alerts whose posts were among them
        await sender.start()

    scheduler = JobScheduler(
        settings,
        JobRuns(engine),
        Leases(engine),
        run_job,
        telemetry,
        clock,
        holder=holder,
        on_lead=on_lead,
        on_lose=sender.stop,
    )
    return http, outbox, sender, jobs, scheduler


async def run_and_deliver(
    jobs: Jobs, sender: OutboxSender, job: str, day: date, chat_id: str | None = None
) -> JobResult:
    """Run ``job`` (``qunpulse run``) and deliver its posts, each batch as soon as it is saved.

    The job runs in a worker thread; while it makes the next batch's figures (much of it in
    SQLite and in the word cloud worker, outside the GIL) this loop sends the batches
    already saved, so a thousand groups' run takes about the longer of the two, not their
    sum. What may go now goes at once; back-offs are waited out once the job is done. Only
    this run's posts are sent (posts queued earlier belong to ``serve``). If the job
    fails, what it saved is delivered before the error is raised.
    """
    loop = asyncio.get_running_loop()
    batches: asyncio.Queue[list[int] | None] = asyncio.Queue()

    async def produce() -> JobResult:
        def on_saved(ids: list[int]) -> None:
            loop.call_soon_threadsafe(batches.put_nowait, ids)

        try:
            return await asyncio.to_thread(jobs.run, job, day, chat_id, on_saved=on_saved)
        finally:
            # After the thread's own batches: they were handed to the loop before it ended.
            batches.put_nowait(None)

    running = asyncio.create_task(produce())
    queued: list[int] = []
    try:
        while (ids := await batches.get()) is not None:
            queued += ids
            while await sender.deliver_due(queued):  # a page at a time, while pages go out
                pass
        await sender.drain(queued)
    except BaseException:
        await asyncio.wait({running})  # the thread still uses the database: let it finish
        raise
    return await running


def build_service(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    http_transport: httpx.AsyncBaseTransport | None = None,
    run_scheduler: bool = True,
) -> Service:
    """Construct the service from settings; migrates the database first.

    Args:
        settings: validated settings.
        clock: the current time.
        http_transport: the transport of outbound HTTP (tests pass one that refuses
            anything but the local platform double).

    Raises:
        config.ConfigError: a bot entry cannot be served.
    """
    engine = make_engine(settings.storage.url)
    platforms = build_platforms(settings, clock)
    log.info("database %s: applying migrations", redact_url(settings.storage.url))
    upgrade(engine)
    telemetry = Telemetry()
    writer = GroupCommitWriter(EventStore(engine), telemetry)
    http, outbox, sender, jobs, scheduler = build_outbound(
        settings, engine, telemetry, clock, transport=http_transport
    )
    dispatcher = Dispatcher(
        registry=REGISTRY,
        engine=engine,
        settings=settings,
        clock=clock,
        channels=build_reply_channels(settings, http, clock),
        on_outcome=lambda command, status: telemetry.commands.labels(command, status).inc(),
    )
    pullers = archive_pullers(settings, engine)
    sentiment = SentimentWorker(engine, settings)
    monitor = jobs.alerts

    async def alert_on_scored(scored: list[Scored]) -> None:
        """Alerts for a scored batch: stored (with their posts) in a thread, then sent now."""
        candidates = [s.message_id for s in scored if monitor.worth_a_look(s.text, s.sentiment)]
        if candidates and await asyncio.to_thread(monitor.on_messages, candidates):
            sender.wake()  # the 30-second promise: do not wait for the sender's next poll

    sentiment.listeners.append(alert_on_scored)

    def after_store(stored: list[Stored]) -> None:
        """React to newly stored events: commands, and archive notices."""
        dispatcher.feed(stored)
        for item in stored:
            event = item.event
            if item.new and isinstance(event, NoticeEvent) and event.kind == "archive_ready":
                puller = pullers.get(event.bot_id)
                if puller is not None:
                    _spawn(puller.pull_async(), f"qunpulse-archive-{event.bot_id}")

    web_app = create_web_app(
        platforms=platforms,
        writer=writer,
        telemetry=telemetry,
        engine=engine,
        after_store=after_store,
    )

    async def sink(events: Sequence[Event]) -> list[bool]:
        stored = await writer.submit(events)
        after_store(stored)
        return [item.new for item in stored]

    streams = build_streams(settings, clock, sink, telemetry)
    add_dashboard(web_app, settings=settings, engine=engine, telemetry=telemetry, clock=clock)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await writer.start()
        await sentiment.start()
        for stream in streams:
            await stream.start()
        if run_scheduler:
            await scheduler.start()
        yield

        async def finish_jobs() -> None:
            if jobs.in_flight:  # a job thread still using the database: let it finish first
                await asyncio.wait(set(jobs.in_flight))
            await asyncio.to_thread(jobs.close)  # waits for a cloud being drawn

        steps = [scheduler.stop, finish_jobs, sender.stop, *(s.stop for s in streams)]
        steps += [sentiment.stop, writer.stop, dispatcher.stop]
        failed: list[Exception] = []
        try:
            for step in steps:  # each one, whatever failed before it; the first error after
                try:
                    await step()
                except Exception as error:
                    failed.append(error)
        finally:
            # The connections are closed, not left to the GC.
            await http.aclose()
            engine.dispose()
        if failed:
            raise failed[0]

    web_app.cleanup_ctx.append(lifecycle)
    if pullers:
        web_app.cleanup_ctx.append(archive_lifecycle(settings, pullers))
    return Service(
        settings,
        engine,
        platforms,
        telemetry,
        writer,
        web_app,
        dispatcher,
        http,
        outbox,
        sender,
        jobs,
        scheduler,
        sentiment,
        archive_pullers=pullers,
        streams=streams,
    )


#: Background tasks started by reactions, kept referenced until they finish.
_BACKGROUND: set[asyncio.Task[object]] = set()


def _spawn(work: Coroutine[object, object, object], name: str) -> None:
    task = asyncio.create_task(work, name=name)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s failed: %s", task.get_name(), task.exception())


def describe_bots(service: Service) -> list[str]:
    """Lines for the log at start: each bot and its callback path."""
    if not service.platforms:
        return [
            "no bots are configured yet: add a [[bots]] entry to qunpulse.toml "
            "(see config/qunpulse.example.toml and the README) and restart"
        ]
    return [
        f"bot {bot_id} ({platform.kind}): callback URL path /callback/{bot_id}"
        for bot_id, platform in service.platforms.items()
    ] + [
        f"bot {stream.bot_id} ({stream.kind}, stream mode): dials the DingTalk gateway"
        for stream in service.streams
    ]


def serve(settings: Settings, *, extend: Callable[[web.Application], None] | None = None) -> None:
    """Run the HTTP server until SIGINT or SIGTERM, then stop cleanly.

    ``extend`` may add routes first (``qunpulse demo --serve`` adds its webhook sink).
    """
    service = build_service(settings)
    if extend is not None:
        extend(service.web_app)
    for line in describe_bots(service):
        log.info("%s", line)
    # A server runs for days: load the sentiment model (in its own process) now, while
    # nothing is waiting for it, rather than when the first batch of messages arrives.
    preload_scorer()
    log.info("listening on http://%s:%d", settings.server.host, settings.server.port)
    try:
        web.run_app(
            service.web_app,
            host=settings.server.host,
            port=settings.server.port,
            print=None,
            access_log=None,
            handle_signals=True,
        )
    finally:
        stop_scorer()
    log.info("stopped")
