"""A local HTTP server that answers like a platform's server API, and records every call.

Tests register the routes the platform has (``api.route("POST", "/cgi-bin/webhook/send",
handler)``); the token endpoints of WeCom, DingTalk and Feishu are built in. Every request
is kept in ``api.calls`` to assert on. A route nobody registered answers 599 and is
recorded in ``api.unexpected``, which the fixture checks at teardown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

Handler = Callable[["Call"], Awaitable[tuple[int, Any]] | tuple[int, Any]]


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PlatformAPI:
    """The platform's side of outbound calls, on 127.0.0.1."""

    calls: list[Call] = field(default_factory=list)
    unexpected: list[Call] = field(default_factory=list)
    base_url: str = ""
    _routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def wait_for_calls(self, path: str, count: int = 1, within: float = 10.0) -> list[Call]:
        """Wait until ``count`` calls to ``path`` have arrived (woken by each call, no polling).

        Raises:
            AssertionError: they did not arrive within ``within`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.calls_to(path)) < count:
            self._arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"expected {count} call(s) to {path} within {within}s, got "
                    f"{len(self.calls_to(path))}; all calls: {[c.path for c in self.calls]}"
                )
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue
        return self.calls_to(path)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self._install_token_routes()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        call = Call(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            await request.read(),
        )
        self.calls.append(call)
        self._arrived.set()
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            self.unexpected.append(call)
            return web.json_response({"error": "no such route in the test double"}, status=599)
        result = handler(call)
        status, body = await result if not isinstance(result, tuple) else result
        return web.json_response(body, status=status)

    def _install_token_routes(self) -> None:
        def wecom(call: Call) -> tuple[int, Any]:
            return 200, {
                "errcode": 0,
                "errmsg": "ok",
                "access_token": f"wecom-token-{next(self._tokens)}",
                "expires_in": 7200,
            }

        def dingtalk(call: Call) -> tuple[int, Any]:
            return 200, {"accessToken": f"ding-token-{next(self._tokens)}", "expireIn": 7200}

        def feishu(call: Call) -> tuple[int, Any]:
            return 200, {
                "code": 0,
                "msg": "ok",
                "tenant_access_token": f"t-{next(self._tokens)}",
                "expire": 7200,
            }

        self.route("GET", "/cgi-bin/gettoken", wecom)
        self.route("POST", "/v1.0/oauth2/accessToken", dingtalk)
        self.route("POST", "/open-apis/auth/v3/tenant_access_token/internal", feishu)


class LoopbackOnly(httpx.AsyncBaseTransport):
    """An httpx transport that refuses any call not addressed to 127.0.0.1.

    Tests hand it to qunpulse so that a forgotten ``api_base`` fails loudly instead of
    reaching for the real platform.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"unexpected outbound call to {request.url.host} in a test")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
