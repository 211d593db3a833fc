"""DingTalk custom robot webhook (自定义机器人) with the signing secret (加签).

``POST https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=MS&sign=S`` with
S = urlencode(base64(HMAC-SHA256(key=secret, msg=MS + "\\n" + secret))).
https://open.dingtalk.com/document/robots/customize-robot-security-settings
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote_plus

import httpx

from bot.platforms.dingtalk_robot import robot_sign
from bot.senders.base import (
    OutboundMessage,
    PermanentSendError,
    Target,
    TransientSendError,
    post_json,
)

#: Over 20 messages a minute: errcode 130101 and a 10-minute throttle.
RATE_LIMITED = frozenset({130101})
#: 310000: security check failed (sign, keyword or IP); never retried blindly.
PERMANENT = frozenset({310000})


def signed_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    separator = "&" if "?" in url else "?"
    signature = quote_plus(robot_sign(str(timestamp_ms), secret))
    return f"{url}{separator}timestamp={timestamp_ms}&sign={signature}"


class DingtalkWebhookSender:
    """Posts markdown (title + text) or text through a DingTalk custom robot."""

    def __init__(self, client: httpx.AsyncClient, wall_ms: Callable[[], int] | None = None) -> None:
        self._client = client
        # The signature must carry the real time (DingTalk refuses one over an hour off).
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))

    async def send(self, target: Target, message: OutboundMessage) -> None:
        label = f"DingTalk robot {target.config_key}"
        url = signed_url(target.url, target.secret, self._wall_ms())
        _, body = await post_json(self._client, url, payload(message), label=label)
        code = body.get("errcode", 0)
        if code == 0:
            return
        reason = f"{label}: errcode {code}: {body.get('errmsg', '')}"
        if code in RATE_LIMITED:
            raise TransientSendError(reason)
        if code == 310000:
            reason += f" (check {target.config_key} and the secret beside it, or the keyword)"
        raise PermanentSendError(reason)


def payload(message: OutboundMessage) -> dict[str, object]:
    if message.msg_type == "text":
        return {"msgtype": "text", "text": {"content": message.body}}
    if message.msg_type == "image":
        raise PermanentSendError("DingTalk custom robots take no image upload")
    return {"msgtype": "markdown", "markdown": {"title": message.title, "text": message.body}}
