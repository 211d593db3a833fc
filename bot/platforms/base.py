"""The contract every connection kind implements, and the errors it may raise.

The web framework stays at the edge: ``bot/server.py`` turns an aiohttp request into an
:class:`InboundRequest` and a :class:`Reply` back into a response, so platform modules
are plain functions of bytes and can be reasoned about (and tested) on their own terms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.events import Event, PlatformName

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """What the platform sent, framework-neutral."""

    method: str
    query: Mapping[str, str]
    #: Looked up by lowercase name (the server passes aiohttp's case-insensitive headers).
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """The HTTP answer to give the platform."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"

    @classmethod
    def json(cls, body: bytes) -> Reply:
        return cls(200, body, "application/json")


@dataclass(frozen=True, slots=True)
class Received:
    """A verified callback: the events in it and the acknowledgement to send once stored."""

    events: tuple[Event, ...] = ()
    ack: Reply = field(default_factory=Reply)
    #: What the callback was, for counting (``text``, ``event.enter_chat``, ...).
    label: str = "message"


class RejectedRequest(Exception):
    """A callback that must not be processed; answered with ``status`` and ``reason``.

    Family tree::

        RejectedRequest
        ├── BadSignature      401  signature (or receive id) does not match
        ├── StaleRequest      401  timestamp too far from now (replay protection)
        ├── MalformedRequest  400  missing fields, bad JSON / XML / base64
        └── NotSupported      405  a method this connection kind does not answer
    """

    status = 400
    reason = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadSignature(RejectedRequest):
    status = 401
    reason = "signature"


class StaleRequest(RejectedRequest):
    status = 401
    reason = "stale"


class MalformedRequest(RejectedRequest):
    status = 400
    reason = "malformed"


class NotSupported(RejectedRequest):
    status = 405
    reason = "method"


class Platform(Protocol):
    """One inbound connection (one ``[[bots]]`` entry)."""

    bot_id: str
    kind: str
    platform: PlatformName

    def verify_url(self, request: InboundRequest) -> Reply:
        """Answer the console's URL check (GET).

        Raises:
            RejectedRequest: the check is not signed by this bot's secrets.
        """
        ...

    def receive(self, request: InboundRequest) -> Received:
        """Verify, decrypt and normalise one callback (POST).

        Raises:
            RejectedRequest: it fails verification or cannot be parsed; nothing is stored.
        """
        ...


def query_field(request: InboundRequest, name: str) -> str:
    """A required query parameter.

    Raises:
        MalformedRequest: it is missing.
    """
    value = request.query.get(name)
    if not value:
        raise MalformedRequest(f"query parameter {name!r} is missing")
    return value


def load_json(raw: bytes | str, what: str) -> dict[str, Any]:
    """Parse a JSON object.

    Raises:
        MalformedRequest: it is not a JSON object.
    """
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequest(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} is not a JSON object")
    return value
