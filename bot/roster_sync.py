"""``qunpulse roster sync`` and ``wecom-stats pull``: what the platforms' APIs say about groups.

Rosters: pull member lists where the platform lets the bot, and reconcile.

Groups synced: every stored group of a platform with a bot that may call its roster API,
plus the ``[[groups]]`` of the config (so a configured group is known before anyone
speaks). WeCom needs a ``wecom_app`` bot (its ``secret``), Feishu a ``feishu`` bot;
DingTalk has no roster API for ordinary groups.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import partial

import httpx
from sqlalchemy import Engine

from bot.platforms.base import Clock
from bot.platforms.rosters import Roster, RosterError, feishu_roster, wecom_roster
from bot.platforms.tokens import TokenCache, TokenError, feishu_fetcher, wecom_fetcher
from bot.platforms.wecom_stats import StatsError, group_stats_by_day
from config.settings import FeishuSettings, Settings, WecomAppSettings
from storage.roster import RosterResult, apply_roster, groups_to_sync
from storage.wecom_stats import store_daily_stats

log = logging.getLogger(__name__)

#: Every roster call is bounded: a stuck platform must not hang the sync.
TIMEOUT = httpx.Timeout(15.0)


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    platform: str
    chat_id: str
    result: RosterResult | None = None
    error: str | None = None


async def sync_rosters(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    *,
    chat_id: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[SyncOutcome]:
    """Sync the rosters of every group qunpulse may list (or only ``chat_id``)."""
    outcomes: list[SyncOutcome] = []
    async with httpx.AsyncClient(timeout=TIMEOUT, transport=transport) as client:
        for platform, fetch in _fetchers(settings, client, clock).items():
            for chat in _targets(settings, engine, platform, chat_id):
                try:
                    roster = await fetch(chat)
                except (RosterError, TokenError) as error:
                    log.warning("roster %s %s: %s", platform, chat, error)
                    outcomes.append(SyncOutcome(platform, chat, error=str(error)))
                    continue
                except httpx.HTTPError as error:
                    outcomes.append(SyncOutcome(platform, chat, error=type(error).__name__))
                    continue
                result = await asyncio.to_thread(
                    apply_roster,
                    engine,
                    platform,
                    chat,
                    roster.name,
                    roster.entries,
                    clock(),
                    "full" if platform == "feishu" else None,
                )
                outcomes.append(SyncOutcome(platform, chat, result))
    return outcomes


def _targets(settings: Settings, engine: Engine, platform: str, chat_id: str | None) -> list[str]:
    chats = [chat for _, chat in groups_to_sync(engine, platform, chat_id)]
    for group in settings.groups:
        if group.platform == platform and chat_id in (None, group.chat_id):
            chats.append(group.chat_id)
    return list(dict.fromkeys(chats))


def _fetchers(
    settings: Settings, client: httpx.AsyncClient, clock: Clock
) -> dict[str, Callable[[str], Awaitable[Roster]]]:
    fetchers: dict[str, Callable[[str], Awaitable[Roster]]] = {}
    for index, bot in enumerate(settings.bots):
        if isinstance(bot, WecomAppSettings) and "wecom" not in fetchers:
            base = settings.platforms.wecom.api_base.rstrip("/")
            tokens = TokenCache(
                client,
                wecom_fetcher(
                    base, bot.corp_id, bot.secret.get_secret_value(), f"bots[{index}].secret"
                ),
                clock,
            )
            fetchers["wecom"] = partial(wecom_roster, client, base, tokens)
        elif isinstance(bot, FeishuSettings) and "feishu" not in fetchers:
            base = settings.platforms.feishu.api_base.rstrip("/")
            tokens = TokenCache(
                client,
                feishu_fetcher(
                    base, bot.app_id, bot.app_secret.get_secret_value(), f"bots[{index}].app_secret"
                ),
                clock,
            )
            fetchers["feishu"] = partial(feishu_roster, client, base, tokens)
    return fetchers


@dataclass(frozen=True, slots=True)
class StatsOutcome:
    bot_id: str
    owner: str
    days: int = 0
    error: str | None = None


async def pull_wecom_group_stats(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    *,
    days: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[StatsOutcome]:
    """Fetch the last ``days`` days (ending yesterday) of WeCom's group statistics.

    One row per (wecom_app bot, owner, day); ``owner = "*"`` when the bot lists no
    ``stat_owners`` (totals over every owner in the app's visible range).
    """
    zone = settings.zone
    today = clock().astimezone(zone).date()
    first_day = today - timedelta(days=days)
    last_day = today - timedelta(days=1)
    first = datetime.combine(first_day, time(), zone)
    last = datetime.combine(last_day, time(), zone)
    base = settings.platforms.wecom.api_base.rstrip("/")
    outcomes: list[StatsOutcome] = []
    async with httpx.AsyncClient(timeout=TIMEOUT, transport=transport) as client:
        for index, bot in enumerate(settings.bots):
            if not isinstance(bot, WecomAppSettings):
                continue
            tokens = TokenCache(
                client,
                wecom_fetcher(
                    base, bot.corp_id, bot.secret.get_secret_value(), f"bots[{index}].secret"
                ),
                clock,
            )
            owners: list[str | None] = list(bot.stat_owners) or [None]
            for owner in owners:
                label = owner or "*"
                try:
                    stats = await group_stats_by_day(client, base, tokens, owner, first, last)
                except (StatsError, TokenError) as error:
                    outcomes.append(StatsOutcome(bot.id, label, error=str(error)))
                    continue
                except httpx.HTTPError as error:
                    outcomes.append(StatsOutcome(bot.id, label, error=type(error).__name__))
                    continue
                stored = await asyncio.to_thread(
                    store_daily_stats,
                    engine,
                    bot.id,
                    label,
                    [(stat.day, stat.figures) for stat in stats],
                    clock(),
                )
                outcomes.append(StatsOutcome(bot.id, label, stored))
    return outcomes
