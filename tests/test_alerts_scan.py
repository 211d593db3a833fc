"""``alert_scan`` (spikes against the ``anomalies`` baseline), ``qunpulse alerts`` and the
export's Alerts sheet, as a user runs them: real processes against the API double.

History, all at the same minute of the hour as "now" (so in the hour being scanned):
    each of the 4 weeks before: 1, 2, 1, 2 messages and no leaves
    now: 12 messages (mean 1.5, σ 0.5: 12 > 1.5 + 3 × 0.5) and 4 leaves (> 0 + 3 × 0)
So the scan finds a message-volume spike and a leaves spike: two alerts, sent once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.events import Chat, ChatId, MembershipEvent, MessageEvent, Person, UserId
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN, write_config
from tests.doubles.api import Call, PlatformAPI
from tests.test_run_cli import qunpulse

APP_SEND = "/cgi-bin/message/send"

EXTRA = """
[[bots]]
id = "wecom-app"
kind = "wecom_app"
corp_id = "wwscan"
agent_id = 1000003
secret = "scan-app-secret"
token = "{token}"
encoding_aes_key = "{aes}"

[[groups]]
platform = "wecom"
chat_id = "g1"
name = "扫描群"
operators = ["opsalice"]

[platforms.wecom]
api_base = "{api}"
"""


def _message(msg_id: str, user: str, at: datetime) -> MessageEvent:
    return MessageEvent(
        platform="wecom",
        bot_id="b",
        message_id=msg_id,
        chat=Chat(ChatId("g1"), "group", "测试群"),
        sender=Person(UserId(user), user),
        msg_type="text",
        text="大家好",
        sent_at=at,
        source="full",
    )


def _leave(event_id: str, user: str, at: datetime) -> MembershipEvent:
    return MembershipEvent(
        platform="wecom",
        bot_id="b",
        event_id=event_id,
        chat=Chat(ChatId("g1"), "group"),
        change="leave",
        members=(Person(UserId(user)),),
        occurred_at=at,
    )


def _ok(_call: Call) -> tuple[int, Any]:
    return 200, {"errcode": 0, "errmsg": "ok"}


async def test_alert_scan_sends_spikes_once_and_alerts_lists_them(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    platform_api.route("POST", APP_SEND, _ok)
    config = write_config(
        tmp_path / "qunpulse.toml",
        database_url,
        EXTRA.format(token=WECOM_TOKEN, aes=WECOM_AES_KEY, api=platform_api.base_url),
    )
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    events: list[Any] = []
    for week, count in zip(range(1, 5), (1, 2, 1, 2), strict=True):
        at = now - timedelta(weeks=week)
        events += [_message(f"w{week}-{i}", f"u{i}", at) for i in range(count)]
    events += [_message(f"now-{i}", f"u{i}", now) for i in range(12)]
    events += [_leave(f"leave-{i}", f"gone{i}", now) for i in range(4)]
    engine = make_engine(database_url)
    upgrade(engine)
    EventStore(engine).store([events])
    engine.dispose()

    code, _out, err = await qunpulse("run", "alert_scan", "-c", str(config))
    assert code == 0, err
    assert "alert_scan: 2 post(s) queued" in err
    calls = platform_api.calls_to(APP_SEND)
    assert len(calls) == 2
    [volume] = [
        c.json["markdown"]["content"]
        for c in calls
        if "消息量异常" in c.json["markdown"]["content"]
    ]
    [leaves] = [
        c.json["markdown"]["content"]
        for c in calls
        if "退群人数异常" in c.json["markdown"]["content"]
    ]
    assert "这一小时:12,过去 4 周同一时段平均 1.5(σ 0.5)" in volume
    assert "这一小时:4,过去 4 周同一时段平均 0.0(σ 0.0)" in leaves
    assert all(c.json["touser"] == "opsalice" for c in calls)

    code, _out, err = await qunpulse("run", "alert_scan", "-c", str(config))
    assert code == 0, err
    assert "alert_scan: 0 post(s) queued" in err  # the same hour's spikes are raised once
    assert len(platform_api.calls_to(APP_SEND)) == 2

    code, out, err = await qunpulse("alerts", "-c", str(config), "--group", "g1")
    assert code == 0, err
    assert "spike_leaves" in out
    assert "spike_messages" in out
    assert out.count("sent") >= 2
    assert "stored by kind: spike_leaves: 1, spike_messages: 1" in out

    tomorrow = (now + timedelta(days=2)).date().isoformat()
    code, out, err = await qunpulse("alerts", "-c", str(config), "--since", tomorrow)
    assert code == 0, err
    assert "0 shown" in out
