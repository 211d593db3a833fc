"""WeCom self-built app (自建应用): XML callbacks with membership events and private messages.

URL check: GET ``msg_signature, timestamp, nonce, echostr`` answered with the bare
plaintext. Callbacks: POST ``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` with the same
query; the receive id inside is the CorpID. The answer is ``success`` (WeCom retries
three times on anything slow or non-200).

What it delivers:
- private messages to the app (``MsgType`` text, image, voice, ...; ``MsgId`` dedupes);
- ``change_external_chat`` for customer groups (客户群变更): ``ChangeType`` create /
  update / dismiss; ``UpdateDetail`` add_member (``JoinScene``), del_member
  (``QuitScene`` 0 = left, 1 = removed by the owner or an admin), change_name, ...;
  ``MemChangeList`` as ``<Item>`` children or (older payloads) a comma list;
  ``LastMemVer`` / ``CurMemVer`` to detect lost events;
- ``msgaudit_notify``: new session-archive data is ready to pull.

Docs: https://developer.work.weixin.qq.com/document/path/92130 (客户群变更事件),
https://developer.work.weixin.qq.com/document/path/90240 (接收消息与事件),
https://developer.work.weixin.qq.com/document/path/91774 (会话内容存档 事件通知).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from bot.events import (
    Chat,
    ChatId,
    Event,
    GroupChange,
    GroupEvent,
    MembershipChange,
    MembershipEvent,
    MemberVersion,
    MessageEvent,
    NoticeEvent,
    Person,
    PlatformName,
    UserId,
)
from bot.platforms.base import (
    Clock,
    InboundRequest,
    MalformedRequest,
    Received,
    Reply,
    query_field,
)
from bot.platforms.wxcrypto import MessageCrypto, parse_xml
from config.settings import WecomAppSettings

log = logging.getLogger(__name__)

_MESSAGE_TYPES = {"text", "image", "voice", "video", "location", "link", "file"}
#: ``change_external_chat`` update details qunpulse has no use for; accepted quietly.
_IGNORED_DETAILS = {"change_owner", "change_notice"}


class WecomApp:
    """One ``kind = "wecom_app"`` self-built app."""

    kind = "wecom_app"
    platform: PlatformName = "wecom"

    def __init__(self, settings: WecomAppSettings, clock: Clock) -> None:
        self.bot_id = settings.id
        self._crypto = MessageCrypto(
            settings.token.get_secret_value(),
            settings.encoding_aes_key.get_secret_value(),
            settings.corp_id,
        )
        self._clock = clock
        self._unknown_logged: set[str] = set()

    def verify_url(self, request: InboundRequest) -> Reply:
        plaintext = self._crypto.open(
            query_field(request, "msg_signature"),
            query_field(request, "timestamp"),
            query_field(request, "nonce"),
            query_field(request, "echostr"),
        )
        return Reply(200, plaintext.encode())

    def receive(self, request: InboundRequest) -> Received:
        envelope = parse_xml(request.body, "body")
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise MalformedRequest("body has no <Encrypt>")
        plaintext = self._crypto.open(
            query_field(request, "msg_signature"),
            query_field(request, "timestamp"),
            query_field(request, "nonce"),
            encrypt,
        )
        events, label = self._parse(parse_xml(plaintext, "decrypted message"))
        return Received(events, ack=Reply(200, b"success"), label=label)

    def _parse(self, xml: dict[str, Any]) -> tuple[tuple[Event, ...], str]:
        msg_type = _text(xml, "MsgType")
        if msg_type in _MESSAGE_TYPES:
            return (self._private_message(xml, msg_type),), msg_type
        if msg_type == "event":
            event = _text(xml, "Event")
            if event == "change_external_chat":
                return self._external_chat(xml)
            if event == "msgaudit_notify":
                return (self._archive_notice(xml),), "event.msgaudit_notify"
            return self._unknown(f"event.{event}")
        return self._unknown(msg_type)

    def _unknown(self, label: str) -> tuple[tuple[Event, ...], str]:
        if label not in self._unknown_logged:
            self._unknown_logged.add(label)
            log.warning("wecom_app %s: accepted a callback of unknown type %r", self.bot_id, label)
        return (), "unknown"

    def _created(self, xml: dict[str, Any]) -> datetime:
        stamp = _text(xml, "CreateTime")
        try:
            return datetime.fromtimestamp(int(stamp), UTC)
        except (ValueError, OverflowError, OSError):
            return self._clock()

    def _private_message(self, xml: dict[str, Any], msg_type: str) -> MessageEvent:
        msg_id = _text(xml, "MsgId")
        sender = _text(xml, "FromUserName")
        if not msg_id or not sender:
            raise MalformedRequest("message needs <MsgId> and <FromUserName>")
        content = _text(xml, "Content")
        return MessageEvent(
            platform="wecom",
            bot_id=self.bot_id,
            message_id=msg_id,
            chat=Chat(ChatId(sender), "private"),
            sender=Person(UserId(sender)),
            msg_type=msg_type,
            text=content.strip() if msg_type == "text" and content else None,
            sent_at=self._created(xml),
            source="full",
        )

    def _archive_notice(self, xml: dict[str, Any]) -> NoticeEvent:
        stamp = _text(xml, "CreateTime")
        return NoticeEvent(
            platform="wecom",
            bot_id=self.bot_id,
            event_id=f"msgaudit_notify:{_text(xml, 'ToUserName')}:{stamp}",
            kind="archive_ready",
            occurred_at=self._created(xml),
        )

    def _external_chat(self, xml: dict[str, Any]) -> tuple[tuple[Event, ...], str]:
        chat_id = _text(xml, "ChatId")
        if not chat_id:
            raise MalformedRequest("change_external_chat without <ChatId>")
        change_type = _text(xml, "ChangeType")
        detail = _text(xml, "UpdateDetail")
        label = f"event.change_external_chat.{detail or change_type}"
        chat = Chat(ChatId(chat_id), "group")
        occurred = self._created(xml)
        parts = (chat_id, change_type, detail, _text(xml, "CreateTime"), _text(xml, "CurMemVer"))
        base_id = "wecom_chat:" + ":".join(parts)
        if change_type in ("create", "dismiss") or detail == "change_name":
            group_change: GroupChange = (
                "created"
                if change_type == "create"
                else "disbanded"
                if change_type == "dismiss"
                else "renamed"
            )
            event = GroupEvent(
                platform="wecom",
                bot_id=self.bot_id,
                event_id=base_id,
                chat=chat,
                change=group_change,
                occurred_at=occurred,
            )
            return (event,), label
        if change_type != "update" or detail in _IGNORED_DETAILS:
            if detail in _IGNORED_DETAILS:
                return (), label
            return self._unknown(label)
        if detail not in ("add_member", "del_member"):
            return self._unknown(label)
        members = _member_list(xml.get("MemChangeList"))
        if not members:
            raise MalformedRequest(f"{detail} without <MemChangeList>")
        change: MembershipChange
        if detail == "add_member":
            change = "join"
        else:
            # QuitScene 1: removed by the owner or an admin (清理), counted as `removed`.
            change = "removed" if _text(xml, "QuitScene") == "1" else "leave"
        last, current = _text(xml, "LastMemVer"), _text(xml, "CurMemVer")
        digest = hashlib.sha256(",".join(sorted(members)).encode()).hexdigest()[:12]
        membership = MembershipEvent(
            platform="wecom",
            bot_id=self.bot_id,
            event_id=f"{base_id}:{digest}",
            chat=chat,
            change=change,
            members=tuple(Person(UserId(member)) for member in members),
            occurred_at=occurred,
            member_version=MemberVersion(last, current) if last and current else None,
        )
        return (membership,), label


def _text(xml: dict[str, Any], name: str) -> str:
    value = xml.get(name)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value)
    return ""


def _member_list(value: object) -> list[str]:
    """Both forms of ``MemChangeList``: ``<Item>`` children, or a comma-separated list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, dict):
        items = value.get("Item")
        if isinstance(items, str):
            return [items.strip()] if items.strip() else []
        if isinstance(items, list):
            return [item.strip() for item in items if isinstance(item, str) and item.strip()]
    return []
