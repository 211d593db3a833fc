"""Private alerts end to end: platform doubles post group messages over real HTTP to a
running qunpulse; its background scorer scores them (interval 0.05 s here) and the alerts
arrive, privately, at the platform API double (WeCom app message, DingTalk robot 1:1).
Nothing of ours is patched; every wait is on a condition.

SnowNLP scores of the texts used (computed with analytics.sentiment.score):
    NEGATIVE   你们的产品太差了,垃圾客服,完全没人管,气死我了   0.0
    NEGATIVE_2 质量太差了,非常失望,再也不买了                   0.0041
    NEGATIVE_3 发货太慢了,等了一个星期还没到,非常生气           0.0298
    NEGATIVE_4 一直等不到回复,很失望                             0.0293
    KEYWORD    这个活动我想投诉一下流程                           0.273 (above 0.15: only the keyword alerts)
    NEUTRAL    我想问一下这个课程怎么报名                         0.7792
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.app import Service, build_service, system_clock
from bot.retention import run_retention
from bot.sentiment import Scored
from bot.telemetry import Telemetry
from config import Settings, load_settings
from storage.alerts import AlertStore
from storage.models import OutboxPost
from storage.privacy import forget_member
from tests.conftest import (
    DINGTALK_APP_SECRET,
    WECOM_AES_KEY,
    WECOM_TOKEN,
    write_config,
)
from tests.doubles.api import Call, LoopbackOnly, PlatformAPI
from tests.doubles.dingtalk import DingTalkRobotDouble
from tests.doubles.wecom import WeComAiBotDouble

NEGATIVE = "你们的产品太差了,垃圾客服,完全没人管,气死我了"
NEGATIVE_2 = "质量太差了,非常失望,再也不买了"
NEGATIVE_3 = "发货太慢了,等了一个星期还没到,非常生气"
NEGATIVE_4 = "一直等不到回复,很失望"
KEYWORD = "这个活动我想投诉一下流程"
NEUTRAL = "我想问一下这个课程怎么报名"

WECOM_GROUP = "wrkAlerts"
DING_GROUP = "cidDingAlerts"
APP_SEND = "/cgi-bin/message/send"
BATCH_SEND = "/v1.0/robot/oToMessages/batchSend"
GROUP_WEBHOOK = "/cgi-bin/webhook/send"
DING_GROUP_WEBHOOK = "/robot/send"

CONFIG_EXTRA = """
[[bots]]
id = "wecom-app"
kind = "wecom_app"
corp_id = "wwalertcorp"
agent_id = 1000002
secret = "wecom-app-secret-Alerts"
token = "{token}"
encoding_aes_key = "{aes}"

[[groups]]
platform = "wecom"
chat_id = "{wecom_group}"
name = "VIP 用户群"
webhook = "{api}/cgi-bin/webhook/send?key=member-group"
operators = ["opsalice"]

[[groups]]
platform = "dingtalk"
chat_id = "{ding_group}"
name = "钉钉体验群"
webhook = "{api}/robot/send?access_token=member-group"
operators = ["staff01"]

[operators]
wecom = ["opsbob"]

[alerts]
negative_threshold = 0.15
burst_count = 3
burst_window_minutes = 30
keywords = ["投诉", "退款"]
cooldown_minutes = 60

[sentiment]
interval_seconds = 0.05

[platforms.wecom]
api_base = "{api}"

[platforms.dingtalk]
oapi_base = "{api}"
api_base = "{api}"

