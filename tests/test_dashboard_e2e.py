"""The dashboard end to end: ``/dashboard`` through the DingTalk and WeCom doubles, the link
from the private message (recorded by the platform API double), then the pages over real
HTTP. The clock is injected so that links expire without waiting. Nothing of ours is
patched.

Fixture history in the DingTalk group ``cidDingOps`` (today): 张三 (staff01) 3 messages,
李四 (staff02) 2, 王五 (staff03) 1, then the operator staff_ops sends ``/dashboard``.
``stats --json`` for ``7d``: messages 7 (the command counts), active members 3, rank 张三 3.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiohttp import web

from bot.app import build_service
from config import load_settings
from storage.queries import find_group
from tests.conftest import DINGTALK_APP_SECRET, WECOM_AES_KEY, WECOM_TOKEN, write_config
from tests.doubles.api import Call, LoopbackOnly, PlatformAPI
from tests.doubles.dingtalk import DingTalkRobotDouble
from tests.doubles.wecom import WeComAiBotDouble

DING_GROUP = "cidDingOps"
WECOM_GROUP = "wrkOps"
SESSION_PATH = "/robot/sendBySession"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
RESPONSE_PATH = "/cgi-bin/aibot/response"
PUBLIC_URL = "https://qunpulse.example.com"
CHECKOUT = Path(__file__).resolve().parents[1]

CONFIG_EXTRA = """
[[groups]]
platform = "wecom"
chat_id = "wrkOps"
name = "运营群"
operators = ["opsalice"]

[operators]
dingtalk = ["staff_ops"]

[dashboard]
admin_token = "admin-token-for-tests-7Yq"

[platforms.wecom]
api_base = "{api}"

[platforms.dingtalk]
oapi_base = "{api}"
api_base = "{api}"

[platforms.feishu]
api_base = "{api}"
"""


class MovableClock:
    """The real time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _ok(_call: Call) -> tuple[int, Any]:
    return 200, {"errcode": 0, "errmsg": "ok"}


def _batch_ok(_call: Call) -> tuple[int, Any]:
    return 200, {"processQueryKey": "pqk", "invalidStaffIdList": []}


@dataclass
class Site:
    base_url: str
    api: PlatformAPI
    clock: MovableClock
    config: Path
    service: Any

    @property
    def dingtalk(self) -> DingTalkRobotDouble:
        return DingTalkRobotDouble(f"{self.base_url}/callback/ding-bot", DINGTALK_APP_SECRET)

    async def ding_say(self, msg_id: str, staff: str, nick: str, text: str) -> None:
        double = self.dingtalk
        body = double.group_text(
            msg_id, DING_GROUP, staff, nick, text, webhook_base=self.api.base_url
        )
        assert (await double.deliver(body)).status_code == 200

    async def wecom_say(self, msgid: str, user: str, text: str) -> None:
        double = WeComAiBotDouble(f"{self.base_url}/callback/wecom-bot", WECOM_TOKEN, WECOM_AES_KEY)
        payload = double.group_text(msgid, WECOM_GROUP, user, text, response_base=self.api.base_url)
        assert (await double.deliver(payload)).status_code == 200

    async def private_link(self, count: int = 1) -> str:
        """The sign-in link of the ``count``-th private DingTalk message, on this server."""
        calls = await self.api.wait_for_calls(BATCH_SEND_PATH, count)
        await self.service.dispatcher.join()
        text = json.loads(calls[count - 1].json["msgParam"])["text"]
        [url] = re.findall(r"\((https?://[^)\s]+/dashboard/signin\?token=[^)\s]+)\)", text)
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
        return f"{self.base_url}{parts.path}?{parts.query}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(follow_redirects=False, timeout=10)

    async def sign_in(self, link: str) -> str:
        """Follow a sign-in link; returns the session cookie's value."""
        async with self.client() as client:
            response = await client.get(link)
        assert response.status_code == 303, response.text
        return _session_cookie(response)

    async def get(self, path: str, session: str | None) -> httpx.Response:
        headers = {"Cookie": f"qunpulse_session={session}"} if session else {}
        async with self.client() as client:
            return await client.get(f"{self.base_url}{path}", headers=headers)


