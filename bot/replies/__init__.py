"""Reply channels: how each connection kind answers a command it received.

One module per connection kind, each a class implementing
:class:`handlers.context.ReplyChannel` over the shared HTTP client:

- ``wecom_aibot``: an active markdown reply to the message's ``response_url``.
- ``dingtalk_robot``: markdown to the message's ``sessionWebhook``; private answers by the
  robot's 1:1 ``oToMessages/batchSend``.
- ``feishu``: a reply to the message through the message API (tenant token); private
  answers as a message to the user.

A new connection kind adds one module here and one branch in
:func:`build_reply_channels`.
"""

from __future__ import annotations

import httpx

from bot.platforms.base import Clock
from bot.replies.base import platform_error
from bot.replies.dingtalk_robot import DingtalkRobotReplies
from bot.replies.feishu import FeishuReplies
from bot.replies.wecom_aibot import WecomAibotReplies
from config.settings import (
    DingtalkRobotSettings,
    FeishuSettings,
    Settings,
    WecomAibotSettings,
)
from handlers.context import ReplyChannel, ReplyError

__all__ = ["ReplyChannel", "ReplyError", "build_reply_channels", "platform_error"]


def build_reply_channels(
    settings: Settings, client: httpx.AsyncClient, clock: Clock
) -> dict[str, ReplyChannel]:
    """One reply channel per ``[[bots]]`` entry that receives commands, by bot id."""
    channels: dict[str, ReplyChannel] = {}
    for index, bot in enumerate(settings.bots):
        if isinstance(bot, WecomAibotSettings):
            channels[bot.id] = WecomAibotReplies(client, clock)
        elif isinstance(bot, DingtalkRobotSettings):
            channels[bot.id] = DingtalkRobotReplies(
                client, clock, bot, settings.platforms.dingtalk.api_base, f"bots[{index}]"
            )
        elif isinstance(bot, FeishuSettings):
            channels[bot.id] = FeishuReplies(
                client, clock, bot, settings.platforms.feishu.api_base, f"bots[{index}]"
            )
    return channels
