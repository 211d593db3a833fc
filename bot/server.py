"""The HTTP edge: aiohttp routes that only convert requests and responses.

``/callback/{bot_id}`` hands the request to the bot's platform module (verify, decrypt,
normalise), stores the events through the group-commit writer, and only then answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from aiohttp import web
from sqlalchemy import Engine

from bot.ingest import GroupCommitWriter, StorageUnavailable
from bot.platforms import InboundRequest, Platform, RejectedRequest, Reply
from bot.telemetry import CONTENT_TYPE, Telemetry
from storage.db import ping
from storage.ingest import Stored

log = logging.getLogger(__name__)

PLATFORMS_KEY = web.AppKey("platforms", Mapping[str, Platform])
WRITER_KEY = web.AppKey("writer", GroupCommitWriter)
TELEMETRY_KEY = web.AppKey("telemetry", Telemetry)
ENGINE_KEY = web.AppKey("engine", Engine)
#: Called with every callback's stored events once they are committed (commands,
#: archive notices); it must return at once and do its work in the background.
AfterStore = Callable[[list[Stored]], None]
AFTER_STORE_KEY: web.AppKey[AfterStore] = web.AppKey("after_store")


def create_web_app(
    *,
    platforms: Mapping[str, Platform],
    writer: GroupCommitWriter,
    telemetry: Telemetry,
    engine: Engine,
    after_store: AfterStore | None = None,
) -> web.Application:
    """Build the aiohttp application (the caller starts and stops ``writer``).

    ``after_store`` sees every callback's events once they are committed, before the
    platform is answered (new command messages are answered from there, in the
    background).
    """
    app = web.Application(client_max_size=1024 * 1024)
    app[PLATFORMS_KEY] = platforms
    app[WRITER_KEY] = writer
    app[TELEMETRY_KEY] = telemetry
    app[ENGINE_KEY] = engine
    if after_store is not None:
        app[AFTER_STORE_KEY] = after_store
    app.router.add_get("/callback/{bot_id}", verify_url)
    app.router.add_post("/callback/{bot_id}", callback)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def _platform(request: web.Request) -> Platform:
    platform = request.app[PLATFORMS_KEY].get(request.match_info["bot_id"])
    if platform is None:
        raise web.HTTPNotFound(text="no bot with this id is configured\n")
    return platform


async def _inbound(request: web.Request) -> InboundRequest:
    return InboundRequest(
        method=request.method,
        query=dict(request.query),
        headers=request.headers,  # case-insensitive: platforms look names up in lowercase
        body=await request.read(),
    )


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)


def _rejected(platform: Platform, telemetry: Telemetry, error: RejectedRequest) -> web.Response:
    telemetry.events_rejected.labels(platform.platform, platform.kind, error.reason).inc()
    log.info("%s %s: refused a callback: %s", platform.kind, platform.bot_id, error.detail)
    return web.Response(status=error.status, text=f"{error.reason}: {error.detail}\n")


async def verify_url(request: web.Request) -> web.Response:
    platform = _platform(request)
    try:
        return _response(platform.verify_url(await _inbound(request)))
    except RejectedRequest as error:
        return _rejected(platform, request.app[TELEMETRY_KEY], error)


async def callback(request: web.Request) -> web.Response:
    platform = _platform(request)
    telemetry = request.app[TELEMETRY_KEY]
    try:
        received = platform.receive(await _inbound(request))
    except RejectedRequest as error:
        return _rejected(platform, telemetry, error)
    try:
        stored = await request.app[WRITER_KEY].submit(received.events)
    except StorageUnavailable:
        return web.Response(status=503, text="storage unavailable, retry later\n")
    duplicates = sum(1 for item in stored if not item.new)
    telemetry.count_stored(platform.platform, platform.kind, received.label, duplicates)
    after_store = request.app.get(AFTER_STORE_KEY)
    if after_store is not None:
        # Stored, so safe to answer the platform now; reactions run in background tasks.
        after_store(stored)
    return _response(received.ack)


async def healthz(request: web.Request) -> web.Response:
    try:
        await asyncio.to_thread(ping, request.app[ENGINE_KEY])
    except Exception as exc:  # any failure to answer means unhealthy
        log.warning("health check: the database does not answer: %s", type(exc).__name__)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[TELEMETRY_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
