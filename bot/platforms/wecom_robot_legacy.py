"""The older WeCom group-robot callback format, accepted as a secondary format on ``wecom_aibot``.

Before the AI bot (智能机器人), a group robot with a receive URL got callbacks in the
same WXBizMsgCrypt envelope (receive id ``""``; envelope ``<xml><Encrypt/></xml>`` or
``{"encrypt"}``) whose plaintext is XML, or JSON with the same names: ``WebhookUrl``,
``MsgId``, ``ChatId``, ``ChatType`` (``single`` / ``group``), ``From{UserId, Name,
Alias}``, ``MsgType`` and ``Text.Content`` (starting with ``@RobotName``). WeCom documents
it as an internal beta (UNCONFIRMED beyond these fields), so anything unknown is
accepted and logged once rather than refused.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from bot.events import Chat, ChatId, MessageEvent, Person, ReplyRoute, UserId
from bot.platforms.base import MalformedRequest, Received

log = logging.getLogger(__name__)

_LEADING_MENTION = re.compile(r"^\s*@\S+\s*")
_MESSAGE_TYPES = {"text", "image", "mixed", "voice", "file", "attachment"}


def is_legacy(payload: dict[str, Any]) -> bool:
    """Whether a decrypted JSON payload is in the legacy format (capitalised names)."""
    return "MsgId" in payload or "MsgType" in payload


def _get(mapping: object, name: str) -> Any:
    if not isinstance(mapping, dict):
        return None
    return mapping.get(name)


def parse_legacy(
    payload: dict[str, Any], bot_id: str, now: datetime, unknown_logged: set[str]
) -> Received:
    """Normalise one legacy robot callback (parsed from XML or JSON).

    Raises:
        MalformedRequest: a message lacks ``MsgId``, ``From.UserId`` or a group ``ChatId``.
    """
    msg_type = str(payload.get("MsgType") or "")
    if msg_type not in _MESSAGE_TYPES:
        label = f"legacy.{msg_type or 'unknown'}"
        if label not in unknown_logged:
            unknown_logged.add(label)
            log.warning("wecom_aibot %s: accepted a legacy callback of type %r", bot_id, msg_type)
        return Received(label="unknown" if msg_type != "event" else "legacy.event")
    msg_id = payload.get("MsgId")
    sender = payload.get("From")
    user_id = _get(sender, "UserId")
    if not msg_id or not user_id:
        raise MalformedRequest("legacy robot callback needs MsgId and From.UserId")
    is_group = str(payload.get("ChatType") or "") == "group"
    chat_id = payload.get("ChatId") if is_group else user_id
    if not chat_id:
        raise MalformedRequest("legacy robot group callback has no ChatId")
    content = _get(payload.get("Text"), "Content")
    text = (
        _LEADING_MENTION.sub("", content, count=1).strip()
        if msg_type == "text" and isinstance(content, str)
        else None
    )
    webhook = payload.get("WebhookUrl")
    name = _get(sender, "Name")
    event = MessageEvent(
        platform="wecom",
        bot_id=bot_id,
        message_id=str(msg_id),
        chat=Chat(ChatId(str(chat_id)), "group" if is_group else "private"),
        sender=Person(UserId(str(user_id)), str(name) if name else None),
        msg_type=msg_type,
        text=text,
        sent_at=now,
        source="at_mentions_only",
        reply=ReplyRoute(webhook) if isinstance(webhook, str) and webhook else None,
    )
    return Received((event,), label=f"legacy.{msg_type}")
