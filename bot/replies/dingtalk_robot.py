"""Answers of a DingTalk enterprise robot.

- In the chat: ``POST sessionWebhook`` with
  ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` while the webhook is valid
  (``sessionWebhookExpiredTime``, about 90 minutes after the message).
- Privately: the robot's 1:1 message, ``POST {api_base}/v1.0/robot/oToMessages/batchSend``
  with header ``x-acs-dingtalk-access-token`` and ``{robotCode, userIds, msgKey:
  "sampleMarkdown", msgParam: "{\\"title\\", \\"text\\"}"}``. It needs the asker's staff id
  (``senderStaffId``; external contacts have none) and ``robot_code``.

Docs: https://open.dingtalk.com/document/orgapp/robot-reply-and-send-messages,
https://open.dingtalk.com/document/orgapp/chatbots-send-one-on-one-chat-messages-in-batches.
"""

from __future__ import annotations

import json

import httpx

from bot.events import MessageEvent
from bot.platforms.base import Clock
from bot.platforms.tokens import TokenCache, TokenError, dingtalk_fetcher
from bot.replies.base import platform_error
from config.settings import DingtalkRobotSettings
from handlers.context import Answer, ReplyError

#: Kept at the WeCom limit: DingTalk documents no exact markdown byte limit for robots.
MARKDOWN_MAX_BYTES = 4096


class DingtalkRobotReplies:
    """Reply channel of one ``kind = "dingtalk_robot"`` bot."""

    max_bytes = MARKDOWN_MAX_BYTES

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        settings: DingtalkRobotSettings,
        api_base: str,
        key: str,
    ) -> None:
        self._client = client
        self._clock = clock
        self._robot_code = settings.robot_code
        self._api_base = api_base.rstrip("/")
        self._tokens = TokenCache(
            client,
            dingtalk_fetcher(
                self._api_base,
                settings.app_key,
                settings.app_secret.get_secret_value(),
                f"{key}.app_secret",
            ),
            clock,
        )

    async def reply(self, event: MessageEvent, answer: Answer) -> None:
        route = event.reply
        if route is None:
            raise ReplyError("the message carried no sessionWebhook")
        if route.expires_at is not None and self._clock() >= route.expires_at:
            raise ReplyError("the sessionWebhook has expired")
        body = {"msgtype": "markdown", "markdown": {"title": answer.title, "text": answer.text}}
        try:
            response = await self._client.post(route.url, json=body)
        except httpx.HTTPError as error:
            raise ReplyError(f"sessionWebhook: {type(error).__name__}") from None
        failure = platform_error(response, "sessionWebhook")
        if failure is not None:
            raise failure

    def can_send_private(self, event: MessageEvent) -> bool:
        # Staff ids are plain; a sender without one is known only by "$:LWCP_v1:$..." ids.
        return bool(self._robot_code) and not event.sender.user_id.startswith("$:")

    async def send_private(self, event: MessageEvent, answer: Answer) -> None:
        if not self.can_send_private(event):
            raise ReplyError("no private channel: robot_code is empty or the asker has no staff id")
        body = {
            "robotCode": self._robot_code,
            "userIds": [event.sender.user_id],
            "msgKey": "sampleMarkdown",
            "msgParam": json.dumps(
                {"title": answer.title, "text": answer.text}, ensure_ascii=False
            ),
        }
        url = f"{self._api_base}/v1.0/robot/oToMessages/batchSend"
        for attempt in range(2):
            try:
                token = await self._tokens.get()
                response = await self._client.post(
                    url, json=body, headers={"x-acs-dingtalk-access-token": token}
                )
            except TokenError as error:
                raise ReplyError(str(error)) from None
            except httpx.HTTPError as error:
                raise ReplyError(f"batchSend: {type(error).__name__}") from None
            if response.status_code in (401, 403) and attempt == 0:
                self._tokens.invalidate()  # an expired or revoked token: fetch once more
                continue
            break
        if response.status_code != 200:
            raise ReplyError(f"batchSend: HTTP {response.status_code}")
        try:
            result = response.json()
        except ValueError:
            result = {}
        invalid = result.get("invalidStaffIdList") or [] if isinstance(result, dict) else []
        if event.sender.user_id in invalid:
            raise ReplyError("batchSend: DingTalk says the asker's staff id is invalid")
