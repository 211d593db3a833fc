"""Chat commands end to end: platform doubles post commands over real HTTP to a running
qunpulse; the answers arrive at the platform API double (response_url, sessionWebhook,
batchSend) on 127.0.0.1. Nothing of ours is patched.

Hand count for the WeCom group ``wrkOps`` (today):
    alice 3 messages, bob 1, then the operator opsalice sends ``/stats day``.
    messages = 3 + 1 + 1 = 5 (the command is a message she sent); top sender alice (3).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.app import build_service
from config import load_settings
from storage.commands import list_replies
from tests.conftest import (
    DINGTALK_APP_SECRET,
    WECOM_AES_KEY,
    WECOM_TOKEN,
    RunningServer,
    write_config,
)
from tests.doubles.api import Call, LoopbackOnly, PlatformAPI
from tests.doubles.dingtalk import DingTalkRobotDouble
from tests.doubles.wecom import WeComAiBotDouble

WECOM_GROUP = "wrkOps"
DING_GROUP = "cidDingOps"
RESPONSE_PATH = "/cgi-bin/aibot/response"
SESSION_PATH = "/robot/sendBySession"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"


def _ok(_call: Call) -> tuple[int, Any]:
    return 200, {"errcode": 0, "errmsg": "ok"}


def _batch_ok(_call: Call) -> tuple[int, Any]:
    return 200, {
        "processQueryKey": "pqk",
        "invalidStaffIdList": [],
        "flowControlledStaffIdList": [],
    }


@dataclass
class Bots:
    server: RunningServer
    api: PlatformAPI

    @property
    def wecom(self) -> WeComAiBotDouble:
        return WeComAiBotDouble(self.server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)

    @property
    def dingtalk(self) -> DingTalkRobotDouble:
        return DingTalkRobotDouble(self.server.callback_url("ding-bot"), DINGTALK_APP_SECRET)

    async def wecom_say(self, msgid: str, user: str, text: str, chat: str = WECOM_GROUP) -> None:
        double = self.wecom
        payload = double.group_text(msgid, chat, user, text, response_base=self.api.base_url)
        response = await double.deliver(payload)
        assert response.status_code == 200, response.text

    async def ding_say(
        self, msg_id: str, staff: str, nick: str, text: str, *, is_admin: bool = False
    ) -> None:
        double = self.dingtalk
        body = double.group_text(
            msg_id, DING_GROUP, staff, nick, text, is_admin=is_admin, webhook_base=self.api.base_url
        )
        response = await double.deliver(body)
        assert response.status_code == 200, response.text

    async def wecom_answer(self, msgid: str) -> str:
        """The markdown posted to the response_url of message ``msgid``."""
        for _ in range(2):
            await self.api.wait_for_calls(RESPONSE_PATH, 1)
            await self.server.service.dispatcher.join()
            calls = [
                c for c in self.api.calls_to(RESPONSE_PATH) if c.query["response_code"] == msgid
            ]
            if calls:
                assert len(calls) == 1, f"{msgid} answered {len(calls)} times"
                body = calls[0].json
                assert body["msgtype"] == "markdown"
                content = body["markdown"]["content"]
                assert len(content.encode()) <= 4096
                return str(content)
        raise AssertionError(f"no answer to {msgid}")

    async def ding_answers(self, count: int) -> list[dict[str, Any]]:
        calls = await self.api.wait_for_calls(SESSION_PATH, count)
        await self.server.service.dispatcher.join()
        return [c.json for c in self.api.calls_to(SESSION_PATH)][:count] if calls else []


CONFIG_EXTRA = """
[[groups]]
platform = "wecom"
chat_id = "wrkOps"
name = "运营群"
operators = ["opsalice"]

[operators]
dingtalk = ["staff_ops"]

[platforms.wecom]
api_base = "{api}"

[platforms.dingtalk]
oapi_base = "{api}"
api_base = "{api}"

[platforms.feishu]
api_base = "{api}"

