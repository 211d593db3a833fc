"""DingTalk enterprise robot, HTTP mode: JSON callbacks carrying @-mentions of the robot.

Each callback has headers ``timestamp`` (ms) and ``sign`` =
``base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret))``; a timestamp more than
an hour from now is refused. The body names the conversation (``conversationId``,
``conversationType`` "2" for groups), the sender (``senderStaffId``, else ``senderId``;
``senderNick``), ``msgId`` and ``createAt`` (ms), and a ``sessionWebhook`` to reply to.

Docs: https://open.dingtalk.com/document/orgapp/receive-message (接收消息),
https://open.dingtalk.com/document/orgapp/enterprise-created-chatbot (机器人安全设置).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.events import Chat, ChatId, MessageEvent, Person, PlatformName, ReplyRoute, UserId
from bot.platforms.base import (
    BadSignature,
    Clock,
    InboundRequest,
    MalformedRequest,
    NotSupported,
    Received,
    Reply,
    StaleRequest,
    load_json,
)
from config.settings import DingtalkRobotSettings

log = logging.getLogger(__name__)


def robot_sign(timestamp_ms: str, secret: str) -> str:
    """The ``sign`` of a DingTalk robot callback (and of a signed custom-robot webhook)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class DingtalkRobot:
    """One ``kind = "dingtalk_robot"`` bot in ``mode = "http"``."""

    kind = "dingtalk_robot"
    platform: PlatformName = "dingtalk"

    def __init__(self, settings: DingtalkRobotSettings, clock: Clock, max_skew: timedelta) -> None:
        self.bot_id = settings.id
        self._secret = settings.app_secret.get_secret_value()
        self._clock = clock
        self._max_skew = max_skew
        self._unknown_logged: set[str] = set()

    def verify_url(self, request: InboundRequest) -> Reply:
        raise NotSupported("a DingTalk robot has no URL check; DingTalk only POSTs here")

    def receive(self, request: InboundRequest) -> Received:
        self._verify(request)
        return self._parse(load_json(request.body, "body"))

    def _verify(self, request: InboundRequest) -> None:
        timestamp = request.headers.get("timestamp", "")
        given = request.headers.get("sign", "")
        if not timestamp or not given:
            raise BadSignature("headers 'timestamp' and 'sign' are required")
        try:
            sent = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
        except (ValueError, OverflowError, OSError):
            raise MalformedRequest("header 'timestamp' is not milliseconds") from None
        if abs(self._clock() - sent) > self._max_skew:
            raise StaleRequest("header 'timestamp' is more than an hour from now")
        expected = robot_sign(timestamp, self._secret)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise BadSignature("sign does not match")

    def _parse(self, body: dict[str, Any]) -> Received:
        msgtype = str(body.get("msgtype", ""))
        if msgtype not in ("text", "picture", "richText", "audio", "video", "file"):
            if msgtype not in self._unknown_logged:
                self._unknown_logged.add(msgtype)
                log.warning(
                    "dingtalk_robot %s: accepted a callback of unknown msgtype %r",
                    self.bot_id,
                    msgtype,
                )
            return Received(label="unknown")
        return Received((message_event(body, self.bot_id, self._clock()),), label=msgtype)


def message_event(body: dict[str, Any], bot_id: str, now: datetime) -> MessageEvent:
    """Normalise a robot message body (HTTP callback or Stream frame data).

    Raises:
        MalformedRequest: a required field is missing.
    """
    msg_id = body.get("msgId")
    conversation = body.get("conversationId")
    sender_id = body.get("senderStaffId") or body.get("senderId")
    if not msg_id or not conversation or not sender_id:
        raise MalformedRequest("body needs msgId, conversationId and senderStaffId/senderId")
    msgtype = str(body.get("msgtype", "text"))
    created = body.get("createAt")
    sent_at = datetime.fromtimestamp(int(created) / 1000, UTC) if isinstance(created, int) else now
    is_group = str(body.get("conversationType")) == "2"
    webhook = body.get("sessionWebhook")
    expires = body.get("sessionWebhookExpiredTime")
    return MessageEvent(
        platform="dingtalk",
        bot_id=bot_id,
        message_id=str(msg_id),
        chat=Chat(
            ChatId(str(conversation)),
            "group" if is_group else "private",
            body.get("conversationTitle") if is_group else None,
        ),
        sender=Person(
            UserId(str(sender_id)),
            body.get("senderNick"),
            is_admin=bool(body.get("isAdmin")),
        ),
        msg_type=msgtype,
        text=_text_of(body, msgtype),
        sent_at=sent_at,
        source="at_mentions_only",
        reply=ReplyRoute(
            webhook,
            datetime.fromtimestamp(int(expires) / 1000, UTC) if isinstance(expires, int) else None,
        )
        if isinstance(webhook, str) and webhook
        else None,
    )


def _text_of(body: dict[str, Any], msgtype: str) -> str | None:
    if msgtype == "text":
        content = (body.get("text") or {}).get("content")
        return content.strip() if isinstance(content, str) else None
    if msgtype == "richText":
        parts = (body.get("content") or {}).get("richText") or []
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return " ".join(texts).strip() or None
    return None
