"""The Feishu reply channel against the platform API double.

Feishu callbacks arrive with the Feishu connection (another issue); until then this
checks the outbound half on its own: the reply API, the private message, the token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from bot.events import Chat, ChatId, MessageEvent, Person, UserId
from bot.replies.feishu import FeishuReplies
from config.settings import FeishuSettings
from handlers.context import Answer
from tests.doubles.api import Call, LoopbackOnly, PlatformAPI

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def _event(user: str = "ou_alice") -> MessageEvent:
    return MessageEvent(
        platform="feishu",
        bot_id="feishu-bot",
        message_id="om_cmd1",
        chat=Chat(ChatId("oc_group"), "group"),
        sender=Person(UserId(user)),
        msg_type="text",
        text="/me",
        sent_at=NOW,
        source="full",
    )


def _channel(api: PlatformAPI, client: httpx.AsyncClient) -> FeishuReplies:
    settings = FeishuSettings(
        id="feishu-bot", kind="feishu", app_id="cli_test", app_secret=SecretStr("s3cret")
    )
    return FeishuReplies(client, lambda: NOW, settings, api.base_url, "bots[0]")


def _sent(_call: Call) -> tuple[int, Any]:
    return 200, {"code": 0, "msg": "success", "data": {"message_id": "om_answer"}}


async def test_feishu_reply_goes_to_the_message_reply_api_with_a_tenant_token(
    platform_api: PlatformAPI,
) -> None:
    platform_api.route("POST", "/open-apis/im/v1/messages/om_cmd1/reply", _sent)
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        await _channel(platform_api, client).reply(_event(), Answer("**你好**", "群脉"))

    [call] = platform_api.calls_to("/open-apis/im/v1/messages/om_cmd1/reply")
    assert call.headers["authorization"].startswith("Bearer t-")
    assert call.json["msg_type"] == "interactive"
    card = json.loads(call.json["content"])
    assert card["elements"] == [{"tag": "markdown", "content": "**你好**"}]


async def test_feishu_private_answer_is_a_message_to_the_user(platform_api: PlatformAPI) -> None:
    platform_api.route("POST", "/open-apis/im/v1/messages", _sent)
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        await _channel(platform_api, client).send_private(_event(), Answer("私密", "群脉"))

    [call] = platform_api.calls_to("/open-apis/im/v1/messages")
    assert call.query == {"receive_id_type": "open_id"}
    assert call.json["receive_id"] == "ou_alice"


async def test_feishu_fetches_a_new_token_once_when_told_it_expired(
    platform_api: PlatformAPI,
) -> None:
    answers = iter([(200, {"code": 99991663, "msg": "token expired"}), _sent(None)])  # type: ignore[arg-type]
    platform_api.route("POST", "/open-apis/im/v1/messages/om_cmd1/reply", lambda _c: next(answers))
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        await _channel(platform_api, client).reply(_event(), Answer("ok"))

    tokens = [
        c.headers["authorization"]
        for c in platform_api.calls_to("/open-apis/im/v1/messages/om_cmd1/reply")
    ]
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]
