"""Platform connections: one module per connection kind behind one :class:`Platform` protocol.

Platform SDK types never leave this package; the rest of qunpulse sees
:mod:`bot.events` only.
"""

from __future__ import annotations

from datetime import timedelta

from bot.platforms.base import (
    BadSignature,
    Clock,
    InboundRequest,
    MalformedRequest,
    NotSupported,
    Platform,
    Received,
    RejectedRequest,
    Reply,
    StaleRequest,
)
from bot.platforms.dingtalk_robot import DingtalkRobot
from bot.platforms.wecom_aibot import WecomAibot
from config.settings import (
    ConfigError,
    DingtalkRobotSettings,
    Settings,
    WecomAibotSettings,
)

__all__ = [
    "BadSignature",
    "InboundRequest",
    "MalformedRequest",
    "NotSupported",
    "Platform",
    "Received",
    "RejectedRequest",
    "Reply",
    "StaleRequest",
    "build_platforms",
]


def build_platforms(settings: Settings, clock: Clock) -> dict[str, Platform]:
    """Construct one connection per ``[[bots]]`` entry, keyed by bot id.

    Raises:
        ConfigError: an entry asks for a connection kind this version cannot serve.
    """
    platforms: dict[str, Platform] = {}
    skew = timedelta(seconds=settings.platforms.dingtalk.max_clock_skew_seconds)
    for index, bot in enumerate(settings.bots):
        if isinstance(bot, WecomAibotSettings):
            platforms[bot.id] = WecomAibot(bot, clock)
        elif isinstance(bot, DingtalkRobotSettings) and bot.mode == "http":
            platforms[bot.id] = DingtalkRobot(bot, clock, skew)
        else:
            mode = f' with mode = "{bot.mode}"' if isinstance(bot, DingtalkRobotSettings) else ""
            raise ConfigError(
                f'config error: bots[{index}].kind: "{bot.kind}"{mode} is not available in this '
                'version yet; use "wecom_aibot" or "dingtalk_robot" (mode = "http")'
            )
    return platforms
