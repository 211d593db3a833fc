"""Feishu / Lark custom bot webhook (自定义机器人) with its signature (签名校验).

Body fields ``timestamp`` (seconds) and ``sign`` = base64(HMAC-SHA256(key=timestamp +
"\\n" + secret, msg="")): the key is the string to sign and the message is empty.
https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import httpx

from bot.senders.base import (
    OutboundMessage,
    PermanentSendError,
    Target,
    TransientSendError,
    post_json,
)

#: 11232: "frequency limited" (UNCONFIRMED number; treated as retry-later).
RATE_LIMITED = frozenset({11232})


def sign(timestamp_s: int, secret: str) -> str:
    string_to_sign = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(string_to_sign, b"", hashlib.sha256).digest()).decode()


class FeishuWebhookSender:
    """Posts a markdown card or text through a Feishu custom bot."""

    def __init__(self, client: httpx.AsyncClient, wall_s: Callable[[], int] | None = None) -> None:
        self._client = client
        self._wall_s = wall_s or (lambda: int(time.time()))

    async def send(self, target: Target, message: OutboundMessage) -> None:
        label = f"Feishu bot {target.config_key}"
        document = payload(message)
        if target.secret:
            timestamp = self._wall_s()
            document = {"timestamp": str(timestamp), "sign": sign(timestamp, target.secret)} | (
                document
            )
        _, body = await post_json(self._client, target.url, document, label=label)
        code = body.get("code", body.get("StatusCode", 0))
        if code == 0:
            return
        reason = f"{label}: code {code}: {body.get('msg', body.get('StatusMessage', ''))}"
        if code in RATE_LIMITED:
            raise TransientSendError(reason)
        raise PermanentSendError(reason)


def payload(message: OutboundMessage) -> dict[str, object]:
    if message.msg_type == "text":
        return {"msg_type": "text", "content": {"text": message.body}}
    if message.msg_type == "image":
        # A webhook cannot upload; images need the message API's image_key.
        raise PermanentSendError("Feishu custom bots take no image upload")
    return {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": message.title}},
            "elements": [{"tag": "markdown", "content": message.body}],
        },
    }