[platforms.feishu]
api_base = "{api}"
"""


def _wecom_ok(_call: Call) -> tuple[int, Any]:
    return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": ""}


def _batch_ok(_call: Call) -> tuple[int, Any]:
    return 200, {
        "processQueryKey": "pqk",
        "invalidStaffIdList": [],
        "flowControlledStaffIdList": [],
    }


def _ding_ok(_call: Call) -> tuple[int, Any]:
    return 200, {"errcode": 0, "errmsg": "ok"}


@dataclass
class Running:
    service: Service
    settings: Settings
    base_url: str
    api: PlatformAPI

    async def wecom_say(self, msgid: str, user: str, text: str) -> None:
        double = WeComAiBotDouble(f"{self.base_url}/callback/wecom-bot", WECOM_TOKEN, WECOM_AES_KEY)
        payload = double.group_text(msgid, WECOM_GROUP, user, text, response_base=self.api.base_url)
        response = await double.deliver(payload)
        assert response.status_code == 200, response.text

    async def ding_say(
        self, msg_id: str, staff: str, nick: str, text: str, chat: str = DING_GROUP
    ) -> None:
        double = DingTalkRobotDouble(f"{self.base_url}/callback/ding-bot", DINGTALK_APP_SECRET)
        body = double.group_text(msg_id, chat, staff, nick, text, webhook_base=self.api.base_url)
        response = await double.deliver(body)
        assert response.status_code == 200, response.text

    def alerts(self) -> list[Any]:
        return list(reversed(AlertStore(self.service.engine).list()))

    def app_messages(self) -> list[dict[str, Any]]:
        return [c.json for c in self.api.calls_to(APP_SEND)]

    def group_posts(self) -> list[str]:
        calls = self.api.calls_to(GROUP_WEBHOOK) + self.api.calls_to(DING_GROUP_WEBHOOK)
        return [c.body.decode() for c in calls]


def _settings(tmp_path: Path, database_url: str, api: PlatformAPI) -> Settings:
    extra = CONFIG_EXTRA.format(
        api=api.base_url,
        token=WECOM_TOKEN,
        aes=WECOM_AES_KEY,
        wecom_group=WECOM_GROUP,
        ding_group=DING_GROUP,
    )
    return load_settings(write_config(tmp_path / "qunpulse.toml", database_url, extra), env={})


@contextlib.asynccontextmanager
async def _running(
    settings: Settings, api: PlatformAPI, *, run_scheduler: bool = True
) -> AsyncIterator[Running]:
    service = build_service(settings, http_transport=LoopbackOnly(), run_scheduler=run_scheduler)
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.server.port)
    await site.start()
    try:
        yield Running(service, settings, f"http://127.0.0.1:{settings.server.port}", api)
    finally:
        await runner.cleanup()


@pytest.fixture
async def running(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> AsyncIterator[Running]:
    for path, handler in (
        (APP_SEND, _wecom_ok),
        (BATCH_SEND, _batch_ok),
        (GROUP_WEBHOOK, _wecom_ok),
        (DING_GROUP_WEBHOOK, _ding_ok),
    ):
        platform_api.route("POST", path, handler)
    async with _running(_settings(tmp_path, database_url, platform_api), platform_api) as run:
        yield run


def _scored_listener(service: Service) -> asyncio.Queue[list[Scored]]:
    """Batches the scorer finished (after the alert listener ran: it was added first)."""
    batches: asyncio.Queue[list[Scored]] = asyncio.Queue()

    async def listen(scored: list[Scored]) -> None:
        await batches.put(scored)

    service.sentiment.listeners.append(listen)
    return batches


async def _wait_scored(batches: asyncio.Queue[list[Scored]], count: int) -> None:
    seen = 0
    while seen < count:
        seen += len(await asyncio.wait_for(batches.get(), 10))


async def test_negative_wecom_message_reaches_the_operators_privately_once(
    running: Running,
) -> None:
    started = time.monotonic()
    await running.wecom_say("w1", "angry", NEGATIVE)

    [call] = await running.api.wait_for_calls(APP_SEND, 1)
    took = time.monotonic() - started
    await running.service.sender.drain()

    assert took < 30, f"the alert took {took:.1f} s"
    assert call.query["access_token"].startswith("wecom-token-")
    [token_call] = running.api.calls_to("/cgi-bin/gettoken")
    assert token_call.query == {"corpid": "wwalertcorp", "corpsecret": "wecom-app-secret-Alerts"}
    body = call.json
    assert body["touser"] == "opsalice|opsbob"  # the group's operators, then [operators].wecom
    assert body["agentid"] == 1000002
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert NEGATIVE in content
    assert "angry" in content
    assert "VIP 用户群" in content
    assert "0.00" in content
    assert not any(NEGATIVE in post for post in running.group_posts())
    [alert] = running.alerts()
    assert (alert.kind, alert.state, alert.sender_user_id, alert.text) == (
        "negative",
        "sent",
        "angry",
        NEGATIVE,
    )
    assert alert.score is not None
    assert alert.score <= 0.15
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{running.base_url}/metrics")).text
    assert 'qunpulse_alerts_raised_total{kind="negative"} 1.0' in metrics

    # The same message delivered again is stored once, so it never alerts twice.
    await running.wecom_say("w1", "angry", NEGATIVE)
    await running.wecom_say("w2", "calm", KEYWORD)
    await running.api.wait_for_calls(APP_SEND, 2)
    await running.service.sender.drain()
    assert [a.kind for a in running.alerts()] == ["negative", "keyword"]

    # Forgetting the member deletes the alerts naming them, and their queued posts.
    forget_member(running.service.engine, "wecom", "angry", purge=False)
    assert [a.sender_user_id for a in running.alerts()] == ["calm"]
    with running.service.engine.connect() as connection:
        posts = connection.execute(
            select(OutboxPost.body).where(OutboxPost.job == "alert")  # type: ignore[arg-type]
        ).scalars()
        assert not any(NEGATIVE in body for body in posts)


async def test_dingtalk_alert_goes_by_robot_one_to_one_and_expires_with_retention(
    running: Running,
) -> None:
    await running.ding_say("d1", "staff_angry", "小王", NEGATIVE)

    [call] = await running.api.wait_for_calls(BATCH_SEND, 1)
    await running.service.sender.drain()

    assert call.headers["x-acs-dingtalk-access-token"].startswith("ding-token-")
    body = call.json
    assert body["robotCode"] == "dingrobot"
    assert body["userIds"] == ["staff01"]
    assert body["msgKey"] == "sampleMarkdown"
    param = json.loads(body["msgParam"])
    assert NEGATIVE in param["text"]
    assert "小王" in param["text"]
    assert "staff_angry" in param["text"]
    assert "钉钉体验群" in param["title"]
    assert not any(NEGATIVE in post for post in running.group_posts())
    [alert] = running.alerts()
    assert (alert.kind, alert.state, alert.sender_name) == ("negative", "sent", "小王")

    now = system_clock()
    run_retention(running.service.engine, running.settings, now + timedelta(days=89), Telemetry())
    assert len(running.alerts()) == 1  # alerts_days = 90: not yet
    run_retention(running.service.engine, running.settings, now + timedelta(days=91), Telemetry())
    assert running.alerts() == []


async def test_keyword_in_a_neutral_sentence_alerts_and_a_neutral_message_does_not(
    running: Running,
) -> None:
    await running.wecom_say("n1", "curious", NEUTRAL)
    await running.wecom_say("k1", "calm", KEYWORD)

    [call] = await running.api.wait_for_calls(APP_SEND, 1)
    await running.service.sender.drain()

    content = call.json["markdown"]["content"]
    assert KEYWORD in content
    assert "投诉" in content
    assert NEUTRAL not in content
    [alert] = running.alerts()
    assert (alert.kind, alert.keyword, alert.sender_user_id) == ("keyword", "投诉", "calm")
    assert alert.score is not None
    assert alert.score > 0.15
    assert len(running.app_messages()) == 1


async def test_three_negative_messages_raise_one_burst_and_a_fourth_nothing(
    running: Running,
) -> None:
    for msgid, text in (("b1", NEGATIVE), ("b2", NEGATIVE_2), ("b3", NEGATIVE_3)):
        await running.wecom_say(msgid, "angry", text)
    await running.api.wait_for_calls(APP_SEND, 2)
    await running.service.sender.drain()

    # The first alerts on its own; the second is the same sender inside the cooldown;
    # the third makes three in the window: one burst alert quoting all three.
    assert [a.kind for a in running.alerts()] == ["negative", "burst"]
    burst = running.app_messages()[1]["markdown"]["content"]
    assert all(text in burst for text in (NEGATIVE, NEGATIVE_2, NEGATIVE_3))

    # A fourth within the cooldown: no single alert (the burst speaks for it), no second
    # burst. A keyword message afterwards shows the fourth has been through the scorer.
    await running.wecom_say("b4", "angry", NEGATIVE_4)
    await running.wecom_say("b5", "calm", KEYWORD)
    await running.api.wait_for_calls(APP_SEND, 3)
    await running.service.sender.drain()

    assert [a.kind for a in running.alerts()] == ["negative", "burst", "keyword"]
    assert not any(NEGATIVE_4 in m["markdown"]["content"] for m in running.app_messages())
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{running.base_url}/metrics")).text
    assert 'qunpulse_alerts_raised_total{kind="burst"} 1.0' in metrics
    assert 'qunpulse_alerts_suppressed_total{kind="burst",reason="cooldown"} 1.0' in metrics


async def test_an_alert_stored_before_a_restart_is_sent_once_after_it(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    platform_api.route("POST", APP_SEND, _wecom_ok)
    platform_api.route("POST", GROUP_WEBHOOK, _wecom_ok)
    platform_api.route("POST", DING_GROUP_WEBHOOK, _ding_ok)
    settings = _settings(tmp_path, database_url, platform_api)
    # First process: scores and stores the alert, but holds no lease, so sends nothing.
    async with _running(settings, platform_api, run_scheduler=False) as first:
        batches = _scored_listener(first.service)
        await first.wecom_say("r1", "angry", NEGATIVE)
        await _wait_scored(batches, 1)
        [stored] = first.alerts()
        assert stored.state == "pending"
    assert platform_api.calls_to(APP_SEND) == []

    async with _running(settings, platform_api) as second:
        await platform_api.wait_for_calls(APP_SEND, 1)
        await second.service.sender.drain()
        [alert] = second.alerts()
        assert alert.state == "sent"
    async with _running(settings, platform_api) as third:
        await third.service.sender.drain()
    assert len(platform_api.calls_to(APP_SEND)) == 1


async def test_a_group_without_operators_stores_the_alert_and_says_which_key_to_set(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    batches = _scored_listener(running.service)
    with caplog.at_level(logging.WARNING, logger="handlers.alerts"):
        await running.ding_say("x1", "staff_x", "小李", NEGATIVE, chat="cidNobodyRunsIt")
        await _wait_scored(batches, 1)

    [alert] = running.alerts()
    assert alert.state == "failed"
    assert alert.error is not None
    assert "[operators].dingtalk" in alert.error
    assert any("[operators].dingtalk" in r.getMessage() for r in caplog.records)
    assert running.api.calls_to(BATCH_SEND) == []
    with running.service.engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).select_from(OutboxPost).where(OutboxPost.job.like("alert%"))  # type: ignore[attr-defined]
            ).scalar()
            == 0
        )


FEISHU_EXTRA = """
[[bots]]
id = "feishu-bot"
kind = "feishu"
app_id = "cli_alerts"
app_secret = "feishu-alert-secret"
verification_token = "feishu-alert-token"

