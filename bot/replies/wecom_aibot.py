"""Answers of a WeCom AI bot (智能机器人): an active reply to the message's ``response_url``.

``POST response_url`` with ``{"msgtype": "markdown", "markdown": {"content": ...}}``;
the URL is single-use and valid for one hour after the message. Markdown content is at
most 4096 UTF-8 bytes.

The passive alternative (an encrypted ``stream`` reply in the callback's HTTP answer) is
not used: the callback is answered as soon as the message is stored, before any command
is computed, so that a slow command can never make WeCom retry (it does after 5 s).

A private answer to a group command would need a WeCom self-built app
(``message/send``); until one is served, a private answer is possible only when the
command was sent in a private chat with the bot.

Docs: https://developer.work.weixin.qq.com/document/path/101138 (主动回复消息).
"""

from __future__ import annotations

import httpx

from bot.events import MessageEvent
from bot.platforms.base import Clock
from bot.replies.base import platform_error
from handlers.context import Answer, ReplyError

#: WeCom markdown content limit, in UTF-8 bytes.
MARKDOWN_MAX_BYTES = 4096


class WecomAibotReplies:
    """Reply channel of one ``kind = "wecom_aibot"`` bot."""

    max_bytes = MARKDOWN_MAX_BYTES

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock

    async def reply(self, event: MessageEvent, answer: Answer) -> None:
        route = event.reply
        if route is None:
            raise ReplyError("the message carried no response_url")
        if route.expires_at is not None and self._clock() >= route.expires_at:
            raise ReplyError("the response_url has expired (valid one hour)")
        body = {"msgtype": "markdown", "markdown": {"content": answer.text}}
        try:
            response = await self._client.post(route.url, json=body)
        except httpx.HTTPError as error:
            raise ReplyError(f"response_url: {type(error).__name__}") from None
        failure = platform_error(response, "response_url")
        if failure is not None:
            raise failure

    def can_send_private(self, event: MessageEvent) -> bool:
        return event.chat.chat_type == "private"

    async def send_private(self, event: MessageEvent, answer: Answer) -> None:
        if event.chat.chat_type != "private":
            raise ReplyError("a WeCom AI bot can answer privately only in a private chat")
        await self.reply(event, answer)