def _session_cookie(response: httpx.Response) -> str:
    header = response.headers["set-cookie"]
    match = re.match(r"qunpulse_session=([^;]+);", header)
    assert match, header
    return match.group(1)


async def _site(
    tmp_path: Path,
    database_url: str,
    api: PlatformAPI,
    public_url: str | None,
    locale: str = "zh_CN",
) -> AsyncIterator[Site]:
    config = write_config(
        tmp_path / "qunpulse.toml", database_url, CONFIG_EXTRA.format(api=api.base_url)
    )
    if public_url is not None:
        text = config.read_text(encoding="utf-8")
        line = f"public_url = {json.dumps(public_url)}\n"
        config.write_text(text.replace("[server]\n", f"[server]\n{line}", 1), encoding="utf-8")
    settings = load_settings(config, env={"QUNPULSE_LOCALE": locale})
    api.route("POST", SESSION_PATH, _ok)
    api.route("POST", RESPONSE_PATH, _ok)
    api.route("POST", BATCH_SEND_PATH, _batch_ok)
    clock = MovableClock()
    service = build_service(settings, clock=clock, http_transport=LoopbackOnly())
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.server.port).start()
    try:
        yield Site(f"http://127.0.0.1:{settings.server.port}", api, clock, config, service)
    finally:
        await runner.cleanup()


@pytest.fixture
async def site(tmp_path: Path, database_url: str, platform_api: PlatformAPI) -> AsyncIterator[Site]:
    async for running in _site(tmp_path, database_url, platform_api, PUBLIC_URL):
        yield running


async def _history(site: Site) -> None:
    for msg_id, staff, nick, text in [
        ("h1", "staff01", "张三", "今天的直播几点开始"),
        ("h2", "staff01", "张三", "收到"),
        ("h3", "staff02", "李四", "产品很好用"),
        ("h4", "staff03", "王五", "我也想报名"),
        ("h5", "staff01", "张三", "好的"),
        ("h6", "staff02", "李四", "谢谢"),
    ]:
        await site.ding_say(msg_id, staff, nick, text)


async def test_operator_link_arrives_privately_signs_in_once_and_expires(site: Site) -> None:
    await _history(site)
    await site.ding_say("c1", "staff_ops", "运营小王", "/看板")

    link = await site.private_link()
    [private] = site.api.calls_to(BATCH_SEND_PATH)
    assert private.json["userIds"] == ["staff_ops"]
    notices = [c.json["markdown"]["text"] for c in site.api.calls_to(SESSION_PATH)]
    assert notices == ["结果已私聊发给你。"]  # the group sees no link

    async with site.client() as client:
        first = await client.get(link)
        assert first.status_code == 303
        assert first.headers["location"] == "/dashboard/"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Secure" in cookie  # server.public_url is https
        again = await client.get(link)
        assert again.status_code == 403
        assert "qunpulse_session" not in again.headers.get("set-cookie", "")

    session = _session_cookie(first)
    home = await site.get("/dashboard/", session)
    assert home.status_code == 200
    assert "产品交流群" in home.text or DING_GROUP in home.text

    # A second link, used after link_minutes (10) have passed, is refused.
    await site.ding_say("c2", "staff_ops", "运营小王", "/dashboard")
    late = await site.private_link(2)
    site.clock.offset = timedelta(minutes=10, seconds=1)
    async with site.client() as client:
        assert (await client.get(late)).status_code == 403
        forged = late[:-3] + ("AAA" if not late.endswith("AAA") else "BBB")
        assert (await client.get(forged)).status_code == 403
        metrics = (await client.get(f"{site.base_url}/metrics")).text
    assert 'qunpulse_dashboard_signin_failures_total{reason="used"} 1.0' in metrics
    assert 'qunpulse_dashboard_signin_failures_total{reason="expired"} 1.0' in metrics
    assert 'qunpulse_dashboard_signin_failures_total{reason="signature"} 1.0' in metrics
    assert 'qunpulse_dashboard_signins_total{how="link"} 1.0' in metrics


