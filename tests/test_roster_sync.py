"""`qunpulse roster sync` against a local double of the WeCom and Feishu server APIs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli import main
from storage.models import GroupSyncState, Member
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN, RunningServer, write_config
from tests.doubles.api import Call, PlatformAPI
from tests.doubles.connections import WeComAppDouble

CORP_ID = "ww1436e0e65a779aee"
CHAT = "wrOgQhDgAAroster"
FEISHU_CHAT = "oc_roster"


@pytest.fixture
def config_file(tmp_path: Path, database_url: str, platform_api: PlatformAPI) -> Path:
    return write_config(
        tmp_path / "qunpulse.toml",
        database_url,
        f"""
[[bots]]
id = "wecom-app"
kind = "wecom_app"
corp_id = "{CORP_ID}"
agent_id = 1000002
secret = "wecom-app-secret"
token = "{WECOM_TOKEN}"
encoding_aes_key = "{WECOM_AES_KEY}"
stat_owners = ["boss", "ops"]

[[bots]]
id = "feishu-bot"
kind = "feishu"
app_id = "cli_roster"
app_secret = "feishu-secret"
verification_token = "vt"

[[groups]]
platform = "feishu"
chat_id = "{FEISHU_CHAT}"

[platforms.wecom]
api_base = "{platform_api.base_url}"

