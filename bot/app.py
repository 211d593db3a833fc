"""The composition root: the one place that constructs the engine, platforms and server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
from aiohttp import web
from sqlalchemy import Engine

from bot.ingest import GroupCommitWriter
from bot.jobs import Jobs, day_for, targets_from
from bot.outbox import OutboxSender
from bot.platforms import Platform, build_platforms
from bot.platforms.base import Clock
from bot.scheduler import JobScheduler, runner_id
from bot.senders import SlidingWindowLimiter, build_senders
from bot.senders.ratelimit import Sleep
from bot.server import create_web_app
from bot.telemetry import Telemetry
from config import Settings, redact_url
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.outbox import JobRuns, Leases, Outbox

#: Every outbound call has a deadline (a stuck platform must not stall the sender).
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
    http: httpx.AsyncClient
    outbox: Outbox
    sender: OutboxSender
    jobs: Jobs
    scheduler: JobScheduler


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
        build_senders(http),
        targets_from(settings),
        SlidingWindowLimiter(clock, sleep, limit=settings.posts.max_per_minute),
        telemetry,
        clock,
        runner_id=holder,
        max_attempts=settings.posts.max_attempts,
        sleep=sleep,
    )
    jobs = Jobs(settings, engine, outbox, clock)

    async def run_job(job: str, fire_day: date) -> None:
        # Jobs read the database in a worker thread; the sender is woken back on the loop
        # (an asyncio.Event must not be set from another thread).
        result = await asyncio.to_thread(jobs.run, job, day_for(job, fire_day))
        if result.queued:
            sender.wake()

    async def on_lead() -> None:
        abandoned = outbox.abandon_interrupted()  # one quick UPDATE
        if abandoned:
            log.warning("outbox: %d post(s) were interrupted mid-send; marked failed", abandoned)
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


def build_service(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    transport: httpx.AsyncBaseTransport | None = None,
    run_scheduler: bool = True,
) -> Service:
    """Construct the service from settings; migrates the database first.

    Raises:
        config.ConfigError: a bot entry cannot be served.
    """
    engine = make_engine(settings.storage.url)
    platforms = build_platforms(settings, clock)
    log.info("database %s: applying migrations", redact_url(settings.storage.url))
    upgrade(engine)
    telemetry = Telemetry()
    writer = GroupCommitWriter(EventStore(engine), telemetry)
    web_app = create_web_app(platforms=platforms, writer=writer, telemetry=telemetry, engine=engine)
    http, outbox, sender, jobs, scheduler = build_outbound(
        settings, engine, telemetry, clock, transport=transport
    )

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await writer.start()
        if run_scheduler:
            await scheduler.start()
        yield
        await scheduler.stop()
        await sender.stop()
        await writer.stop()
        await http.aclose()
        engine.dispose()

    web_app.cleanup_ctx.append(lifecycle)
    return Service(
        settings,
        engine,
        platforms,
        telemetry,
        writer,
        web_app,
        http,
        outbox,
        sender,
        jobs,
        scheduler,
    )


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
    ]


def serve(settings: Settings) -> None:
    """Run the HTTP server until SIGINT or SIGTERM, then stop cleanly."""
    service = build_service(settings)
    for line in describe_bots(service):
        log.info("%s", line)
    log.info("listening on http://%s:%d", settings.server.host, settings.server.port)
    web.run_app(
        service.web_app,
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    log.info("stopped")