async def test_session_expires_after_session_hours(site: Site) -> None:
    await _history(site)
    await site.ding_say("c1", "staff_ops", "运营小王", "/dashboard")
    session = await site.sign_in(await site.private_link())
    assert (await site.get("/dashboard/", session)).status_code == 200
    site.clock.offset = timedelta(hours=12, seconds=1)
    response = await site.get("/dashboard/", session)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"


async def test_member_asking_for_the_dashboard_is_refused(site: Site) -> None:
    await site.ding_say("m1", "staff01", "张三", "/dashboard")
    [answer] = await site.api.wait_for_calls(SESSION_PATH, 1)
    await site.service.dispatcher.join()
    text = answer.json["markdown"]["text"]
    assert "仅限本群运营者" in text
    assert "signin" not in text
    assert site.api.calls_to(BATCH_SEND_PATH) == []


async def test_wecom_group_gets_no_link_where_there_is_no_private_channel(site: Site) -> None:
    await site.wecom_say("w1", "opsalice", "/dashboard")
    [answer] = await site.api.wait_for_calls(RESPONSE_PATH, 1)
    await site.service.dispatcher.join()
    content = answer.json["markdown"]["content"]
    assert "只能私聊发送" in content
    assert "signin" not in content
    assert "token" not in content


async def test_another_operators_group_is_403(site: Site) -> None:
    await _history(site)
    await site.wecom_say("w1", "alice", "大家好")  # wrkOps: run by opsalice, not staff_ops
    await site.ding_say("c1", "staff_ops", "运营小王", "/dashboard")
    session = await site.sign_in(await site.private_link())
    engine = site.service.engine
    ding = find_group(engine, DING_GROUP, "dingtalk")
    wecom = find_group(engine, WECOM_GROUP, "wecom")
    assert ding is not None
    assert wecom is not None

    assert (await site.get(f"/dashboard/groups/{ding.id}", session)).status_code == 200
    for path in ("", "/members", "/alerts", "/export.xlsx", "/export/members.csv"):
        response = await site.get(f"/dashboard/groups/{wecom.id}{path}", session)
        assert response.status_code == 403, path
        assert "alice" not in response.text
    home = await site.get("/dashboard/", session)
    assert f"/dashboard/groups/{wecom.id}?" not in home.text
    assert (await site.get(f"/dashboard/groups/{ding.id}", None)).status_code == 303


