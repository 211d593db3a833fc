"""Answers of a Feishu / Lark app bot, through the message API with a tenant token.

- In the chat: ``POST {api_base}/open-apis/im/v1/messages/{message_id}/reply`` (a reply
  to the command message, in its chat).
- Privately: ``POST {api_base}/open-apis/im/v1/messages?receive_id_type=open_id`` (or
  ``user_id``) with ``receive_id`` = the asker.

Both send an ``interactive`` card with one ``markdown`` element, the Feishu way to show
markdown. Headers: ``Authorization: Bearer <tenant_access_token>``. Success is HTTP 200
with ``code`` 0; an invalid or expired token (``99991661`` / ``99991663`` /
``99991664``) is fetched again once.

Docs: https://open.feishu.cn/document/server-docs/im-v1/message/reply,
https://open.feishu.cn/document/server-docs/im-v1/message/create.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.events import MessageEvent
from bot.platforms.base import Clock
from bot.platforms.tokens import TokenCache, TokenError, feishu_fetcher
from config.settings import FeishuSettings
from handlers.context import Answer, ReplyError

#: Kept at the posts' limit; a Feishu card may be larger (30 KB).
MARKDOWN_MAX_BYTES = 4096
#: Feishu codes that mean "the token is not (or no longer) valid".
TOKEN_INVALID = frozenset({99991661, 99991663, 99991664})


def card(answer: Answer) -> str:
    """The ``content`` of an interactive message showing ``answer`` as markdown."""
    return json.dumps(
        {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": answer.title}},
            "elements": [{"tag": "markdown", "content": answer.text}],
        },
        ensure_ascii=False,
    )


class FeishuReplies:
    """Reply channel of one ``kind = "feishu"`` bot."""

    max_bytes = MARKDOWN_MAX_BYTES

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        settings: FeishuSettings,
        api_base: str,
        key: str,
    ) -> None:
        self._client = client
        self._api_base = api_base.rstrip("/")
        self._tokens = TokenCache(
            client,
            feishu_fetcher(
                self._api_base,
                settings.app_id,
                settings.app_secret.get_secret_value(),
                f"{key}.app_secret",
            ),
            clock,
        )

    async def reply(self, event: MessageEvent, answer: Answer) -> None:
        url = f"{self._api_base}/open-apis/im/v1/messages/{event.message_id}/reply"
        await self._post(url, {}, {"msg_type": "interactive", "content": card(answer)})

    def can_send_private(self, event: MessageEvent) -> bool:
        return True  # the app bot can message any user of the tenant who can see it

    async def send_private(self, event: MessageEvent, answer: Answer) -> None:
        user = event.sender.user_id
        # open_id values start with "ou_"; anything else is taken as a tenant user_id.
        id_type = "open_id" if user.startswith("ou_") else "user_id"
        await self._post(
            f"{self._api_base}/open-apis/im/v1/messages",
            {"receive_id_type": id_type},
            {"receive_id": user, "msg_type": "interactive", "content": card(answer)},
        )

    async def _post(self, url: str, params: dict[str, str], body: dict[str, Any]) -> None:
        for attempt in range(2):
            try:
                token = await self._tokens.get()
                response = await self._client.post(
                    url, params=params, json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except TokenError as error:
                raise ReplyError(str(error)) from None
            except httpx.HTTPError as error:
                raise ReplyError(f"Feishu message API: {type(error).__name__}") from None
            try:
                result = response.json()
            except ValueError:
                result = {}
            code = result.get("code") if isinstance(result, dict) else None
            if code in TOKEN_INVALID and attempt == 0:
                self._tokens.invalidate()
                continue
            if response.status_code != 200 or code != 0:
                message = result.get("msg") if isinstance(result, dict) else None
                raise ReplyError(
                    f"Feishu message API: HTTP {response.status_code}, code {code} ({message})"
                )
            return
