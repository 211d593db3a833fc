"""The composition root: the one place that constructs the engine, platforms and server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import Engine

from bot.ingest import GroupCommitWriter
from bot.platforms import Platform, build_platforms
from bot.platforms.base import Clock
from bot.sentiment import SentimentWorker
from bot.server import create_web_app
from bot.telemetry import Telemetry
from config import Settings, redact_url
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
    #: Scores new messages in the background; alerting adds itself to ``listeners``.
    sentiment: SentimentWorker


def build_service(settings: Settings, *, clock: Clock = system_clock) -> Service:
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
    sentiment = SentimentWorker(engine, settings)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await writer.start()
        await sentiment.start()
        yield
        await sentiment.stop()
        await writer.stop()
        engine.dispose()

    web_app.cleanup_ctx.append(lifecycle)
    return Service(settings, engine, platforms, telemetry, writer, web_app, sentiment)


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