async def test_pages_show_the_figures_of_stats_json(site: Site) -> None:
    await _history(site)
    await site.ding_say("c1", "staff_ops", "运营小王", "/dashboard")
    session = await site.sign_in(await site.private_link())
    # `python -m bot.cli` from the checkout: the same code as the server under test.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot.cli", "stats", "--group", DING_GROUP, "--period", "7d"),
        *("--json", "-c", str(site.config)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=CHECKOUT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    document = json.loads(out)
    assert document["messages"]["value"] == 7
    group = find_group(site.service.engine, DING_GROUP, "dingtalk")
    assert group is not None

    page = await site.get(f"/dashboard/groups/{group.id}?period=7d", session)
    assert page.status_code == 200
    cards = dict(
        re.findall(
            r'data-metric="(\w+)">\s*<div class="name">[^<]*</div>\s*<div class="value">([^<]*)<',
            page.text,
        )
    )
    assert cards["messages"] == str(document["messages"]["value"])
    assert cards["active_members"] == str(document["active_members"]["value"])
    assert cards["members"] == str(document["members"]["value"])
    assert cards["activity_rate"] == f"{document['activity_rate']['value'] * 100:.1f}%"
    for entry in document["message_rank"]:
        assert f"{entry['name']}: {entry['messages']}" in page.text  # the bar's tooltip
    assert page.text.count("<svg") >= 3
    for key in ("heatmap", "segments", "targets"):
        section = re.search(rf'<section class="panel" id="{key}">(.*?)</section>', page.text, re.S)
        assert section is not None
        # A metric the stats document lacks is announced, one it has is drawn.
        placeholder = "暂无数据(该指标尚未提供)" in section.group(1)
        assert placeholder == (key not in document), key
    headers = page.headers
    assert "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert "<script" not in page.text

    home = await site.get("/dashboard/?period=7d", session)
    row = re.search(rf'<tr data-group="{group.id}">(.*?)</tr>', home.text, re.S)
    assert row is not None
    assert f'data-metric="messages">{document["messages"]["value"]} ' in row.group(1)

    members = await site.get(f"/dashboard/groups/{group.id}/members?period=7d&q=张", session)
    assert members.status_code == 200
    assert 'data-member="staff01"' in members.text
    assert 'data-member="staff02"' not in members.text  # filtered out by the search
    streak = re.search(r'<tr data-member="staff01">.*?data-streak>([^<]*)<', members.text, re.S)
    assert streak is not None
    assert streak.group(1) == "1"  # spoke today, not yesterday
    ordered = await site.get(
        f"/dashboard/groups/{group.id}/members?period=7d&sort=messages&order=asc", session
    )
    found = re.findall(r'data-member="(\w+)"', ordered.text)
    assert found.index("staff03") < found.index("staff02") < found.index("staff01")

    csv = await site.get(f"/dashboard/groups/{group.id}/export/rank.csv?period=7d", session)
    assert csv.status_code == 200
    assert csv.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads Chinese
    assert "张三" in csv.content.decode("utf-8-sig")
    assert str(group.id) in csv.headers["content-disposition"]
    xlsx = await site.get(f"/dashboard/groups/{group.id}/export.xlsx?period=7d", session)
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"

    bad = await site.get(f"/dashboard/groups/{group.id}?period=fortnight", session)
    assert bad.status_code == 400
    assert "fortnight" in bad.text


async def test_admin_token_signs_in_and_sees_every_group(site: Site) -> None:
    await _history(site)
    await site.wecom_say("w1", "alice", "大家好")
    async with site.client() as client:
        wrong = await client.post(f"{site.base_url}/dashboard/login", data={"admin_token": "guess"})
        assert wrong.status_code == 403
        cross_site = await client.post(
            f"{site.base_url}/dashboard/login",
            data={"admin_token": "admin-token-for-tests-7Yq"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
        assert "set-cookie" not in cross_site.headers
        fetched_cross_site = await client.post(
            f"{site.base_url}/dashboard/login",
            data={"admin_token": "admin-token-for-tests-7Yq"},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        )
        assert fetched_cross_site.status_code == 403
        right = await client.post(
            f"{site.base_url}/dashboard/login", data={"admin_token": "admin-token-for-tests-7Yq"}
        )
        assert right.status_code == 303
        metrics = (await client.get(f"{site.base_url}/metrics")).text
    assert 'qunpulse_dashboard_signin_failures_total{reason="admin_token"} 1.0' in metrics
    assert 'qunpulse_dashboard_signin_failures_total{reason="origin"} 2.0' in metrics
    home = await site.get("/dashboard/", _session_cookie(right))
    assert home.status_code == 200
    assert home.text.count('<tr data-group="') == 2


@pytest.fixture
async def site_without_public_url(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> AsyncIterator[Site]:
    async for running in _site(tmp_path, database_url, platform_api, None):
        yield running


async def test_without_public_url_the_command_names_the_key(site_without_public_url: Site) -> None:
    site = site_without_public_url
    await site.ding_say("c1", "staff_ops", "运营小王", "/dashboard")
    [answer] = await site.api.wait_for_calls(SESSION_PATH, 1)
    await site.service.dispatcher.join()
    assert "server.public_url" in answer.json["markdown"]["text"]
    assert site.api.calls_to(BATCH_SEND_PATH) == []


@pytest.fixture
async def english_site(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> AsyncIterator[Site]:
    async for running in _site(tmp_path, database_url, platform_api, PUBLIC_URL, "en"):
        yield running


async def test_pages_read_in_english_and_label_opted_out_members(english_site: Site) -> None:
    site = english_site
    await _history(site)
    await site.ding_say("o1", "staff02", "李四", "/optout")
    await site.api.wait_for_calls(SESSION_PATH, 1)
    await site.ding_say("c1", "staff_ops", "运营小王", "/dashboard")
    text = json.loads((await site.api.wait_for_calls(BATCH_SEND_PATH, 1))[0].json["msgParam"])
    assert "Open the dashboard" in text["text"]
    session = await site.sign_in(await site.private_link())
    group = find_group(site.service.engine, DING_GROUP, "dingtalk")
    assert group is not None

    home = await site.get("/dashboard/", session)
    assert "My groups" in home.text
    assert '<html lang="en">' in home.text
    members = await site.get(f"/dashboard/groups/{group.id}/members", session)
    row = re.search(r'<tr data-member="staff02">(.*?)</tr>', members.text, re.S)
    assert row is not None
    assert "opted out" in row.group(1)
    other = re.search(r'<tr data-member="staff01">(.*?)</tr>', members.text, re.S)
    assert other is not None
    assert "opted out" not in other.group(1)


def test_the_generated_signing_key_is_kept_and_each_link_is_used_once(database_url: str) -> None:
    from storage.dashboard import stored_signing_key, use_link
    from storage.db import make_engine, upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        now = datetime.now(UTC)
        key = stored_signing_key(engine, now)
        assert len(key) >= 48
        assert stored_signing_key(engine, now + timedelta(days=1)) == key
        soon = now + timedelta(minutes=10)
        assert use_link(engine, "nonce-1", now, soon) is True
        assert use_link(engine, "nonce-1", now, soon) is False
        # Rows of links past their expiry are cleared on the next use.
        later = now + timedelta(minutes=11)
        assert use_link(engine, "nonce-2", later, later + timedelta(minutes=10)) is True
        assert use_link(engine, "nonce-1", later, later + timedelta(minutes=10)) is True
    finally:
        engine.dispose()


async def test_alerts_page_lists_the_groups_stored_alerts(site: Site) -> None:
    from sqlalchemy import insert

    from storage.models import Alert

    await _history(site)
    group = find_group(site.service.engine, DING_GROUP, "dingtalk")
    assert group is not None
    now = datetime.now(UTC)
    with site.service.engine.begin() as connection:
        connection.execute(
            insert(Alert),
            [
                {
                    "group_id": group.id,
                    "kind": "keyword",
                    "dedupe_key": "test:1",
                    "member_ids": "",
                    "sender_user_id": "staff01",
                    "sender_name": "张三",
                    "text": "我要投诉物流",
                    "keyword": "投诉",
                    "summary": "**关键词告警**",
                    "raised_at": now,
                    "state": "sent",
                }
            ],
        )
    async with site.client() as client:
        signed = await client.post(
            f"{site.base_url}/dashboard/login", data={"admin_token": "admin-token-for-tests-7Yq"}
        )
    page = await site.get(f"/dashboard/groups/{group.id}/alerts?period=7d", _session_cookie(signed))
    assert page.status_code == 200
    assert "张三: 我要投诉物流" in page.text
    assert "关键词" in page.text
    assert "sent" in page.text
    empty = await site.get(
        f"/dashboard/groups/{group.id}/alerts?period=last-month", _session_cookie(signed)
    )
    assert "这个时段没有告警" in empty.text