[[bots]]
id = "feishu-bot"
kind = "feishu"
app_id = "cli_ops"
app_secret = "feishu-ops-secret"
verification_token = "feishu-ops-token"
"""


async def _serve(
    tmp_path: Path, database_url: str, api: PlatformAPI, env: dict[str, str]
) -> AsyncIterator[Bots]:
    config = write_config(
        tmp_path / "qunpulse.toml", database_url, CONFIG_EXTRA.format(api=api.base_url)
    )
    settings = load_settings(config, env=env)
    api.route("POST", RESPONSE_PATH, _ok)
    api.route("POST", SESSION_PATH, _ok)
    api.route("POST", BATCH_SEND_PATH, _batch_ok)
    service = build_service(settings, http_transport=LoopbackOnly())
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.server.port)
    await site.start()
    try:
        yield Bots(RunningServer(f"http://127.0.0.1:{settings.server.port}", service, config), api)
    finally:
        await runner.cleanup()


@pytest.fixture
async def bots(tmp_path: Path, database_url: str, platform_api: PlatformAPI) -> AsyncIterator[Bots]:
    async for running in _serve(
        tmp_path, database_url, platform_api, {"QUNPULSE_OPERATORS_INCLUDE_ADMINS": "true"}
    ):
        yield running


async def test_operator_stats_day_in_wecom_group_answered_via_response_url(bots: Bots) -> None:
    for msgid, user, text in [
        ("w1", "alice", "今天的直播几点开始"),
        ("w2", "alice", "收到"),
        ("w3", "bob", "产品很好用"),
        ("w4", "alice", "我也想报名"),
    ]:
        await bots.wecom_say(msgid, user, text)
    await bots.wecom_say("w5", "opsalice", "/stats day")

    answer = await bots.wecom_answer("w5")

    assert "运营群" in answer
    assert "消息总量:5" in answer
    assert "1. alice · 3 条" in answer
    assert "2. bob · 1 条" in answer
    [record] = list_replies(bots.server.service.engine)
    assert (record.message_id, record.command, record.status, record.channel) == (
        "w5",
        "stats",
        "sent",
        "chat",
    )
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{bots.server.base_url}/metrics")).text
    assert 'qunpulse_commands_total{command="stats",status="sent"} 1.0' in metrics


async def test_member_stats_is_refused_without_figures(bots: Bots) -> None:
    await bots.wecom_say("r1", "alice", "大家好")
    await bots.wecom_say("r2", "alice", "今天有活动吗")
    await bots.wecom_say("r3", "bob", "／统计 本周")

    answer = await bots.wecom_answer("r3")

    assert "仅限本群运营者" in answer
    assert "alice" not in answer
    assert "消息总量" not in answer
    assert not any(ch.isdigit() for ch in answer)


async def test_dingtalk_rank_answers_through_session_webhook(bots: Bots) -> None:
    await bots.ding_say("d1", "staff01", "张三", "本周活动安排?")
    await bots.ding_say("d2", "staff01", "张三", "好的")
    await bots.ding_say("d3", "staff02", "李四", "收到")
    await bots.ding_say("d4", "staff03", "王五", "/排行 今天 5")

    [answer] = await bots.ding_answers(1)

    assert answer["msgtype"] == "markdown"
    text = answer["markdown"]["text"]
    assert answer["markdown"]["title"] in text
    assert "1. 张三 · 2 条" in text
    assert "2. 李四 · 1 条" in text
    assert "王五" not in text  # a command is not conversation


async def test_optout_hides_the_member_from_the_next_rank_and_optin_brings_them_back(
    bots: Bots,
) -> None:
    await bots.ding_say("o1", "staff01", "张三", "第一条")
    await bots.ding_say("o2", "staff01", "张三", "第二条")
    await bots.ding_say("o3", "staff02", "李四", "你好")
    await bots.ding_say("o4", "staff01", "张三", "/退出排行")
    [confirmation] = await bots.ding_answers(1)
    assert "退出公开排行" in confirmation["markdown"]["text"]

    await bots.ding_say("o5", "staff02", "李四", "/rank")
    rank = (await bots.ding_answers(2))[1]["markdown"]["text"]
    assert "张三" not in rank
    assert "1. 李四 · 1 条" in rank

    await bots.ding_say("o6", "staff01", "张三", "/optin")
    await bots.ding_say("o7", "staff02", "李四", "/rank")
    answers = await bots.ding_answers(4)
    assert "1. 张三 · 2 条" in answers[3]["markdown"]["text"]
    # The member's own choices are in the audit log beside the admins' (PIPL records).
    from storage.audit import list_audit

    entries = list_audit(bots.server.service.engine)
    assert [(e.action, e.target, e.detail["by"]) for e in reversed(entries)] == [
        ("optout", "dingtalk:staff01", "member"),
        ("optin", "dingtalk:staff01", "member"),
    ]


async def test_unknown_command_answers_with_help_and_what_was_wrong(bots: Bots) -> None:
    await bots.wecom_say("u1", "bob", "/foo")
    answer = await bots.wecom_answer("u1")
    assert "没有 /foo 这个命令" in answer
    assert "/rank /排行" in answer
    assert "/stats" not in answer  # help lists only what this member may use


async def test_bad_argument_answers_with_help_and_what_was_wrong(bots: Bots) -> None:
    await bots.wecom_say("b1", "bob", "/rank 500")
    answer = await bots.wecom_answer("b1")
    assert "/rank 的参数有误:人数 500:须在 1 到 50 之间" in answer
    assert "/me /我" in answer


async def test_operator_help_lists_operator_commands(bots: Bots) -> None:
    await bots.wecom_say("h1", "opsalice", "/帮助")
    answer = await bots.wecom_answer("h1")
    assert "🔒 /stats /统计" in answer
    assert "🔒 /silent /沉默" in answer


async def test_redelivered_command_is_answered_once(bots: Bots) -> None:
    double = bots.wecom
    payload = double.group_text("x1", WECOM_GROUP, "bob", "/help", response_base=bots.api.base_url)
    assert (await double.deliver(payload)).status_code == 200
    assert (await double.deliver(payload)).status_code == 200  # WeCom retries
    await bots.api.wait_for_calls(RESPONSE_PATH, 1)
    assert (await double.deliver(payload)).status_code == 200  # and again, after the answer

    await bots.server.service.dispatcher.join()

    assert len(bots.api.calls_to(RESPONSE_PATH)) == 1
    assert [r.message_id for r in list_replies(bots.server.service.engine)] == ["x1"]


async def test_silent_in_a_dingtalk_group_goes_privately_by_batch_send(bots: Bots) -> None:
    await bots.ding_say("s1", "staff01", "张三", "早")
    await bots.ding_say("s2", "staff_ops", "运营小王", "/沉默 1")

    [private] = await bots.api.wait_for_calls(BATCH_SEND_PATH, 1)
    [notice] = await bots.ding_answers(1)

    assert private.headers["x-acs-dingtalk-access-token"].startswith("ding-token-")
    body = private.json
    assert (body["robotCode"], body["userIds"], body["msgKey"]) == (
        "dingrobot",
        ["staff_ops"],
        "sampleMarkdown",
    )
    assert "沉默成员" in json.loads(body["msgParam"])["text"]
    assert "私聊" in notice["markdown"]["text"]
    assert "张三" not in notice["markdown"]["text"]


async def test_silent_in_a_wecom_group_names_nobody_without_a_private_channel(bots: Bots) -> None:
    await bots.wecom_say("q1", "alice", "在吗")
    await bots.wecom_say("q2", "opsalice", "/silent 1")
    answer = await bots.wecom_answer("q2")
    assert "只能私聊发送" in answer
    assert "alice" not in answer


async def test_silent_in_a_private_wecom_chat_lists_silent_members(bots: Bots) -> None:
    await bots.wecom_say("p1", "alice", "在吗")
    double = bots.wecom
    payload = double.private_text("p2", "opsalice", "/silent 1", response_base=bots.api.base_url)
    assert (await double.deliver(payload)).status_code == 200
    answer = await bots.wecom_answer("p2")
    # alice spoke today, so nobody has been silent for a day yet.
    assert "运营群 · 沉默成员" in answer
    assert "没有沉默 1 天以上的成员" in answer


async def test_dingtalk_group_admin_counts_as_operator_when_configured(bots: Bots) -> None:
    await bots.ding_say("a1", "staff01", "张三", "大家好")
    await bots.ding_say("a2", "staff09", "群主", "/stats", is_admin=True)
    [answer] = await bots.ding_answers(1)
    assert "消息总量:2" in answer["markdown"]["text"]


async def test_me_shows_count_rank_streak_and_first_seen(bots: Bots) -> None:
    await bots.wecom_say("m1", "alice", "第一条")
    await bots.wecom_say("m2", "bob", "一")
    await bots.wecom_say("m3", "bob", "二")
    await bots.wecom_say("m4", "alice", "/我 今天")
    answer = await bots.wecom_answer("m4")
    assert "发言:1 条" in answer
    assert "排名:第 2 名(共 2 人)" in answer
    assert "连续活跃:1 天" in answer
    assert "首次出现:" in answer


@pytest.fixture
async def english_bots(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> AsyncIterator[Bots]:
    async for running in _serve(tmp_path, database_url, platform_api, {"QUNPULSE_LOCALE": "en"}):
        yield running


async def test_help_reads_in_english_with_locale_en(english_bots: Bots) -> None:
    await english_bots.wecom_say("e1", "bob", "/help")
    answer = await english_bots.wecom_answer("e1")
    assert "qunpulse · commands" in answer
    assert "/rank /排行 [period] [N]: the message-rank leaderboard" in answer
    assert "/stats" not in answer


async def test_words_lists_the_most_frequent_words(bots: Bots) -> None:
    await bots.wecom_say("k1", "alice", "直播回放在哪里看")
    await bots.wecom_say("k2", "bob", "直播很精彩")
    await bots.wecom_say("k3", "carol", "直播什么时候开始")
    await bots.wecom_say("k4", "bob", "/词云 今天")
    answer = await bots.wecom_answer("k4")
    assert "高频词" in answer
    assert "1. 直播 · 3" in answer


async def test_opted_out_member_me_in_a_group_goes_privately(bots: Bots) -> None:
    await bots.ding_say("v1", "staff01", "张三", "你好")
    await bots.ding_say("v2", "staff01", "张三", "/optout")
    await bots.ding_answers(1)
    await bots.ding_say("v3", "staff01", "张三", "/me")

    [private] = await bots.api.wait_for_calls(BATCH_SEND_PATH, 1)
    notice = (await bots.ding_answers(2))[1]["markdown"]["text"]

    assert "发言:1 条" in json.loads(private.json["msgParam"])["text"]
    assert private.json["userIds"] == ["staff01"]
    assert "私聊" in notice
    assert "1 条" not in notice


async def test_private_chat_asks_which_group_when_the_operator_runs_several(bots: Bots) -> None:
    await bots.wecom_say("g1", "alice", "你好")
    await bots.wecom_say("g2", "carol", "你好", chat="wrkOther")
    double = bots.wecom
    api = bots.api.base_url
    # opsalice runs only wrkOps ([[groups]].operators), so that group is chosen.
    await double.deliver(double.private_text("g3", "opsalice", "/stats", response_base=api))
    assert "消息总量:1" in await bots.wecom_answer("g3")
    # bob is a member of no group: he is told to ask in a group.
    await double.deliver(double.private_text("g4", "bob", "/rank", response_base=api))
    assert "没有找到你所在" in await bots.wecom_answer("g4")
    # carol names a group she is not in.
    await double.deliver(double.private_text("g5", "carol", "/rank wrkOps", response_base=api))
    assert "没有找到群「wrkOps」" in await bots.wecom_answer("g5")


async def test_a_slow_answer_does_not_hold_up_other_callbacks(bots: Bots) -> None:
    release = asyncio.Event()

    async def slow(_call: Call) -> tuple[int, Any]:
        await release.wait()
        return 200, {"errcode": 0, "errmsg": "ok"}

    bots.api.route("POST", RESPONSE_PATH, slow)
    await bots.wecom_say("z1", "bob", "/rank")
    await bots.api.wait_for_calls(RESPONSE_PATH, 1)  # the answer is stuck at the platform
    for n in range(5):
        await bots.wecom_say(f"z{n + 2}", "alice", "还在吗")  # each acknowledged with 200
    release.set()
    await bots.server.service.dispatcher.join()
    assert [r.status for r in list_replies(bots.server.service.engine)] == ["sent"]


async def test_silent_in_a_dingtalk_private_chat_answers_in_that_chat(bots: Bots) -> None:
    await bots.ding_say("i1", "staff01", "张三", "早")
    double = bots.dingtalk
    body = double.group_text(
        "i2", "cidPrivateOps", "staff_ops", "运营小王", "/silent 1", webhook_base=bots.api.base_url
    )
    body["conversationType"] = "1"  # a 1:1 chat with the robot
    del body["conversationTitle"]
    assert (await double.deliver(body)).status_code == 200

    [answer] = await bots.ding_answers(1)

    assert "产品交流群 · 沉默成员" in answer["markdown"]["text"]
    assert bots.api.calls_to(BATCH_SEND_PATH) == []  # already private: no 1:1 message needed


async def test_a_refused_private_message_is_reported_in_the_group_without_figures(
    bots: Bots,
) -> None:
    bots.api.route(
        "POST",
        BATCH_SEND_PATH,
        lambda _call: (200, {"processQueryKey": "", "invalidStaffIdList": ["staff_ops"]}),
    )
    await bots.ding_say("f1", "staff01", "张三", "早")
    await bots.ding_say("f2", "staff_ops", "运营小王", "/silent 1")

    [notice] = await bots.ding_answers(1)

    assert "只能私聊发送" in notice["markdown"]["text"]
    assert "张三" not in notice["markdown"]["text"]
    [record] = list_replies(bots.server.service.engine)
    assert record.status == "failed"
    assert "invalid" in (record.error or "")


async def test_feishu_me_is_answered_through_the_reply_api(bots: Bots) -> None:
    """Feishu sees every message; an @-mentioned /me is answered in reply to it."""
    from tests.doubles.connections import FeishuDouble

    feishu = FeishuDouble(
        bots.server.callback_url("feishu-bot"), "feishu-ops-token", app_id="cli_ops"
    )
    bots.api.route(
        "POST",
        "/open-apis/im/v1/messages/om_me/reply",
        lambda _call: (200, {"code": 0, "msg": "success", "data": {"message_id": "om_answer"}}),
    )
    bot_mention = [{"key": "@_user_1", "id": {"open_id": "ou_bot"}, "name": "群脉"}]
    script = [
        ("e1", "om_1", "今天跑了五公里", None),
        ("e2", "om_2", "明天继续", None),
        ("e3", "om_me", "@_user_1 /me", bot_mention),
    ]
    for event_id, message_id, text, mentions in script:
        document = feishu.group_text(event_id, message_id, "oc_runners", "fu1", text, mentions)
        response = await feishu.post(document)
        assert response.status_code == 200, response.text
    [call] = await bots.api.wait_for_calls("/open-apis/im/v1/messages/om_me/reply")
    assert call.headers["authorization"].startswith("Bearer t-")
    answer = json.loads(call.json["content"])
    assert "发言:2 条" in json.dumps(answer, ensure_ascii=False)
