"""WeCom AI bot (智能机器人): encrypted JSON callbacks carrying @-mentions of the bot.

URL check: GET ``msg_signature, timestamp, nonce, echostr``; answer the bare decrypted
echostr. Callbacks: POST ``{"encrypt": ...}`` with the same query; receive id ``""``.
Decrypted messages carry ``msgid`` (the de-duplication key), ``chatid`` and ``chattype``,
``from.userid``, ``msgtype`` and ``text.content`` (starting with ``@BotName``).

Docs: https://developer.work.weixin.qq.com/document/path/100719 (接收消息),
https://developer.work.weixin.qq.com/document/path/101039 (回调和回复的加解密方案).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.events import Chat, ChatId, MessageEvent, Person, PlatformName, ReplyRoute, UserId
from bot.platforms.base import (
    Clock,
    InboundRequest,
    MalformedRequest,
    Received,
    Reply,
    load_json,
    query_field,
)
from bot.platforms.wecom_robot_legacy import is_legacy, parse_legacy
from bot.platforms.wxcrypto import MessageCrypto, parse_xml
from config.settings import WecomAibotSettings

log = logging.getLogger(__name__)

#: ``@BotName`` at the start of the text (the AI bot is always mentioned in groups).
_LEADING_MENTION = re.compile(r"^\s*@\S+\s*")
#: response_url is single-use and valid for one hour.
_RESPONSE_URL_LIFETIME = timedelta(hours=1)


class WecomAibot:
    """One ``kind = "wecom_aibot"`` bot."""

    kind = "wecom_aibot"
    platform: PlatformName = "wecom"

    def __init__(self, settings: WecomAibotSettings, clock: Clock) -> None:
        self.bot_id = settings.id
        self._crypto = MessageCrypto(
            settings.token.get_secret_value(), settings.encoding_aes_key.get_secret_value(), ""
        )
        self._clock = clock
        self._unknown_logged: set[str] = set()

    def verify_url(self, request: InboundRequest) -> Reply:
        echostr = query_field(request, "echostr")
        plaintext = self._crypto.open(
            query_field(request, "msg_signature"),
            query_field(request, "timestamp"),
            query_field(request, "nonce"),
            echostr,
        )
        return Reply(200, plaintext.encode())

    def receive(self, request: InboundRequest) -> Received:
        # The legacy robot callback may wrap its envelope in XML (<xml><Encrypt/></xml>).
        if request.body.lstrip().startswith(b"<"):
            encrypt = parse_xml(request.body, "body").get("Encrypt")
        else:
            encrypt = load_json(request.body, "body").get("encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise MalformedRequest('body has no "encrypt" field')
        plaintext = self._crypto.open(
            query_field(request, "msg_signature"),
            query_field(request, "timestamp"),
            query_field(request, "nonce"),
            encrypt,
        )
        if plaintext.lstrip().startswith("<"):
            legacy = parse_xml(plaintext, "decrypted message")
            return parse_legacy(legacy, self.bot_id, self._clock(), self._unknown_logged)
        payload = load_json(plaintext, "decrypted message")
        if is_legacy(payload):
            return parse_legacy(payload, self.bot_id, self._clock(), self._unknown_logged)
        return self._parse(payload)

    def _parse(self, payload: dict[str, Any]) -> Received:
        msgtype = str(payload.get("msgtype", ""))
        if msgtype in ("text", "mixed", "image", "voice", "file"):
            return Received((self._message(payload, msgtype),), label=msgtype)
        if msgtype == "event":
            event = payload.get("event") or {}
            eventtype = event.get("eventtype", "unknown") if isinstance(event, dict) else "unknown"
            return Received(label=f"event.{eventtype}")
        if msgtype == "stream":
            # A refresh request for a streamed reply; qunpulse answers in one piece.
            return Received(label="stream")
        if msgtype not in self._unknown_logged:
            self._unknown_logged.add(msgtype)
            log.warning(
                "wecom_aibot %s: accepted a callback of unknown msgtype %r", self.bot_id, msgtype
            )
        return Received(label="unknown")

    def _message(self, payload: dict[str, Any], msgtype: str) -> MessageEvent:
        msgid = payload.get("msgid")
        sender = payload.get("from")
        if not isinstance(msgid, str) or not msgid:
            raise MalformedRequest('decrypted message has no "msgid"')
        if not isinstance(sender, dict) or not sender.get("userid"):
            raise MalformedRequest('decrypted message has no "from.userid"')
        is_group = payload.get("chattype") == "group"
        chat_id = payload.get("chatid") if is_group else sender["userid"]
        if not chat_id:
            raise MalformedRequest('group message has no "chatid"')
        now = self._clock()
        created = payload.get("create_time")
        sent_at = datetime.fromtimestamp(int(created), UTC) if isinstance(created, int) else now
        response_url = payload.get("response_url")
        return MessageEvent(
            platform="wecom",
            bot_id=self.bot_id,
            message_id=msgid,
            chat=Chat(ChatId(str(chat_id)), "group" if is_group else "private"),
            sender=Person(UserId(str(sender["userid"]))),
            msg_type=msgtype,
            text=_text_of(payload, msgtype),
            sent_at=sent_at,
            source="at_mentions_only",
            reply=ReplyRoute(response_url, now + _RESPONSE_URL_LIFETIME)
            if isinstance(response_url, str) and response_url
            else None,
        )


def _text_of(payload: dict[str, Any], msgtype: str) -> str | None:
    if msgtype == "text":
        content = (payload.get("text") or {}).get("content")
        return _LEADING_MENTION.sub("", content, count=1) if isinstance(content, str) else None
    if msgtype == "mixed":
        items = (payload.get("mixed") or {}).get("msg_item") or []
        texts = [
            item["text"]["content"]
            for item in items
            if isinstance(item, dict) and item.get("msgtype") == "text" and "text" in item
        ]
        return _LEADING_MENTION.sub("", " ".join(texts), count=1) if texts else None
    return None
