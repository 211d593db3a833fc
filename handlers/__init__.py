"""Reactions to events and commands: small functions over a context, no platform imports.

Every chat command is registered here, in :data:`COMMANDS`, and nowhere else. The list is
built the first time someone asks for it (``from handlers import REGISTRY``), so that a
module such as ``handlers.stats`` (all ``qunpulse stats`` needs) imports without every
command handler. A name or alias registered twice stops qunpulse when the registry is
built, which the server does at import, with a message naming both commands.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from handlers.registry import Command, Registry

if TYPE_CHECKING:
    COMMANDS: list[Command]
    REGISTRY: Registry


@functools.cache
def _registry() -> tuple[list[Command], Registry]:
    from handlers import commands

    registered = [
        Command(
            "stats",
            ("统计",),
            commands.stats,
            audience="operators",
            accepts=("period",),
            needs_group=True,
            usage={"zh_CN": "[周期]", "en": "[period]"},
            summary={
                "zh_CN": "群核心指标及较上期变化、发言最多的人、高频词、情绪分布(默认今天)",
                "en": "key figures with change against the previous period, top senders, "
                "top words, sentiment (default: today)",
            },
        ),
        Command(
            "rank",
            ("排行",),
            commands.rank,
            audience="anyone",
            accepts=("period", "count"),
            needs_group=True,
            usage={"zh_CN": "[周期] [人数]", "en": "[period] [N]"},
            summary={
                "zh_CN": "发言排行榜(默认今天前 10 名)",
                "en": "the message-rank leaderboard (default: today, top 10)",
            },
        ),
        Command(
            "words",
            ("词云",),
            commands.words,
            audience="anyone",
            accepts=("period",),
            needs_group=True,
            usage={"zh_CN": "[周期]", "en": "[period]"},
            summary={"zh_CN": "高频词(默认本周)", "en": "top words (default: this week)"},
        ),
        Command(
            "silent",
            ("沉默",),
            commands.silent,
            audience="operators",
            accepts=("days",),
            needs_group=True,
            usage={"zh_CN": "[天数]", "en": "[days]"},
            summary={
                "zh_CN": "N 天未发言的成员(默认 14 天),只私聊发送",
                "en": "members silent for N days (default 14), sent privately only",
            },
        ),
        Command(
            "me",
            ("我",),
            commands.me,
            audience="anyone",
            accepts=("period",),
            needs_group=True,
            usage={"zh_CN": "[周期]", "en": "[period]"},
            summary={
                "zh_CN": "我的发言数、排名、连续活跃天数和首次出现日期(默认本周)",
                "en": "your messages, rank, active streak and first-seen date (default: this week)",
            },
        ),
        Command(
            "optout",
            ("退出排行",),
            commands.optout,
            audience="anyone",
            accepts=(),
            needs_group=False,
            usage={"zh_CN": "", "en": ""},
            summary={
                "zh_CN": "不在公开排行中显示我",
                "en": "hide me from public rankings",
            },
        ),
        Command(
            "optin",
            ("加入排行",),
            commands.optin,
            audience="anyone",
            accepts=(),
            needs_group=False,
            usage={"zh_CN": "", "en": ""},
            summary={"zh_CN": "重新在公开排行中显示我", "en": "show me in public rankings again"},
        ),
        Command(
            "dashboard",
            ("看板",),
            commands.dashboard,
            audience="operators",
            accepts=(),
            needs_group=False,
            usage={"zh_CN": "", "en": ""},
            summary={
                "zh_CN": "网页看板的登录链接(私聊发送,10 分钟内有效)",
                "en": "a sign-in link to the web dashboard (sent privately, valid 10 minutes)",
            },
        ),
        Command(
            "help",
            ("帮助",),
            commands.help_command,
            audience="anyone",
            accepts=(),
            needs_group=False,
            usage={"zh_CN": "", "en": ""},
            summary={"zh_CN": "显示本帮助", "en": "show this help"},
        ),
    ]
    return registered, Registry(registered)


def __getattr__(name: str) -> object:
    if name == "COMMANDS":
        return _registry()[0]
    if name == "REGISTRY":
        return _registry()[1]
    raise AttributeError(f"module 'handlers' has no attribute {name!r}")
