"""DingTalk Stream mode: qunpulse dials DingTalk, so no public callback URL is needed.

Protocol (as the official ``dingtalk-stream`` package speaks it):

1. ``POST {api_base}/v1.0/gateway/connections/open`` with ``clientId`` (AppKey),
   ``clientSecret`` and ``subscriptions`` (``CALLBACK /v1.0/im/bot/messages/get`` for
   robot messages, ``EVENT *`` for event subscriptions) answers ``{endpoint, ticket}``.
2. Open a WebSocket to ``{endpoint}?ticket=...``; DingTalk sends JSON frames
   ``{specVersion, type: SYSTEM|EVENT|CALLBACK, headers{messageId, topic, ...}, data}``
   where ``data`` is a JSON string.
3. Every frame is answered with an ack ``{code, headers{messageId, contentType},
   message, data}``; SYSTEM ``disconnect`` asks the client to reconnect.

We use the package's frame models (``CallbackMessage``, ``EventMessage``,
``SystemMessage``, ``AckMessage``) and topic constant, but run the connection ourselves:
its ``DingTalkStreamClient`` opens the connection with blocking ``requests`` inside the
event loop, reaches for 8.8.8.8 to learn its own IP, retries after a fixed 10 s and
acknowledges from untracked tasks. Here the open call is async with a timeout, reconnects
back off exponentially (``platforms.dingtalk.stream_backoff_*``), and a frame is
acknowledged only after its events are committed; a frame that could not be stored gets
no ack, so the gateway delivers it again (UNCONFIRMED: DingTalk documents redelivery of
unacknowledged frames, not its timing). The gateway base is ``platforms.dingtalk.api_base``.

Docs: https://open.dingtalk.com/document/direction/stream-mode-protocol-access-description
(Stream 模式协议), https://github.com/open-dingtalk/dingtalk-stream-sdk-python.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage, EventMessage, SystemMessage

from bot.events import Event, PlatformName
from bot.platforms.base import Clock, RejectedRequest
from bot.platforms.dingtalk_events import parse_event
from bot.platforms.dingtalk_robot import message_event
from bot.telemetry import Telemetry
from config.settings import DingtalkPlatformSettings, DingtalkRobotSettings

log = logging.getLogger(__name__)

#: Stores a frame's events; returns one flag per event: True if new, False if a redelivery.
EventSink = Callable[[Sequence[Event]], Awaitable[Sequence[bool]]]

_OPEN_PATH = "/v1.0/gateway/connections/open"
_ROBOT_TOPIC: str = ChatbotMessage.TOPIC
_ROBOT_TYPES = ("text", "picture", "richText", "audio", "video", "file")


class DingtalkStream:
    """One ``kind = "dingtalk_robot"`` bot in ``mode = "stream"``: a long-lived connection.

    Args:
        settings: the bot entry (``app_key`` and ``app_secret`` authenticate the connection).
        platform_settings: ``[platforms.dingtalk]`` (gateway base URL and back-off).
        sink: stores events; the frame is acknowledged only when it returns.
    """

    kind = "dingtalk_robot"
    platform: PlatformName = "dingtalk"

    def __init__(
        self,
        settings: DingtalkRobotSettings,
        platform_settings: DingtalkPlatformSettings,
        clock: Clock,
        sink: EventSink,
        telemetry: Telemetry,
    ) -> None:
        self.bot_id = settings.id
        self._app_key = settings.app_key
        self._secret = settings.app_secret
        self._api_base = platform_settings.api_base.rstrip("/")
        self._initial = platform_settings.stream_backoff_initial_seconds
        self._max = platform_settings.stream_backoff_max_seconds
        self._clock = clock
        self._sink = sink
        self._telemetry = telemetry
        self._task: asyncio.Task[None] | None = None
        self._frames: set[asyncio.Task[None]] = set()
        self._unknown_logged: set[str] = set()
        #: Connections opened so far (for logs and tests).
        self.connections = 0

    def __repr__(self) -> str:
        return f"DingtalkStream(bot_id={self.bot_id!r})"

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"qunpulse-dingtalk-stream-{self.bot_id}"
        )

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        for frame in list(self._frames):
            frame.cancel()
        if self._frames:
            await asyncio.gather(*self._frames, return_exceptions=True)

    async def _run(self) -> None:
        delay = self._initial
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    url = await self._open(session)
                    async with session.ws_connect(url, heartbeat=30) as socket:
                        self.connections += 1
                        log.info("dingtalk stream %s: connected", self.bot_id)
                        delay = self._initial
                        await self._serve(socket)
                    log.warning("dingtalk stream %s: connection closed; reconnecting", self.bot_id)
                except asyncio.CancelledError:
                    raise
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as error:
                    log.warning(
                        "dingtalk stream %s: %s; retrying in %.1f s",
                        self.bot_id,
                        _describe(error),
                        delay,
                    )
                except Exception:
                    # Whatever went wrong, a dead loop would silently stop all intake.
                    log.exception("dingtalk stream %s: unexpected error; reconnecting", self.bot_id)
                # Jitter keeps many processes from reconnecting in lockstep.
                await asyncio.sleep(delay * (1 + random.random() / 4))  # noqa: S311 - not crypto
                delay = min(delay * 2, self._max)

    async def _open(self, session: aiohttp.ClientSession) -> str:
        """Ask the gateway for a WebSocket endpoint and ticket.

        Raises:
            aiohttp.ClientError: the gateway refused (e.g. a wrong app_key / app_secret).
            KeyError: the answer lacks ``endpoint`` or ``ticket``.
        """
        body = {
            "clientId": self._app_key,
            "clientSecret": self._secret.get_secret_value(),
            "subscriptions": [
                {"type": "CALLBACK", "topic": _ROBOT_TOPIC},
                {"type": "EVENT", "topic": "*"},
            ],
            "ua": "qunpulse",
            "localIp": "",
        }
        async with session.post(
            self._api_base + _OPEN_PATH, json=body, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            if response.status >= 400:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    (),
                    status=response.status,
                    message="the gateway refused to open a connection "
                    "(check bots[].app_key and app_secret)",
                )
            answer = await response.json(content_type=None)
        return f"{answer['endpoint']}?ticket={quote_plus(str(answer['ticket']))}"

    async def _serve(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for raw in socket:
            if raw.type != aiohttp.WSMsgType.TEXT:
                if raw.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                    break
                continue
            try:
                frame = json.loads(raw.data)
            except ValueError:
                log.warning("dingtalk stream %s: a frame that is not JSON", self.bot_id)
                continue
            if not isinstance(frame, dict):
                continue
            if frame.get("type") == SystemMessage.TYPE:
                if await self._system(socket, frame):
                    await socket.close()
                    break
                continue
            # Frames are stored concurrently so that the group-commit writer can batch them.
            task = asyncio.create_task(self._frame(socket, frame))
            self._frames.add(task)
            task.add_done_callback(self._frames.discard)

    async def _system(self, socket: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> bool:
        message = SystemMessage.from_dict(frame)
        ack = AckMessage()
        ack.headers.message_id = message.headers.message_id
        ack.headers.content_type = "application/json"
        ack.message = "OK"
        ack.data = message.data
        await socket.send_str(json.dumps(ack.to_dict()))
        return bool(message.headers.topic == SystemMessage.TOPIC_DISCONNECT)

    async def _frame(self, socket: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        try:
            if kind == CallbackMessage.TYPE:
                message_id, events, label = self._callback(CallbackMessage.from_dict(frame))
            elif kind == EventMessage.TYPE:
                message_id, events, label = self._event(EventMessage.from_dict(frame))
            else:
                self._log_unknown(f"frame.{kind}")
                return
        except (RejectedRequest, ValueError, TypeError) as error:
            reason = error.reason if isinstance(error, RejectedRequest) else "malformed"
            self._telemetry.events_rejected.labels(self.platform, self.kind, reason).inc()
            log.info("dingtalk stream %s: refused a frame: %s", self.bot_id, _describe(error))
            headers = frame.get("headers")
            message_id = headers.get("messageId") if isinstance(headers, dict) else None
            await self._ack(socket, message_id, AckMessage.STATUS_BAD_REQUEST, "bad frame")
            return
        try:
            stored = await self._sink(events)
        except Exception as error:  # the database did not take it: no ack, DingTalk resends
            log.warning(
                "dingtalk stream %s: storing a frame failed (%s); not acknowledged",
                self.bot_id,
                type(error).__name__,
            )
            return
        duplicates = sum(1 for new in stored if not new)
        self._telemetry.count_stored(self.platform, self.kind, label, duplicates)
        await self._ack(socket, message_id, AckMessage.STATUS_OK, "OK")

    def _callback(self, message: CallbackMessage) -> tuple[str | None, tuple[Event, ...], str]:
        topic = str(message.headers.topic or "")
        data = message.data if isinstance(message.data, dict) else {}
        if topic != _ROBOT_TOPIC:
            self._log_unknown(f"callback.{topic}")
            return message.headers.message_id, (), "unknown"
        msgtype = str(data.get("msgtype", ""))
        if msgtype not in _ROBOT_TYPES:
            self._log_unknown(f"msgtype.{msgtype}")
            return message.headers.message_id, (), "unknown"
        event = message_event(data, self.bot_id, self._clock())
        return message.headers.message_id, (event,), msgtype

    def _event(self, message: EventMessage) -> tuple[str | None, tuple[Event, ...], str]:
        headers = message.headers
        event_type = str(headers.event_type or "")
        data = message.data if isinstance(message.data, dict) else {}
        payload = dict(data)
        if headers.event_id:
            payload.setdefault("eventId", headers.event_id)
        if headers.event_born_time:
            payload.setdefault("EventTime", headers.event_born_time)
        events = parse_event(
            event_type,
            payload,
            bot_id=self.bot_id,
            now=self._clock(),
            unknown_logged=self._unknown_logged,
        )
        return headers.message_id, events, f"event.{event_type}" if events else "unknown"

    async def _ack(
        self,
        socket: aiohttp.ClientWebSocketResponse,
        message_id: str | None,
        code: int,
        text: str,
    ) -> None:
        ack = AckMessage()
        ack.code = code
        ack.headers.message_id = message_id
        ack.headers.content_type = "application/json"
        ack.message = text
        ack.data = {"response": None}
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await socket.send_str(json.dumps(ack.to_dict()))

    def _log_unknown(self, label: str) -> None:
        if label not in self._unknown_logged:
            self._unknown_logged.add(label)
            log.warning(
                "dingtalk stream %s: accepted a frame of unknown kind %r", self.bot_id, label
            )


def _describe(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status}: {error.message}"
    if isinstance(error, RejectedRequest):
        return error.detail
    return type(error).__name__
