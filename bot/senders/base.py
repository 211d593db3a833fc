"""The sender protocol, the message and target types, and the error family.

::

    SendError                  one attempt to post did not succeed
    ├── TransientSendError     rate limit, HTTP 429 / 5xx, timeout: try again later
    └── PermanentSendError     bad webhook, bad signature, bad request: never retry
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx

MessageType = Literal["markdown", "text", "image"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a post goes: a robot webhook and its signing secret, or people in private.

    ``config_key`` names the setting the webhook came from, for error messages; the URL
    and the secret never appear in ``repr``. A ``private`` target is an app's message to
    ``recipients`` (user ids): ``url`` is the platform's API base, ``secret`` the app
    secret, ``app_id`` the corp id / app key / app id and ``agent`` the WeCom agentid or
    the DingTalk robotCode.
    """

    platform: str
    config_key: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    channel: Literal["webhook", "private"] = "webhook"
    recipients: tuple[str, ...] = field(default=(), repr=False)
    app_id: str = field(default="", repr=False)
    agent: str = ""

    @property
    def sender_key(self) -> str:
        """Which sender delivers it: the platform's webhook sender or its private one."""
        return self.platform if self.channel == "webhook" else f"{self.platform}:private"

    @property
    def limit_key(self) -> str:
        """What the per-minute limit counts: one robot webhook, or one app."""
        return self.url if self.channel == "webhook" else f"{self.config_key}:private"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One post: ``markdown`` (``title`` + ``body``), ``text``, or ``image`` (PNG bytes)."""

    msg_type: MessageType
    title: str
    body: str
    image: bytes | None = field(default=None, repr=False)


class SendError(Exception):
    """One attempt to post failed; the message is the platform's answer, no secrets."""


class TransientSendError(SendError):
    """Worth retrying later (rate limit, server error, timeout)."""


class PermanentSendError(SendError):
    """Retrying cannot help (robot removed, signature refused, message rejected)."""


class Sender(Protocol):
    """Posts one message to one target, once."""

    async def send(self, target: Target, message: OutboundMessage) -> None:
        """Post ``message``; raise :class:`SendError` subclasses on failure."""
        ...


async def post_json(
    client: httpx.AsyncClient, url: str, payload: object, *, label: str
) -> tuple[int, dict[str, object]]:
    """POST ``payload``; return (HTTP status, JSON object), classifying transport failures.

    Raises:
        TransientSendError: timeout, connection failure, HTTP 429 or 5xx.
        PermanentSendError: any other non-200 status, or an answer that is not JSON.
    """
    try:
        response = await client.post(url, json=payload)
    except httpx.TimeoutException:
        raise TransientSendError(f"{label}: timed out") from None
    except httpx.TransportError as error:
        raise TransientSendError(f"{label}: {type(error).__name__}") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientSendError(f"{label}: HTTP {status}")
    if status != 200:
        raise PermanentSendError(f"{label}: HTTP {status}: {response.text[:200]}")
    try:
        body = response.json()
    except ValueError:
        raise PermanentSendError(f"{label}: HTTP 200 without JSON") from None
    if not isinstance(body, dict):
        raise PermanentSendError(f"{label}: answer is not a JSON object")
    return status, body
