"""End to end over real HTTP: platform doubles post to a running qunpulse, `stats` counts.

Hand count for the WeCom group ``wrkSFfCgAAvip`` (today, Asia/Shanghai):
    alice 3 messages, bob 2, carol 1, dave only the command ``/stats`` (1).
    messages = 3 + 2 + 1 + 1 = 7 (a command is a message a member sent)
    message_rank = alice 3, bob 2, carol 1 (commands are not conversation: dave is absent)
    active_members = 3 (alice, bob, carol); members = 4 (dave was seen in the group)
    activity_rate = 3 / 4 = 0.75; messages_per_member = 7 / 4 = 1.75
    alice's first message delivered twice, a forged callback once: neither counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from tests.conftest import DINGTALK_APP_SECRET, WECOM_AES_KEY, WECOM_TOKEN, RunningServer
from tests.doubles.dingtalk import DingTalkRobotDouble
from tests.doubles.wecom import WeComAiBotDouble

WECOM_GROUP = "wrkSFfCgAAvip"
DING_GROUP = "cidGroup2XXXX"


def stats_json(capsys: pytest.CaptureFixture[str], config: str, *args: str) -> dict:
    capsys.readouterr()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert main(["stats", "-c", config, "--date", today, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def wecom(server: RunningServer) -> WeComAiBotDouble:
    return WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)


def dingtalk(server: RunningServer) -> DingTalkRobotDouble:
    return DingTalkRobotDouble(server.callback_url("ding-bot"), DINGTALK_APP_SECRET)


async def test_wecom_aibot_url_check_answers_bare_echostr(server: RunningServer) -> None:
    response = await wecom(server).url_check("1288432023552776189")
    assert response.status_code == 200
    assert response.text == "1288432023552776189"


async def test_wecom_aibot_url_check_with_bad_signature_is_refused(server: RunningServer) -> None:
    double = WeComAiBotDouble(server.callback_url("wecom-bot"), "wrong-token", WECOM_AES_KEY)
    response = await double.url_check()
    assert response.status_code == 401


async def test_wecom_group_messages_counted_once_each(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    double = wecom(server)
    script = [
        ("m1", "alice", "今天的直播几点开始"),
        ("m2", "alice", "收到,谢谢"),
        ("m3", "bob", "产品很好用"),
        ("m4", "alice", "我也想报名"),
        ("m5", "carol", "有回放吗"),
        ("m6", "bob", "有的"),
        ("m7", "dave", "/stats"),
    ]
    for msgid, user, text in script:
        response = await double.deliver(double.group_text(msgid, WECOM_GROUP, user, text))
        assert response.status_code == 200, response.text
    redelivered = await double.deliver(
        double.group_text("m1", WECOM_GROUP, "alice", "今天的直播几点开始")
    )
    assert redelivered.status_code == 200
    forged = await double.deliver(
        double.group_text("m8", WECOM_GROUP, "mallory", "伪造"), bad_signature=True
    )
    assert forged.status_code == 401

    stats = stats_json(capsys, str(server.config_file), "--group", WECOM_GROUP)

    assert stats["group"]["source"] == "at_mentions_only"
    assert stats["messages"]["value"] == 7
    assert stats["active_members"]["value"] == 3
    assert stats["members"]["value"] == 4
    assert stats["activity_rate"]["value"] == pytest.approx(0.75)
    assert stats["messages_per_member"]["value"] == pytest.approx(1.75)
    assert (stats["joins"]["value"], stats["leaves"]["value"], stats["removed"]["value"]) == (
        0,
        0,
        0,
    )
    assert stats["net_growth"]["value"] == 0
    assert [(e["member"], e["messages"]) for e in stats["message_rank"]] == [
        ("alice", 3),
        ("bob", 2),
        ("carol", 1),
    ]


async def test_dingtalk_group_messages_stored_with_staff_id_or_sender_id(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    double = dingtalk(server)
    bodies = [
        double.group_text("msgA", DING_GROUP, "staff01", "张三", "本周活动安排?"),
        double.group_text("msgB", DING_GROUP, "staff01", "张三", "好的"),
        double.group_text(
            "msgC", DING_GROUP, None, "外部联系人", "请问怎么报名", sender_id="$:LWCP_v1:$ext9"
        ),
    ]
    for body in bodies:
        assert (await double.deliver(body)).status_code == 200
    assert (await double.deliver(bodies[0])).status_code == 200  # DingTalk retries

    stats = stats_json(capsys, str(server.config_file), "--group", DING_GROUP)

    assert stats["group"]["name"] == "产品交流群"
    assert stats["messages"]["value"] == 3
    assert [(e["member"], e["name"], e["messages"]) for e in stats["message_rank"]] == [
        ("staff01", "张三", 2),
        ("$:LWCP_v1:$ext9", "外部联系人", 1),
    ]


async def test_dingtalk_stale_or_forged_callbacks_are_refused_and_store_nothing(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    double = dingtalk(server)
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    stale = await double.deliver(
        double.group_text("old1", DING_GROUP, "staff01", "张三", "旧消息"),
        timestamp_ms=two_hours_ago,
    )
    forged = await double.deliver(
        double.group_text("bad1", DING_GROUP, "staff01", "张三", "伪造"), sign="Zm9yZ2Vk"
    )
    unsigned = await double.deliver(
        double.group_text("bad2", DING_GROUP, "staff01", "张三", "伪造"), sign=""
    )
    assert (stale.status_code, forged.status_code) == (401, 401)
    assert unsigned.status_code == 401
    assert "stale" in stale.text

    capsys.readouterr()
    assert main(["stats", "-c", str(server.config_file), "--group", DING_GROUP, "--json"]) == 2
    assert "no group" in capsys.readouterr().err


async def test_malformed_callbacks_get_400(server: RunningServer) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        not_json = await client.post(
            server.callback_url("wecom-bot"),
            params={"msg_signature": "x", "timestamp": "1", "nonce": "n"},
            content=b"<xml/>",
        )
        no_query = await client.post(server.callback_url("wecom-bot"), json={"encrypt": "abc"})
        unknown_bot = await client.post(server.callback_url("nobody"), json={})
    assert not_json.status_code == 400
    assert no_query.status_code == 400
    assert unknown_bot.status_code == 404


async def test_unknown_wecom_msgtype_is_acknowledged(server: RunningServer) -> None:
    double = wecom(server)
    response = await double.deliver(
        {
            "msgid": "ev1",
            "msgtype": "event",
            "event": {"eventtype": "enter_chat"},
            "from": {"userid": "u"},
        }
    )
    odd = await double.deliver({"msgid": "x1", "msgtype": "hologram", "from": {"userid": "u"}})
    assert (response.status_code, odd.status_code) == (200, 200)


async def test_metrics_count_received_rejected_and_duplicated(server: RunningServer) -> None:
    import httpx

    double = wecom(server)
    message = double.group_text("k1", WECOM_GROUP, "alice", "你好")
    await double.deliver(message)
    await double.deliver(message)
    await double.deliver(message, bad_signature=True)
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{server.base_url}/metrics")).text
    assert (
        'qunpulse_events_received_total{kind="wecom_aibot",platform="wecom",type="text"} 2.0'
        in text
    )
    assert 'qunpulse_events_duplicated_total{kind="wecom_aibot",platform="wecom"} 1.0' in text
    assert (
        'qunpulse_events_rejected_total{kind="wecom_aibot",platform="wecom",reason="signature"} 1.0'
        in text
    )


async def test_healthz_reports_database(server: RunningServer) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_is_503_when_the_database_is_gone(
    server: RunningServer, database_url: str
) -> None:
    import httpx
    import psycopg

    from tests.conftest import ADMIN_URL

    server.service.engine.dispose()
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
        os.mkdir(path)  # a directory where the database file was: unopenable
    else:
        name = database_url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{server.base_url}/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@contextlib.contextmanager
def writes_locked_out(database_url: str) -> Iterator[None]:
    """Another process's transaction that keeps every insert waiting until it ends."""
    if database_url.startswith("sqlite"):
        import sqlite3

        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # SQLite's one write lock
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE inbound_event IN EXCLUSIVE MODE")  # reads go on
        try:
            yield
        finally:
            holder.rollback()


async def test_a_callback_waits_for_a_locked_database_while_the_server_answers(
    server: RunningServer, database_url: str
) -> None:
    import asyncio

    import httpx
    from sqlalchemy import func, select

    from storage.models import Message

    double = wecom(server)
    with writes_locked_out(database_url):
        delivery = asyncio.create_task(
            double.deliver(double.group_text("w1", WECOM_GROUP, "alice", "锁住了吗"))
        )
        # The scheduler's lease renewal (every few seconds in `serve`) waits for the lock too.
        renewal = asyncio.create_task(server.service.scheduler.tick())
        await asyncio.sleep(0.5)
        assert not delivery.done(), "answered before the callback could be stored"
        async with httpx.AsyncClient(timeout=2) as client:  # the event loop is not blocked
            assert (await client.get(f"{server.base_url}/healthz")).status_code == 200
    response = await asyncio.wait_for(delivery, 10)
    await asyncio.wait_for(renewal, 10)
    assert response.status_code == 200, response.text
    with server.service.engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(Message)).scalar_one()
    assert stored == 1
