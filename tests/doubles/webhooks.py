"""Robot webhooks of WeCom, DingTalk and Feishu on the PlatformAPI double.

Built from PLATFORMS.md: each answers HTTP 200 with the platform's JSON (``errcode`` for
WeCom and DingTalk, ``code`` for Feishu). DingTalk and Feishu check the signature with
the real algorithm and answer 310000 / 19021 when it is wrong. ``script`` queues the
answers of the next calls (e.g. one 45009, then success); after that, success.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.api import Call, PlatformAPI

WECOM_PATH = "/cgi-bin/webhook/send"
DINGTALK_PATH = "/robot/send"
FEISHU_PATH = "/open-apis/bot/v2/hook/test-hook"


@dataclass
class Webhooks:
    api: PlatformAPI
    dingtalk_secret: str
    feishu_secret: str
    wecom_script: deque[dict[str, Any]] = field(default_factory=deque)
    dingtalk_script: deque[dict[str, Any]] = field(default_factory=deque)
    #: Bodies the platforms accepted, in order, per platform.
    accepted: dict[str, list[Any]] = field(
        default_factory=lambda: {"wecom": [], "dingtalk": [], "feishu": []}
    )

    #: Set whenever a platform accepts a post, for tests that wait on a running server.
    posted: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, within: float = 20.0) -> None:
        """Wait until ``count`` posts in all were accepted (fails after ``within`` s)."""
        async with asyncio.timeout(within):
            while sum(len(v) for v in self.accepted.values()) < count:
                self.posted.clear()
                await self.posted.wait()

    def install(self) -> None:
        self.api.route("POST", WECOM_PATH, self._wecom)
        self.api.route("POST", DINGTALK_PATH, self._dingtalk)
        self.api.route("POST", FEISHU_PATH, self._feishu)

    @property
    def wecom_url(self) -> str:
        return f"{self.api.base_url}{WECOM_PATH}?key=test-key"

    @property
    def dingtalk_url(self) -> str:
        return f"{self.api.base_url}{DINGTALK_PATH}?access_token=test-token"

    @property
    def feishu_url(self) -> str:
        return f"{self.api.base_url}{FEISHU_PATH}"

    def _wecom(self, call: Call) -> tuple[int, Any]:
        if call.query.get("key") != "test-key":
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        body = call.json
        if (
            body.get("msgtype") == "markdown"
            and len(body["markdown"]["content"].encode("utf-8")) > 4096
        ):
            return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length"}
        if self.wecom_script:
            answer = self.wecom_script.popleft()
            if answer.get("errcode", 0) != 0:
                return 200, answer
        self.accepted["wecom"].append(body)
        self.posted.set()
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _dingtalk(self, call: Call) -> tuple[int, Any]:
        timestamp = call.query.get("timestamp", "")
        given = call.query.get("sign", "")  # aiohttp has already URL-decoded the query
        expected = base64.b64encode(
            hmac.new(
                self.dingtalk_secret.encode(),
                f"{timestamp}\n{self.dingtalk_secret}".encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        fresh = timestamp.isdigit() and abs(int(timestamp) - time.time() * 1000) < 3_600_000
        if not fresh or not hmac.compare_digest(given, expected):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        if self.dingtalk_script:
            answer = self.dingtalk_script.popleft()
            if answer.get("errcode", 0) != 0:
                return 200, answer
        body = call.json
        if body.get("msgtype") == "markdown" and not body["markdown"].get("title"):
            return 200, {"errcode": 40035, "errmsg": "missing title"}
        self.accepted["dingtalk"].append(body)
        self.posted.set()
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _feishu(self, call: Call) -> tuple[int, Any]:
        body = call.json
        timestamp = str(body.get("timestamp", ""))
        key = f"{timestamp}\n{self.feishu_secret}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(str(body.get("sign", "")), expected):
            return 200, {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
                "data": {},
            }
        self.accepted["feishu"].append(body)
        self.posted.set()
        return 200, {"code": 0, "msg": "success", "data": {}}