[platforms.feishu]
api_base = "{platform_api.base_url}"
""",
    )


def stats_json(capsys: pytest.CaptureFixture[str], config: Path, group: str) -> dict:
    capsys.readouterr()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert main(["stats", "-c", str(config), "--date", today, "--json", "--group", group]) == 0
    return json.loads(capsys.readouterr().out)


def figures(stats: dict) -> tuple[int, ...]:
    return tuple(stats[k]["value"] for k in ("joins", "leaves", "removed", "members"))


async def test_roster_sync_reconciles_members_without_inventing_joins_or_leaves(
    server: RunningServer, platform_api: PlatformAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    """Callbacks: w1, w2 join; w2 leaves, after a lost event (a version gap b -> z).
    Roster: w2 (back: the rejoin event was lost) and w3 (joined yesterday, never spoke);
    w1 is missing (left unseen). Before: joins 2, leaves 1, members 1 (w1). After: joins
    and leaves unchanged, members 2 (w2, w3), re-sync flag cleared. Feishu group oc_roster,
    known only from [[groups]]: two pages of members, members 3."""
    double = WeComAppDouble(server.callback_url("wecom-app"), WECOM_TOKEN, WECOM_AES_KEY, CORP_ID)
    now = int(time.time())
    for xml in (
        double.chat_change(
            CHAT,
            "update",
            "add_member",
            members=["w1", "w2"],
            last_ver="a",
            cur_ver="b",
            create_time=now - 30,
        ),
        double.chat_change(
            CHAT,
            "update",
            "del_member",
            members=["w2"],
            quit_scene=0,
            last_ver="z",
            cur_ver="c",
            create_time=now - 20,
        ),
    ):
        assert (await double.deliver(xml)).status_code == 200
    assert figures(stats_json(capsys, server.config_file, CHAT)) == (2, 1, 0, 1)
    with server.service.engine.connect() as connection:
        assert connection.execute(select(GroupSyncState.resync_needed)).scalar_one() is True

    def groupchat_get(call: Call) -> tuple[int, Any]:
        assert call.query["access_token"].startswith("wecom-token-")
        if call.json["chat_id"] != CHAT:
            return 200, {"errcode": 40050, "errmsg": "chatid not found"}
        return 200, {
            "errcode": 0,
            "errmsg": "ok",
            "group_chat": {
                "chat_id": CHAT,
                "name": "VIP 客户群",
                "owner": "boss",
                "member_list": [
                    {
                        "userid": "w2",
                        "type": 2,
                        "join_time": now - 5,
                        "join_scene": 3,
                        "name": "王二",
                    },
                    {
                        "userid": "w3",
                        "type": 2,
                        "join_time": now - 86400,
                        "join_scene": 1,
                        "group_nickname": "小三",
                    },
                ],
            },
        }

    def feishu_members(call: Call) -> tuple[int, Any]:
        assert call.headers["authorization"].startswith("Bearer t-")
        assert call.query["member_id_type"] == "user_id"
        if call.query.get("page_token") != "p2":
            items = [{"member_id": "fa", "name": "Ann"}, {"member_id": "fb", "name": "Ben"}]
            return 200, {"code": 0, "data": {"items": items, "has_more": True, "page_token": "p2"}}
        return 200, {
            "code": 0,
            "data": {"items": [{"member_id": "fc", "name": "Cy"}], "has_more": False},
        }

    platform_api.route("POST", "/cgi-bin/externalcontact/groupchat/get", groupchat_get)
    platform_api.route("GET", f"/open-apis/im/v1/chats/{FEISHU_CHAT}/members", feishu_members)

    capsys.readouterr()
    code = await asyncio.to_thread(main, ["roster", "sync", "-c", str(server.config_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"wecom {CHAT}: 2 members (1 newly seen, 1 back, 1 gone)" in out
    assert f"feishu {FEISHU_CHAT}: 3 members (3 newly seen, 0 back, 0 gone)" in out

    stats = stats_json(capsys, server.config_file, CHAT)
    assert figures(stats) == (2, 1, 0, 2)
    assert stats["group"]["name"] == "VIP 客户群"
    feishu_stats = stats_json(capsys, server.config_file, FEISHU_CHAT)
    assert figures(feishu_stats) == (0, 0, 0, 3)
    assert feishu_stats["group"]["source"] == "full"
    with server.service.engine.connect() as connection:
        assert connection.execute(select(GroupSyncState.resync_needed)).scalars().all() == [
            False,
            False,
        ]
        names = dict(connection.execute(select(Member.user_id, Member.display_name)).all())
    assert (names["w2"], names["w3"], names["fb"]) == ("王二", "小三", "Ben")

    # A second sync changes nothing.
    capsys.readouterr()
    assert (
        await asyncio.to_thread(
            main, ["roster", "sync", "-c", str(server.config_file), "--group", CHAT]
        )
        == 0
    )
    assert f"wecom {CHAT}: 2 members (0 newly seen, 0 back, 0 gone)" in capsys.readouterr().out
    assert figures(stats_json(capsys, server.config_file, CHAT)) == (2, 1, 0, 2)


async def test_roster_sync_reports_groups_the_platform_refuses(
    server: RunningServer, platform_api: PlatformAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    platform_api.route(
        "GET",
        f"/open-apis/im/v1/chats/{FEISHU_CHAT}/members",
        lambda call: (200, {"code": 232011, "msg": "bot is not in the chat"}),
    )
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["roster", "sync", "-c", str(server.config_file)])
    assert code == 1
    assert "not synced: Feishu code 232011" in capsys.readouterr().out


async def test_wecom_group_statistics_are_stored_per_owner_and_day(
    server: RunningServer, platform_api: PlatformAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    """--days 3: one call per owner for [today-3, today-1]; WeCom answers three days each.
    A second pull with revised figures updates the rows instead of adding any."""
    from storage.models import WecomGroupDailyStat

    revision = {"n": 0}

    def by_day(call: Call) -> tuple[int, Any]:
        body = call.json
        owner = body["owner_filter"]["userid_list"][0]
        begin, end = body["day_begin_time"], body["day_end_time"]
        assert end - begin == 2 * 86400
        assert begin % 86400 == 16 * 3600  # local midnight in Asia/Shanghai
        items = [
            {
                "stat_time": begin + day * 86400,
                "data": {
                    "new_chat_cnt": 0,
                    "chat_total": 2,
                    "chat_has_msg": 1,
                    "new_member_cnt": day + revision["n"],
                    "member_total": 40,
                    "member_has_msg": 5,
                    "msg_total": 100 if owner == "boss" else 7,
                    "migrate_trainee_chat_cnt": 0,
                },
            }
            for day in range(3)
        ]
        return 200, {"errcode": 0, "errmsg": "ok", "items": items}

    platform_api.route("POST", "/cgi-bin/externalcontact/groupchat/statistic_group_by_day", by_day)
    capsys.readouterr()
    args = ["wecom-stats", "pull", "-c", str(server.config_file), "--days", "3"]
    assert await asyncio.to_thread(main, args) == 0
    assert "wecom-app owner boss: 3 days stored" in capsys.readouterr().out
    revision["n"] = 10
    assert await asyncio.to_thread(main, args) == 0
    with server.service.engine.connect() as connection:
        rows = connection.execute(
            select(
                WecomGroupDailyStat.owner,
                WecomGroupDailyStat.msg_total,
                WecomGroupDailyStat.new_member_cnt,
            )
        ).all()
    assert len(rows) == 6
    assert sorted({(r.owner, r.msg_total) for r in rows}) == [("boss", 100), ("ops", 7)]
    assert sorted(r.new_member_cnt for r in rows if r.owner == "boss") == [10, 11, 12]


async def test_the_daily_roster_sync_job_runs_the_same_sync(
    server: RunningServer, platform_api: PlatformAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    """`roster_sync` is a scheduled job ([schedule] roster_sync); `qunpulse run` runs it now."""
    platform_api.route(
        "GET",
        f"/open-apis/im/v1/chats/{FEISHU_CHAT}/members",
        lambda call: (200, {"code": 232011, "msg": "bot is not in the chat"}),
    )
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["run", "roster_sync", "-c", str(server.config_file)])
    assert code == 0
    assert f"roster feishu {FEISHU_CHAT}: Feishu code 232011" in capsys.readouterr().err
    assert platform_api.calls_to(f"/open-apis/im/v1/chats/{FEISHU_CHAT}/members")
