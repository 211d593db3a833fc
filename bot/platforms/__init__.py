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
from bot.platforms.dingtalk_events import DingtalkEvents
from bot.platforms.dingtalk_robot import DingtalkRobot
from bot.platforms.dingtalk_stream import DingtalkStream, EventSink
from bot.platforms.feishu import Feishu
from bot.platforms.wecom_aibot import WecomAibot
from bot.platforms.wecom_app import WecomApp
from bot.telemetry import Telemetry
from config.settings import (
    ConfigError,
    DingtalkEventsSettings,
    DingtalkRobotSettings,
    FeishuSettings,
    Settings,
    WecomAibotSettings,
    WecomAppSettings,
)

__all__ = [
    "BadSignature",
    "DingtalkStream",
    "EventSink",
    "InboundRequest",
    "MalformedRequest",
    "NotSupported",
    "Platform",
    "Received",
    "RejectedRequest",
    "Reply",
    "StaleRequest",
    "build_platforms",
    "build_streams",
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
        elif isinstance(bot, DingtalkRobotSettings) and bot.mode == "stream":
            continue  # a connection qunpulse dials, not a callback URL: see build_streams
        elif isinstance(bot, WecomAppSettings):
            platforms[bot.id] = WecomApp(bot, clock)
        elif isinstance(bot, DingtalkEventsSettings):
            platforms[bot.id] = DingtalkEvents(bot, clock)
        elif isinstance(bot, FeishuSettings):
            if bot.verification_token is None and bot.encrypt_key is None:
                raise ConfigError(
                    f"config error: bots[{index}]: a feishu bot needs verification_token or "
                    "encrypt_key (copy them from the Feishu console, 事件与回调 > 加密策略), "
                    "or anyone could post events to it"
                )
            platforms[bot.id] = Feishu(bot, clock)
        else:
            mode = f' with mode = "{bot.mode}"' if isinstance(bot, DingtalkRobotSettings) else ""
            raise ConfigError(
                f'config error: bots[{index}].kind: "{bot.kind}"{mode} is not available in this '
                "version yet"
            )
    return platforms


def build_streams(
    settings: Settings, clock: Clock, sink: EventSink, telemetry: Telemetry
) -> list[DingtalkStream]:
    """The long-lived connections qunpulse dials itself (DingTalk robots in Stream mode)."""
    return [
        DingtalkStream(bot, settings.platforms.dingtalk, clock, sink, telemetry)
        for bot in settings.bots
        if isinstance(bot, DingtalkRobotSettings) and bot.mode == "stream"
    ]
