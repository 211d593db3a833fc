"""DingTalk event subscription (事件订阅): AES-encrypted group membership callbacks.

DingTalk POSTs ``{"encrypt": ...}`` with query ``signature`` (or ``msg_signature``),
``timestamp`` (or ``timeStamp``) and ``nonce``; the envelope is WeCom's WXBizMsgCrypt
with the appKey as receive id. The console's URL check is itself such a POST, carrying
``{"EventType": "check_url"}``. Every answer, check or event, is the encrypted string
``success`` as JSON ``{msg_signature, timeStamp, nonce, encrypt}``; anything else and
DingTalk keeps re-sending.

Payloads come in two casings: legacy (``ChatId``, ``UserId``, ``Operator``,
``TimeStamp``) and the newer console's camelCase beside ``EventType``
(``chatId``, ``openConversationId``, ``userId``, ``operator``, ``timeStamp``,
``eventId``). The group is keyed by ``openConversationId`` when present (the id robot
messages carry as ``conversationId``), else by ``ChatId``.

Docs: https://open.dingtalk.com/document/orgapp/configure-event-subcription (配置事件订阅),
https://open.dingtalk.com/document/orgapp/group-member-change-event (群会话事件).
"""

from __future__ import annotations

import hashlib
import json
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
    Person,
    PlatformName,
    UserId,
)
from bot.platforms.base import (
    Clock,
    InboundRequest,
    MalformedRequest,
    NotSupported,
    Received,
    Reply,
    load_json,
)
from bot.platforms.wxcrypto import MessageCrypto
from config.settings import DingtalkEventsSettings

log = logging.getLogger(__name__)

_MEMBERSHIP: dict[str, MembershipChange] = {
    "chat_add_member": "join",
    "chat_quit": "leave",
    # Removed by the owner or an admin: counted as `removed`, never as a leave.
    "chat_remove_member": "removed",
}
_GROUP: dict[str, GroupChange] = {
    "chat_update_title": "renamed",
    "chat_disband": "disbanded",
    "chat_disband_microapp": "disbanded",
}
#: Known events qunpulse has no use for; accepted quietly.
_IGNORED = {"chat_update_owner", "chat_update_admin"}


def _first(query: dict[str, str] | Any, *names: str) -> str:
    for name in names:
        value = query.get(name)
        if value:
            return str(value)
    raise MalformedRequest(f"query parameter {names[0]!r} is missing")


class DingtalkEvents:
    """One ``kind = "dingtalk_events"`` subscription."""

    kind = "dingtalk_events"
    platform: PlatformName = "dingtalk"

    def __init__(self, settings: DingtalkEventsSettings, clock: Clock) -> None:
        self.bot_id = settings.id
        self._crypto = MessageCrypto(
            settings.token.get_secret_value(), settings.aes_key.get_secret_value(), settings.app_key
        )
        self._clock = clock
        self._unknown_logged: set[str] = set()

    def verify_url(self, request: InboundRequest) -> Reply:
        raise NotSupported(
            "DingTalk checks an event subscription URL with a POST (check_url), not a GET"
        )

    def receive(self, request: InboundRequest) -> Received:
        envelope = load_json(request.body, "body")
        encrypt = envelope.get("encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise MalformedRequest('body has no "encrypt" field')
        plaintext = self._crypto.open(
            _first(request.query, "msg_signature", "signature"),
            _first(request.query, "timeStamp", "timestamp"),
            _first(request.query, "nonce"),
            encrypt,
        )
        payload = load_json(plaintext, "decrypted event")
        event_type = str(payload.get("EventType") or payload.get("eventType") or "")
        events = parse_event(
            event_type,
            payload,
            bot_id=self.bot_id,
            now=self._clock(),
            unknown_logged=self._unknown_logged,
        )
        label = (
            event_type
            if event_type in {*_MEMBERSHIP, *_GROUP, *_IGNORED, "check_url"}
            else ("unknown")
        )
        return Received(events, ack=self._success(), label=label)

    def _success(self) -> Reply:
        stamp = str(int(self._clock().timestamp() * 1000))
        encrypt, signed, timestamp, nonce = self._crypto.seal("success", timestamp=stamp)
        body = {"msg_signature": signed, "timeStamp": timestamp, "nonce": nonce, "encrypt": encrypt}
        return Reply.json(json.dumps(body).encode())


def parse_event(
    event_type: str,
    payload: dict[str, Any],
    *,
    bot_id: str,
    now: datetime,
    unknown_logged: set[str],
) -> tuple[Event, ...]:
    """Normalise one decrypted DingTalk event (HTTP subscription or Stream EVENT frame).

    Raises:
        MalformedRequest: a membership event names no group or no user.
    """
    if event_type == "check_url" or event_type in _IGNORED:
        return ()
    if event_type not in _MEMBERSHIP and event_type not in _GROUP:
        if event_type not in unknown_logged:
            unknown_logged.add(event_type)
            log.warning(
                "dingtalk_events %s: accepted an event of unknown type %r",
                bot_id,
                event_type,
            )
        return ()
    chat_id = _field(payload, "openConversationId") or _field(payload, "ChatId", "chatId")
    if not chat_id:
        raise MalformedRequest(f"{event_type} event has no ChatId / openConversationId")
    occurred = _time_of(payload, now)
    operator = _field(payload, "Operator", "operator")
    event_id = _field(payload, "eventId", "EventId") or _digest(event_type, payload)
    if event_type in _GROUP:
        title = _field(payload, "Title", "title")
        return (
            GroupEvent(
                platform="dingtalk",
                bot_id=bot_id,
                event_id=f"{event_id}:{event_type}",
                chat=Chat(ChatId(chat_id), "group", title or None),
                change=_GROUP[event_type],
                occurred_at=occurred,
                operator=UserId(operator) if operator else None,
            ),
        )
    users = _users(payload)
    if not users:
        raise MalformedRequest(f"{event_type} event names no UserId")
    return (
        MembershipEvent(
            platform="dingtalk",
            bot_id=bot_id,
            event_id=f"{event_id}:{event_type}",
            chat=Chat(ChatId(chat_id), "group"),
            change=_MEMBERSHIP[event_type],
            members=tuple(Person(UserId(user)) for user in users),
            occurred_at=occurred,
            operator=UserId(operator) if operator else None,
        ),
    )


def _time_of(payload: dict[str, Any], now: datetime) -> datetime:
    for name in ("TimeStamp", "timeStamp", "EventTime", "eventTime"):
        value = payload.get(name)
        try:
            millis = int(value) if value is not None else None
        except (TypeError, ValueError):
            continue
        if millis:
            return datetime.fromtimestamp(millis / 1000, UTC)
    return now


def _field(payload: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, str | int) and str(value):
            return str(value)
    return None


def _users(payload: dict[str, Any]) -> list[str]:
    for name in ("UserId", "userId"):
        value = payload.get(name)
        if isinstance(value, list):
            return [str(v) for v in value if v]
        if isinstance(value, str) and value:
            # Some payloads send a single id or a comma list instead of an array.
            return [part for part in value.split(",") if part]
    return []


def _digest(event_type: str, payload: dict[str, Any]) -> str:
    """A stable id for a legacy event without ``eventId``: same payload, same id."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{event_type}\n{canonical}".encode()).hexdigest()[:40]
