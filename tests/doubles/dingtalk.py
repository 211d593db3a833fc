"""A stand-in for DingTalk's servers calling an enterprise robot's HTTP callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx


def dingtalk_sign(timestamp_ms: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class DingTalkRobotDouble:
    """DingTalk delivering robot callbacks (HTTP mode) to ``url``."""

    url: str
    app_secret: str
    robot_code: str = "dingrobot"

    async def deliver(
        self,
        body: dict[str, Any],
        *,
        timestamp_ms: int | None = None,
        sign: str | None = None,
    ) -> httpx.Response:
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        headers = {
            "timestamp": stamp,
            "sign": sign if sign is not None else dingtalk_sign(stamp, self.app_secret),
        }
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.post(self.url, json=body, headers=headers)

    def group_text(
        self,
        msg_id: str,
        conversation_id: str,
        staff_id: str | None,
        nick: str,
        content: str,
        *,
        sender_id: str = "$:LWCP_v1:$sender",
        create_at_ms: int | None = None,
        title: str = "产品交流群",
        is_admin: bool = False,
        webhook_base: str = "https://oapi.dingtalk.com",
    ) -> dict[str, Any]:
        """A group @-message body as the robot receives it.

        ``webhook_base`` points the ``sessionWebhook`` at a test double.
        """
        created = create_at_ms if create_at_ms is not None else int(time.time() * 1000)
        body: dict[str, Any] = {
            "msgtype": "text",
            "text": {"content": f" {content}"},
            "msgId": msg_id,
            "createAt": created,
            "conversationType": "2",
            "conversationId": conversation_id,
            "conversationTitle": title,
            "senderId": sender_id,
            "senderNick": nick,
            "senderCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": self.robot_code,
            "isAdmin": is_admin,
            "isInAtList": True,
            "sessionWebhook": f"{webhook_base}/robot/sendBySession?session=x",
            "sessionWebhookExpiredTime": created + 90 * 60 * 1000,
        }
        if staff_id is not None:
            body["senderStaffId"] = staff_id
        return body
