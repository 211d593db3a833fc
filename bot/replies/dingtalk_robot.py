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

import httpx

from bot.events import MessageEvent
from bot.platforms.base import Clock
from bot.replies.base import platform_error
from bot.senders.base import OutboundMessage, SendError, Target
from bot.senders.private import DingtalkOtoSender
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
        self._app_key = settings.app_key
        self._secret = settings.app_secret.get_secret_value()
        self._key = key
        self._api_base = api_base.rstrip("/")
        self._private = DingtalkOtoSender(client, clock)

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
        """Send the answer as the robot's 1:1 message, through the alerts' 1:1 sender."""
        if not self.can_send_private(event):
            raise ReplyError("no private channel: robot_code is empty or the asker has no staff id")
        target = Target(
            "dingtalk",
            self._key,
            self._api_base,
            self._secret,
            "private",
            (event.sender.user_id,),
            self._app_key,
            self._robot_code,
        )
        try:
            await self._private.send(target, OutboundMessage("markdown", answer.title, answer.text))
        except SendError as error:
            raise ReplyError(str(error)) from None
