"""A stand-in for DingTalk's Stream gateway, built from the dingtalk-stream package's protocol.

``POST /v1.0/gateway/connections/open`` checks the credentials and subscriptions and
answers ``{endpoint, ticket}``; the WebSocket at ``/connect?ticket=`` then carries JSON
frames (``type`` SYSTEM / EVENT / CALLBACK, ``headers``, ``data`` as a JSON string) and
the client's acks (``code``, ``headers.messageId``). Tests push frames, wait for their
acks, and can drop the connection to see the client come back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

#: How long a test waits for the client before failing.
WAIT_SECONDS = 10.0


@dataclass
class StreamGateway:
    client_id: str
    client_secret: str
    base_url: str = ""
    opens: list[dict[str, Any]] = field(default_factory=list)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused_opens: int = 0
    _socket: web.WebSocketResponse | None = None
    _connected: asyncio.Condition = field(default_factory=asyncio.Condition)
    _acked: asyncio.Condition = field(default_factory=asyncio.Condition)
    _connections: int = 0
    _tickets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/connect", self._connect)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _open(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.opens.append(body)
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            async with self._connected:
                self.refused_opens += 1
                self._connected.notify_all()
            return web.json_response({"code": "InvalidAuthentication"}, status=401)
        topics = {(s["type"], s["topic"]) for s in body.get("subscriptions", [])}
        assert ("CALLBACK", "/v1.0/im/bot/messages/get") in topics
        ticket = f"ticket-{next(self._tickets)}"
        return web.json_response(
            {"endpoint": f"ws://127.0.0.1:{request.url.port}/connect", "ticket": ticket}
        )

    async def _connect(self, request: web.Request) -> web.WebSocketResponse:
        assert request.query.get("ticket", "").startswith("ticket-")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async with self._connected:
            self._socket = socket
            self._connections += 1
            self._connected.notify_all()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                ack = json.loads(message.data)
                async with self._acked:
                    self.acks[ack["headers"]["messageId"]] = ack
                    self._acked.notify_all()
        return socket

    async def wait_connected(self, count: int = 1) -> None:
        async with self._connected:
            await asyncio.wait_for(
                self._connected.wait_for(lambda: self._connections >= count), WAIT_SECONDS
            )

    async def wait_refused(self, count: int) -> None:
        async with self._connected:
            await asyncio.wait_for(
                self._connected.wait_for(lambda: self.refused_opens >= count), WAIT_SECONDS
            )

    async def drop(self) -> None:
        """Close the connection from the gateway's side (a network drop, a redeploy)."""
        assert self._socket is not None
        socket, self._socket = self._socket, None
        await socket.close()

    async def push(self, kind: str, topic: str, data: dict[str, Any], **headers: Any) -> str:
        assert self._socket is not None, "no client connected"
        message_id = f"msg-{next(self._ids)}"
        frame = {
            "specVersion": "1.0",
            "type": kind,
            "headers": {
                "appId": "app",
                "connectionId": "conn",
                "contentType": "application/json",
                "messageId": message_id,
                "time": "1700000000000",
                "topic": topic,
                **headers,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
        await self._socket.send_str(json.dumps(frame, ensure_ascii=False))
        return message_id

    async def ack_of(self, message_id: str) -> dict[str, Any]:
        async with self._acked:
            await asyncio.wait_for(
                self._acked.wait_for(lambda: message_id in self.acks), WAIT_SECONDS
            )
            return self.acks[message_id]
