"""DingTalk Stream mode through a local WebSocket double of the gateway.

qunpulse dials the double (``platforms.dingtalk.api_base`` points at it), the double
pushes frames as DingTalk does and records the acks.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.app import build_service
from bot.cli import main
from config import load_settings
from storage.models import Message
from tests.conftest import RunningServer, write_config
from tests.doubles.dingtalk import DingTalkRobotDouble
from tests.doubles.dingtalk_gateway import StreamGateway

APP_KEY = "dingstreamkey"
APP_SECRET = "stream-secret-Q9"
TOPIC = "/v1.0/im/bot/messages/get"
GROUP = "cidStreamGroup"


def stream_config(gateway_url: str, secret: str = APP_SECRET) -> str:
    return f"""
[[bots]]
id = "ding-stream"
kind = "dingtalk_robot"
app_key = "{APP_KEY}"
app_secret = "{secret}"
robot_code = "dingrobot"
mode = "stream"

[platforms.dingtalk]
api_base = "{gateway_url}"
stream_backoff_initial_seconds = 0.05
stream_backoff_max_seconds = 0.2
"""


@pytest.fixture
async def gateway() -> AsyncIterator[StreamGateway]:
    double = StreamGateway(APP_KEY, APP_SECRET)
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
def config_file(tmp_path: Path, database_url: str, gateway: StreamGateway) -> Path:
    return write_config(tmp_path / "qunpulse.toml", database_url, stream_config(gateway.base_url))


def robot_body(msg_id: str, staff: str, nick: str, text: str) -> dict:
    return DingTalkRobotDouble("unused", APP_SECRET).group_text(msg_id, GROUP, staff, nick, text)


def messages_in_db(server: RunningServer) -> int:
    with server.service.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Message)).scalar_one())


def stats_json(capsys: pytest.CaptureFixture[str], config: Path, group: str) -> dict:
    capsys.readouterr()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert main(["stats", "-c", str(config), "--date", today, "--json", "--group", group]) == 0
    return json.loads(capsys.readouterr().out)


async def test_stream_messages_are_stored_before_ack_and_never_doubled(
    server: RunningServer, gateway: StreamGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """staff01 sends S1, S2; staff02 sends S3; S1 is redelivered in a new frame: 3 messages."""
    await gateway.wait_connected()
    assert gateway.opens[0]["clientId"] == APP_KEY
    first = await gateway.push("CALLBACK", TOPIC, robot_body("S1", "staff01", "张三", "第一条"))
    ack = await gateway.ack_of(first)
    assert (ack["code"], ack["headers"]["messageId"]) == (200, first)
    assert messages_in_db(server) == 1  # stored by the time it was acknowledged
    for body in (
        robot_body("S2", "staff01", "张三", "第二条"),
        robot_body("S3", "staff02", "李四", "第三条"),
        robot_body("S1", "staff01", "张三", "第一条"),
    ):
        assert (await gateway.ack_of(await gateway.push("CALLBACK", TOPIC, body)))["code"] == 200

    stats = stats_json(capsys, server.config_file, GROUP)
    assert stats["messages"]["value"] == 3
    assert stats["group"]["source"] == "at_mentions_only"
    assert [(e["member"], e["messages"]) for e in stats["message_rank"]] == [
        ("staff01", 2),
        ("staff02", 1),
    ]
    metrics = server.service.telemetry.render().decode()
    assert (
        'qunpulse_events_duplicated_total{kind="dingtalk_robot",platform="dingtalk"} 1.0' in metrics
    )


async def test_stream_reconnects_after_a_drop_and_a_disconnect_request(
    server: RunningServer, gateway: StreamGateway
) -> None:
    await gateway.wait_connected(1)
    await gateway.drop()
    await gateway.wait_connected(2)
    ping = await gateway.push("SYSTEM", "ping", {"opaque": "x1"})
    pong = await gateway.ack_of(ping)
    assert (pong["code"], json.loads(pong["data"])) == (200, {"opaque": "x1"})
    await gateway.push("SYSTEM", "disconnect", {"reason": "redeploy"})
    await gateway.wait_connected(3)
    after = await gateway.push("CALLBACK", TOPIC, robot_body("R1", "staff01", "张三", "回来了"))
    assert (await gateway.ack_of(after))["code"] == 200
    assert messages_in_db(server) == 1
    assert len(gateway.opens) == 3  # a fresh ticket for each connection


async def test_stream_unknown_and_malformed_frames(
    server: RunningServer, gateway: StreamGateway
) -> None:
    await gateway.wait_connected()
    other = await gateway.push("CALLBACK", "/v1.0/card/instances/callback", {"x": 1})
    odd = await gateway.push(
        "CALLBACK", TOPIC, robot_body("U1", "s", "n", "x") | {"msgtype": "hologram"}
    )
    broken = robot_body("B1", "s", "n", "x")
    del broken["msgId"]
    bad = await gateway.push("CALLBACK", TOPIC, broken)
    assert (await gateway.ack_of(other))["code"] == 200
    assert (await gateway.ack_of(odd))["code"] == 200
    assert (await gateway.ack_of(bad))["code"] == 400
    assert messages_in_db(server) == 0


async def test_stream_membership_events(
    server: RunningServer, gateway: StreamGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over the EVENT topic: m1, m2, m3 join; m2 quits; m3 removed. joins 3, leaves 1,
    removed 1, members 1, net 1; the join frame redelivered is not doubled."""
    await gateway.wait_connected()
    now = int(time.time() * 1000)

    async def event(event_id: str, kind: str, users: list[str]) -> str:
        data = {
            "openConversationId": GROUP,
            "chatId": "chatS",
            "userId": users,
            "operator": "admin",
            "timeStamp": now,
        }
        return await gateway.push(
            "EVENT", "*", data, eventId=event_id, eventType=kind, eventBornTime=str(now)
        )

    frames = [
        await event("se1", "chat_add_member", ["m1", "m2", "m3"]),
        await event("se2", "chat_quit", ["m2"]),
        await event("se3", "chat_remove_member", ["m3"]),
        await event("se1", "chat_add_member", ["m1", "m2", "m3"]),
        await event("se4", "org_dept_create", []),
    ]
    for frame in frames:
        assert (await gateway.ack_of(frame))["code"] == 200
    stats = stats_json(capsys, server.config_file, GROUP)
    assert tuple(
        stats[k]["value"] for k in ("joins", "leaves", "removed", "members", "net_growth")
    ) == (3, 1, 1, 1, 1)


async def test_stream_with_wrong_secret_keeps_retrying_without_connecting(
    tmp_path: Path, database_url: str, gateway: StreamGateway
) -> None:
    config = write_config(
        tmp_path / "wrong.toml", database_url, stream_config(gateway.base_url, "wrong")
    )
    settings = load_settings(config, env={})
    service = build_service(settings)
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    try:
        await gateway.wait_refused(2)
        assert service.streams[0].connections == 0
    finally:
        await runner.cleanup()
