"""Pull group member lists (rosters) from the platforms' server APIs.

- WeCom customer groups: ``POST {api_base}/cgi-bin/externalcontact/groupchat/get``
  ``{"chat_id", "need_name": 1}`` with a self-built app's token (the app must be a
  客户联系 "可调用接口的应用") → ``group_chat{name, member_list[{userid, type,
  join_time, join_scene, name}]}``. https://developer.work.weixin.qq.com/document/path/92122
- Feishu: ``GET {api_base}/open-apis/im/v1/chats/{chat_id}/members?member_id_type=user_id``
  paged by ``page_token`` → ``data{items[{member_id, name}], has_more, page_token}``; no join
  times; bots are not listed. https://open.feishu.cn/document/server-docs/group/chat-member/get
- DingTalk: no API lists the members of an ordinary group to an internal app, so
  DingTalk groups are not synced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.platforms.tokens import TokenCache
from storage.roster import RosterEntry

log = logging.getLogger(__name__)


class RosterError(Exception):
    """The platform would not give this group's roster; the message says why."""


@dataclass(frozen=True, slots=True)
class Roster:
    name: str | None
    entries: tuple[RosterEntry, ...]


async def wecom_roster(
    client: httpx.AsyncClient, api_base: str, tokens: TokenCache, chat_id: str
) -> Roster:
    """The roster of one WeCom customer group.

    Raises:
        RosterError: WeCom answered an error (e.g. 40050: not a customer group).
    """
    for attempt in range(2):
        token = await tokens.get()
        response = await client.post(
            f"{api_base}/cgi-bin/externalcontact/groupchat/get",
            params={"access_token": token},
            json={"chat_id": chat_id, "need_name": 1},
        )
        body = _json(response)
        code = body.get("errcode", 0)
        if code in (40014, 42001) and attempt == 0:
            tokens.invalidate()  # the token expired early: fetch a new one once
            continue
        if code != 0:
            raise RosterError(f"WeCom errcode {code}: {body.get('errmsg')}")
        chat = body.get("group_chat") or {}
        entries = tuple(
            RosterEntry(
                user_id=str(item["userid"]),
                name=item.get("group_nickname") or item.get("name") or None,
                joined_at=_seconds(item.get("join_time")),
            )
            for item in chat.get("member_list") or []
            if isinstance(item, dict) and item.get("userid")
        )
        return Roster(chat.get("name") or None, entries)
    raise RosterError("WeCom kept rejecting the access token")


async def feishu_roster(
    client: httpx.AsyncClient, api_base: str, tokens: TokenCache, chat_id: str
) -> Roster:
    """The roster of one Feishu group (all pages).

    Raises:
        RosterError: Feishu answered an error (e.g. the bot is not in the group).
    """
    entries: list[RosterEntry] = []
    page_token = ""
    while True:
        params = {"member_id_type": "user_id", "page_size": "100"}
        if page_token:
            params["page_token"] = page_token
        token = await tokens.get()
        response = await client.get(
            f"{api_base}/open-apis/im/v1/chats/{chat_id}/members",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )
        body = _json(response)
        if body.get("code", 0) != 0:
            if body.get("code") == 99991663:
                tokens.invalidate()
            raise RosterError(f"Feishu code {body.get('code')}: {body.get('msg')}")
        data = body.get("data") or {}
        entries.extend(
            RosterEntry(user_id=str(item["member_id"]), name=item.get("name") or None)
            for item in data.get("items") or []
            if isinstance(item, dict) and item.get("member_id")
        )
        page_token = str(data.get("page_token") or "")
        if not data.get("has_more") or not page_token:
            return Roster(None, tuple(entries))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise RosterError(f"HTTP {response.status_code} without JSON") from None
    if not isinstance(body, dict):
        raise RosterError("the answer is not a JSON object")
    return body


def _seconds(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None