[[groups]]
platform = "feishu"
chat_id = "oc_alerts"
name = "飞书用户群"
webhook = "{api}/open-apis/bot/v2/hook/member-group"
operators = ["ou_opsfei"]

[operators]
feishu = ["opsuser2"]

[alerts]
webhook = "{api}/open-apis/bot/v2/hook/operators-only"

[sentiment]
interval_seconds = 0.05

[platforms.feishu]
api_base = "{api}"
"""


async def test_feishu_alert_goes_to_each_operator_and_the_operators_webhook(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    from tests.doubles.connections import FeishuDouble

    def sent(_call: Call) -> tuple[int, Any]:
        return 200, {"code": 0, "msg": "success", "data": {"message_id": "om_alert"}}

    def hook_ok(_call: Call) -> tuple[int, Any]:
        return 200, {"code": 0, "msg": "success"}

    platform_api.route("POST", "/open-apis/im/v1/messages", sent)
    platform_api.route("POST", "/open-apis/bot/v2/hook/operators-only", hook_ok)
    platform_api.route("POST", "/open-apis/bot/v2/hook/member-group", hook_ok)
    config = write_config(
        tmp_path / "qunpulse.toml", database_url, FEISHU_EXTRA.format(api=platform_api.base_url)
    )
    settings = load_settings(config, env={})
    async with _running(settings, platform_api) as run:
        double = FeishuDouble(f"{run.base_url}/callback/feishu-bot", "feishu-alert-token")
        response = await double.post(double.group_text("ev1", "om_1", "oc_alerts", "fei", NEGATIVE))
        assert response.status_code == 200, response.text

        calls = await platform_api.wait_for_calls("/open-apis/im/v1/messages", 2)
        await platform_api.wait_for_calls("/open-apis/bot/v2/hook/operators-only", 1)
        await run.service.sender.drain()

        assert sorted((c.query["receive_id_type"], c.json["receive_id"]) for c in calls) == [
            ("open_id", "ou_opsfei"),
            ("user_id", "opsuser2"),
        ]
        assert all(c.headers["authorization"].startswith("Bearer t-") for c in calls)
        card = json.loads(calls[0].json["content"])
        assert NEGATIVE in card["elements"][0]["content"]
        [hook] = platform_api.calls_to("/open-apis/bot/v2/hook/operators-only")
        assert NEGATIVE in hook.body.decode()
        member_posts = platform_api.calls_to("/open-apis/bot/v2/hook/member-group")
        assert not any(NEGATIVE in c.body.decode() for c in member_posts)
        [alert] = run.alerts()
        assert (alert.kind, alert.state, alert.sender_user_id) == ("negative", "sent", "fei")


async def test_an_expired_token_is_renewed_and_a_rate_limit_retried(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    answers = iter(
        [
            {"errcode": 42001, "errmsg": "access_token expired"},
            {"errcode": 45009, "errmsg": "api freq out of limit"},
        ]
    )

    def send(_call: Call) -> tuple[int, Any]:
        return 200, next(answers, {"errcode": 0, "errmsg": "ok"})

    platform_api.route("POST", APP_SEND, send)
    platform_api.route("POST", GROUP_WEBHOOK, _wecom_ok)
    platform_api.route("POST", DING_GROUP_WEBHOOK, _ding_ok)
    async with _running(_settings(tmp_path, database_url, platform_api), platform_api) as run:
        await run.wecom_say("t1", "angry", NEGATIVE)
        # 42001: a new token and the same attempt again; 45009: back-off (5 s), then sent.
        calls = await platform_api.wait_for_calls(APP_SEND, 3, within=20)
        await run.service.sender.drain()

        tokens = [c.query["access_token"] for c in calls]
        assert tokens[0] != tokens[1]
        assert tokens[1] == tokens[2]
        assert len(platform_api.calls_to("/cgi-bin/gettoken")) == 2
        [alert] = run.alerts()
        assert alert.state == "sent"
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{run.base_url}/metrics")).text
        assert 'qunpulse_posts_retried_total{job="alert",platform="wecom"} 1.0' in metrics


async def test_an_operators_only_digest_goes_privately_to_the_operators(running: Running) -> None:
    """digest_to = "operators": the digest travels the alerts' private channel, not the group."""
    from datetime import datetime

    from bot.jobs import Jobs

    await running.wecom_say("d1", "carol", "今天的直播几点开始")
    settings = running.settings.model_copy(
        update={
            "groups": tuple(
                g.model_copy(update={"digest_to": "operators"}) if g.chat_id == WECOM_GROUP else g
                for g in running.settings.groups
            )
        }
    )
    jobs = Jobs(settings, running.service.engine, running.service.outbox, system_clock)
    today = datetime.now(settings.zone).date()
    queued = await asyncio.to_thread(jobs.run, "daily_digest", today, WECOM_GROUP)
    assert queued.queued
    await running.service.sender.drain(queued.queued)
    digests = [m for m in running.app_messages() if "社群日报" in json.dumps(m, ensure_ascii=False)]
    assert len(digests) == 1
    assert digests[0]["touser"] == "opsalice|opsbob"
    assert running.api.calls_to(GROUP_WEBHOOK) == []  # nothing went into the member group
