"""Feishu / Lark app bot: event schema 2.0 over HTTP, every group message the bot may see.

Feishu POSTs JSON. With an Encrypt Key set in the console, the body is
``{"encrypt": base64(iv16 + AES-256-CBC(PKCS#7))}`` under the key SHA-256(encrypt_key),
and event requests carry ``X-Lark-Signature`` = sha256 hex of
``X-Lark-Request-Timestamp + X-Lark-Request-Nonce + encrypt_key + raw body``. The URL
check is a POST ``{"type": "url_verification", "challenge", "token"}`` (encrypted too when
a key is set), answered with ``{"challenge": ...}``; like the official SDK we check its
Verification Token, not a signature (Feishu does not sign it).

Events: ``im.message.receive_v1`` (``message.content`` is a JSON *string*; mentions
appear in the text as ``@_user_1`` keys listed in ``message.mentions``),
``im.chat.member.user.added_v1`` / ``deleted_v1``. Feishu groups are ``source = "full"``:
with scope ``im:message.group_msg`` the bot sees every message.

Docs: https://open.feishu.cn/document/server-docs/event-subscription-guide/event-subscription-configure-/request-url-configuration-case
(加密与验签), https://open.feishu.cn/document/server-docs/im-v1/message/events/receive,
https://open.feishu.cn/document/server-docs/group/chat-member/event/added-2.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.events import (
    Chat,
    ChatId,
    Event,
    MembershipChange,
    MembershipEvent,
    MessageEvent,
    Person,
    PlatformName,
    UserId,
)
from bot.platforms.base import (
    BadSignature,
    Clock,
    InboundRequest,
    MalformedRequest,
    NotSupported,
    Received,
    Reply,
    load_json,
)
from config.settings import FeishuSettings

log = logging.getLogger(__name__)

_MESSAGE = "im.message.receive_v1"
_ADDED = "im.chat.member.user.added_v1"
_DELETED = "im.chat.member.user.deleted_v1"


def feishu_decrypt(encrypt: str, encrypt_key: str) -> str:
    """Decrypt a Feishu ``encrypt`` blob.

    Raises:
        MalformedRequest: it is not valid base64 / AES / PKCS#7 / UTF-8.
    """
    key = hashlib.sha256(encrypt_key.encode()).digest()
    try:
        raw = base64.b64decode(encrypt, validate=True)
        if len(raw) < 32 or len(raw) % 16:
            raise ValueError("bad length")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
        padded = decryptor.update(raw[16:]) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MalformedRequest("cannot decrypt the body (check encrypt_key)") from None


def feishu_signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature``: sha256 hex over timestamp, nonce, key and the raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


class Feishu:
    """One ``kind = "feishu"`` bot."""

    kind = "feishu"
    platform: PlatformName = "feishu"

    def __init__(self, settings: FeishuSettings, clock: Clock) -> None:
        self.bot_id = settings.id
        self._token = (
            settings.verification_token.get_secret_value() if settings.verification_token else None
        )
        self._encrypt_key = (
            settings.encrypt_key.get_secret_value() if settings.encrypt_key else None
        )
        self._clock = clock
        self._unknown_logged: set[str] = set()

    def verify_url(self, request: InboundRequest) -> Reply:
        raise NotSupported("Feishu checks the request URL with a POST (url_verification)")

    def receive(self, request: InboundRequest) -> Received:
        body = load_json(request.body, "body")
        encrypted = "encrypt" in body
        if encrypted:
            if self._encrypt_key is None:
                raise MalformedRequest(
                    "the body is encrypted but encrypt_key is not set for this bot "
                    "(copy Encrypt Key from the Feishu console into bots[].encrypt_key)"
                )
            body = load_json(feishu_decrypt(str(body["encrypt"]), self._encrypt_key), "body")
        elif self._encrypt_key is not None and body.get("type") != "url_verification":
            raise BadSignature("encrypt_key is set but the body is not encrypted")
        if body.get("type") == "url_verification":
            self._check_token(body.get("token"))
            challenge = body.get("challenge")
            if not isinstance(challenge, str):
                raise MalformedRequest("url_verification without a challenge")
            return Received(
                ack=Reply.json(json.dumps({"challenge": challenge}).encode()),
                label="url_verification",
            )
        if self._encrypt_key is not None:
            _check_signature(request, self._encrypt_key)
        header = body.get("header")
        if body.get("type") == "event_callback" and not isinstance(header, dict):
            # Schema 1.0: verified by its token, answered 200 so Feishu stops resending,
            # and not stored (the console can switch the app to schema 2.0).
            self._check_token(body.get("token"))
            if "schema 1.0" not in self._unknown_logged:
                self._unknown_logged.add("schema 1.0")
                log.warning(
                    "feishu %s: got a schema 1.0 event; set the app to event schema 2.0",
                    self.bot_id,
                )
            return Received(label="unknown")
        if body.get("schema") != "2.0" or not isinstance(header, dict):
            raise MalformedRequest("not an event of schema 2.0 (subscribe with schema 2.0)")
        self._check_token(header.get("token"))
        event_type = str(header.get("event_type", ""))
        event = body.get("event")
        if not isinstance(event, dict):
            raise MalformedRequest('event has no "event" object')
        event_id = str(header.get("event_id") or "")
        if not event_id:
            raise MalformedRequest("event header has no event_id")
        events = self._parse(event_type, event_id, header, event)
        label = event_type if event_type in (_MESSAGE, _ADDED, _DELETED) else "unknown"
        return Received(events, label=label)

    def _check_token(self, given: object) -> None:
        if self._token is None:
            return
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), self._token.encode()
        ):
            raise BadSignature("verification token does not match")

    def _parse(
        self, event_type: str, event_id: str, header: dict[str, Any], event: dict[str, Any]
    ) -> tuple[Event, ...]:
        if event_type == _MESSAGE:
            return (self._message(event),)
        if event_type in (_ADDED, _DELETED):
            membership = self._membership(event_type, event_id, header, event)
            return (membership,) if membership.members else ()
        if event_type not in self._unknown_logged:
            self._unknown_logged.add(event_type)
            log.warning("feishu %s: accepted an event of unknown type %r", self.bot_id, event_type)
        return ()

    def _message(self, event: dict[str, Any]) -> MessageEvent:
        message = event.get("message")
        sender = event.get("sender")
        if not isinstance(message, dict) or not isinstance(sender, dict):
            raise MalformedRequest("im.message.receive_v1 without message or sender")
        message_id = message.get("message_id")
        chat_id = message.get("chat_id")
        sender_id = _user_id(sender.get("sender_id"))
        if not message_id or not chat_id or not sender_id:
            raise MalformedRequest("message needs message_id, chat_id and sender.sender_id")
        msg_type = str(message.get("message_type") or "text")
        mentions = [m for m in message.get("mentions") or [] if isinstance(m, dict)]
        is_group = message.get("chat_type") == "group"
        return MessageEvent(
            platform="feishu",
            bot_id=self.bot_id,
            message_id=str(message_id),
            chat=Chat(ChatId(str(chat_id)), "group" if is_group else "private"),
            sender=Person(UserId(sender_id), is_bot=sender.get("sender_type") == "app"),
            msg_type=msg_type,
            text=_text_of(message.get("content"), msg_type, mentions),
            sent_at=_millis(message.get("create_time")) or self._clock(),
            source="full",
            # The bot's own open_id is not known here; any mention in a group may address it.
            mentions_bot=not is_group or bool(mentions),
        )

    def _membership(
        self, event_type: str, event_id: str, header: dict[str, Any], event: dict[str, Any]
    ) -> MembershipEvent:
        chat_id = event.get("chat_id")
        if not chat_id:
            raise MalformedRequest(f"{event_type} without chat_id")
        operator = _user_id(event.get("operator_id"))
        people: list[Person] = []
        removed_by_other = False
        for user in event.get("users") or []:
            if not isinstance(user, dict):
                continue
            user_id = _user_id(user.get("user_id"))
            if user_id:
                people.append(Person(UserId(user_id), user.get("name") or None))
                removed_by_other = removed_by_other or (
                    operator is not None and operator != user_id
                )
        # deleted_v1 covers both leaving and being removed: when someone else is the
        # operator, the user was removed by an owner or admin.
        change: MembershipChange = (
            "join" if event_type == _ADDED else ("removed" if removed_by_other else "leave")
        )
        name = event.get("name")
        return MembershipEvent(
            platform="feishu",
            bot_id=self.bot_id,
            event_id=event_id,
            chat=Chat(ChatId(str(chat_id)), "group", name if isinstance(name, str) else None),
            change=change,
            members=tuple(people),
            occurred_at=_millis(header.get("create_time")) or self._clock(),
            operator=UserId(operator) if operator else None,
            source="full",  # the bot sees every message of a Feishu group it is in
        )


def _check_signature(request: InboundRequest, encrypt_key: str) -> None:
    timestamp = request.headers.get("x-lark-request-timestamp", "")
    nonce = request.headers.get("x-lark-request-nonce", "")
    given = request.headers.get("x-lark-signature", "")
    if not timestamp or not nonce or not given:
        raise BadSignature("X-Lark-Signature, -Request-Timestamp and -Request-Nonce needed")
    expected = feishu_signature(timestamp, nonce, encrypt_key, request.body)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise BadSignature("X-Lark-Signature does not match")


def _user_id(ids: object) -> str | None:
    """Prefer ``user_id`` (stable in the tenant), else ``open_id``, else ``union_id``."""
    if not isinstance(ids, dict):
        return None
    for name in ("user_id", "open_id", "union_id"):
        value = ids.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _millis(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text_of(content: object, msg_type: str, mentions: list[dict[str, Any]]) -> str | None:
    if not isinstance(content, str):
        return None
    try:
        parsed = json.loads(content)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if msg_type == "text":
        text = parsed.get("text")
    elif msg_type == "post":
        text = _post_text(parsed)
    else:
        return None
    if not isinstance(text, str):
        return None
    for mention in mentions:
        key = mention.get("key")
        if isinstance(key, str) and key:
            text = text.replace(key, "")
    return " ".join(text.split()) or None


def _post_text(parsed: dict[str, Any]) -> str | None:
    """The plain text of a rich-text ``post`` (any locale wrapper)."""
    body = parsed if "content" in parsed else next(iter(parsed.values()), None)
    if not isinstance(body, dict):
        return None
    parts: list[str] = []
    title = body.get("title")
    if isinstance(title, str) and title:
        parts.append(title)
    for line in body.get("content") or []:
        for item in line if isinstance(line, list) else []:
            if isinstance(item, dict) and item.get("tag") == "text":
                parts.append(str(item.get("text", "")))
            elif isinstance(item, dict) and item.get("tag") == "at":
                parts.append(str(item.get("user_id", "")))
    return " ".join(parts)
