"""The composition root: the one place that constructs the engine, platforms and server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from aiohttp import web
from sqlalchemy import Engine

from bot.archive import ArchivePuller, archive_lifecycle, archive_pullers
from bot.dashboard.web import add_dashboard
from bot.ingest import GroupCommitWriter
from bot.platforms import Platform, build_platforms
from bot.platforms.base import Clock
from bot.replies import build_reply_channels
from bot.server import create_web_app
from bot.telemetry import Telemetry
from config import Settings, redact_url
from handlers import REGISTRY
from handlers.dispatcher import Dispatcher
from storage.db import make_engine, upgrade
from storage.ingest import EventStore

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
    #: WeCom session-archive pullers by bot id: ``pull_async()`` is the hook for the
    #: ``msgaudit_notify`` event and the scheduler.
    archive_pullers: dict[str, ArchivePuller] = field(default_factory=dict)


#: Every outbound call has a deadline (connect and read), so none can hang a task.
OUTBOUND_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def build_service(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    http_transport: httpx.AsyncBaseTransport | None = None,
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
    http = httpx.AsyncClient(timeout=OUTBOUND_TIMEOUT, transport=http_transport)
    dispatcher = Dispatcher(
        registry=REGISTRY,
        engine=engine,
        settings=settings,
        clock=clock,
        channels=build_reply_channels(settings, http, clock),
        on_outcome=lambda command, status: telemetry.commands.labels(command, status).inc(),
    )
    web_app = create_web_app(
        platforms=platforms,
        writer=writer,
        telemetry=telemetry,
        engine=engine,
        dispatcher=dispatcher,
    )
    add_dashboard(web_app, settings=settings, engine=engine, telemetry=telemetry, clock=clock)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await writer.start()
        yield
        await writer.stop()
        await dispatcher.stop()
        await http.aclose()
        engine.dispose()

    web_app.cleanup_ctx.append(lifecycle)
    pullers = archive_pullers(settings, engine)
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
        archive_pullers=pullers,
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
