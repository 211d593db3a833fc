"""WeCom group robot webhook (群机器人 消息推送).

``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with JSON; the answer is
HTTP 200 with ``errcode``. https://developer.work.weixin.qq.com/document/path/91770
"""

from __future__ import annotations

import base64
import hashlib

import httpx

from bot.senders.base import (
    OutboundMessage,
    PermanentSendError,
    Target,
    TransientSendError,
    post_json,
)

#: "api freq out of limit" (PLATFORMS.md: UNCONFIRMED for webhooks; any rate-limit is retried).
RATE_LIMITED = frozenset({45009, 45033})
#: 93000 invalid webhook / robot removed; 40058 a field too long (our bug): never retried.
PERMANENT = frozenset({93000, 40058})
#: WeCom asks to retry a busy system with -1.
BUSY = -1


class WecomWebhookSender:
    """Posts markdown, text or image messages through a WeCom group robot."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, target: Target, message: OutboundMessage) -> None:
        label = f"WeCom robot {target.config_key}"
        _, body = await post_json(self._client, target.url, payload(message), label=label)
        code = body.get("errcode", 0)
        if code == 0:
            return
        reason = f"{label}: errcode {code}: {body.get('errmsg', '')}"
        if code in RATE_LIMITED or code == BUSY:
            raise TransientSendError(reason)
        if code == 93000:
            reason += f" (the robot was removed or the URL is wrong: check {target.config_key})"
        raise PermanentSendError(reason)


def payload(message: OutboundMessage) -> dict[str, object]:
    """The JSON body for one message."""
    if message.msg_type == "image":
        if message.image is None:
            raise ValueError("an image message needs image bytes")
        return {
            "msgtype": "image",
            "image": {
                "base64": base64.b64encode(message.image).decode("ascii"),
                # WeCom checks the md5 of the raw bytes, not of the base64 text.
                "md5": hashlib.md5(message.image).hexdigest(),  # noqa: S324 - platform's checksum
            },
        }
    if message.msg_type == "text":
        return {"msgtype": "text", "text": {"content": message.body}}
    return {"msgtype": "markdown", "markdown": {"content": message.body}}
