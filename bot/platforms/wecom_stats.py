"""WeCom's own customer-group statistics (获取「群聊数据统计」数据, by natural day).

``POST {api_base}/cgi-bin/externalcontact/groupchat/statistic_group_by_day`` with
``{day_begin_time, day_end_time, owner_filter{userid_list}}`` (local midnights; both
ends included; at most 30 days per call; yesterday back to 180 days ago) answers
``items[{stat_time, data{new_chat_cnt, chat_total, chat_has_msg, new_member_cnt,
member_total, member_has_msg, msg_total, migrate_trainee_chat_cnt}}]``: totals over the
owner's customer groups per day, not per group or per member. The token must come from a
self-built app listed as a 客户联系 "可调用接口的应用", and owners must be in its visible range.

Docs: https://developer.work.weixin.qq.com/document/path/92133
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.platforms.tokens import TokenCache

#: The figures WeCom reports per day, in its names.
FIELDS = (
    "new_chat_cnt",
    "chat_total",
    "chat_has_msg",
    "new_member_cnt",
    "member_total",
    "member_has_msg",
    "msg_total",
    "migrate_trainee_chat_cnt",
)
#: WeCom answers at most 30 days per call.
MAX_SPAN_DAYS = 30


class StatsError(Exception):
    """WeCom refused the statistics; the message carries its errcode."""


@dataclass(frozen=True, slots=True)
class DailyStat:
    day: datetime
    figures: dict[str, int]


async def group_stats_by_day(
    client: httpx.AsyncClient,
    api_base: str,
    tokens: TokenCache,
    owner: str | None,
    first: datetime,
    last: datetime,
) -> list[DailyStat]:
    """Daily totals of ``owner``'s customer groups (all owners when ``None``).

    Args:
        first: local midnight of the first day (aware).
        last: local midnight of the last day, included.

    Raises:
        StatsError: WeCom answered an error (e.g. 81017: too many owners; set stat_owners).
    """
    stats: list[DailyStat] = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=MAX_SPAN_DAYS - 1))
        body: dict[str, Any] = {
            "day_begin_time": int(start.timestamp()),
            "day_end_time": int(end.timestamp()),
        }
        if owner is not None:
            body["owner_filter"] = {"userid_list": [owner]}
        answer = await _post(client, api_base, tokens, body)
        for item in answer.get("items") or []:
            if not isinstance(item, dict) or "stat_time" not in item:
                continue
            data = item.get("data") or {}
            stats.append(
                DailyStat(
                    datetime.fromtimestamp(int(item["stat_time"]), UTC),
                    {name: int(data.get(name) or 0) for name in FIELDS},
                )
            )
        start = end + timedelta(days=1)
    return stats


async def _post(
    client: httpx.AsyncClient, api_base: str, tokens: TokenCache, body: dict[str, Any]
) -> dict[str, Any]:
    for attempt in range(2):
        response = await client.post(
            f"{api_base}/cgi-bin/externalcontact/groupchat/statistic_group_by_day",
            params={"access_token": await tokens.get()},
            json=body,
        )
        try:
            answer = response.json()
        except ValueError:
            raise StatsError(f"HTTP {response.status_code} without JSON") from None
        if not isinstance(answer, dict):
            raise StatsError("the answer is not a JSON object")
        code = answer.get("errcode", 0)
        if code in (40014, 42001) and attempt == 0:
            tokens.invalidate()
            continue
        if code != 0:
            raise StatsError(f"WeCom errcode {code}: {answer.get('errmsg')}")
        return answer
    raise StatsError("WeCom kept rejecting the access token")
