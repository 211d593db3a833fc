"""Every connection kind end to end: doubles sign and encrypt, POST to a running qunpulse.

Figures are hand-counted per test in its docstring; `stats --json` must agree on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.models import (
    GroupChange,
    GroupSyncState,
    InboundEvent,
    MembershipEvent,
    Message,
    PlatformNotice,
)
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN, RunningServer, write_config
from tests.doubles.connections import DingTalkEventsDouble, FeishuDouble, WeComAppDouble

DING_TOKEN = "mryue"
DING_AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
DING_APP_KEY = "ding6ccabc44d2c8d38b"
DING_VECTOR_ENCRYPT = (
    "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4yhEL"
    "OFchzNukR+t8SB/qk4ROMu3"
)
FEISHU_TOKEN = "feishu-verification-token"
FEISHU_KEY = "test key"
CORP_ID = "ww1436e0e65a779aee"

EXTRA = f"""
[[bots]]
id = "ding-events"
kind = "dingtalk_events"
app_key = "{DING_APP_KEY}"
token = "{DING_TOKEN}"
aes_key = "{DING_AES_KEY}"

[[bots]]
id = "feishu-plain"
kind = "feishu"
app_id = "cli_plain"
app_secret = "feishu-secret"
verification_token = "{FEISHU_TOKEN}"

[[bots]]
id = "feishu-enc"
kind = "feishu"
app_id = "cli_enc"
app_secret = "feishu-secret"
verification_token = "{FEISHU_TOKEN}"
encrypt_key = "{FEISHU_KEY}"

[[bots]]
id = "wecom-app"
kind = "wecom_app"
corp_id = "{CORP_ID}"
agent_id = 1000002
secret = "wecom-app-secret"
token = "{WECOM_TOKEN}"
encoding_aes_key = "{WECOM_AES_KEY}"
"""


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path / "qunpulse.toml", database_url, EXTRA)


def stats_json(capsys: pytest.CaptureFixture[str], config: Path, group: str) -> dict:
    capsys.readouterr()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert main(["stats", "-c", str(config), "--date", today, "--json", "--group", group]) == 0
    return json.loads(capsys.readouterr().out)


def membership(stats: dict) -> tuple[int, int, int, int, int]:
    return tuple(  # type: ignore[return-value]
        stats[key]["value"] for key in ("joins", "leaves", "removed", "members", "net_growth")
    )


def count(server: RunningServer, model: type) -> int:
    with server.service.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


# --- DingTalk event subscription -------------------------------------------------------


def ding(server: RunningServer, *, camel_query: bool = False) -> DingTalkEventsDouble:
    return DingTalkEventsDouble(
        server.callback_url("ding-events"), DING_TOKEN, DING_AES_KEY, DING_APP_KEY, camel_query
    )


async def test_dingtalk_official_vector_check_url_is_answered_with_encrypted_success(
    server: RunningServer,
) -> None:
    double = ding(server)
    response = await double.post_encrypted(
        DING_VECTOR_ENCRYPT,
        timestamp="1608001896814",
        nonce="WL4PK6yA",
        signature="03044561471240d4a14bb09372dfcfd4fd0e40cb",
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert double.open_answer(response) == "success"
    assert count(server, InboundEvent) == 0


async def test_dingtalk_events_get_is_not_a_url_check(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(server.callback_url("ding-events"))
    assert response.status_code == 405


async def test_dingtalk_membership_events_both_casings(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Group cidCamel (camelCase payloads, query `signature`/`timestamp`):
    u1, u2, u3 join; u2 removed by admin (chat_remove_member); u3 quits (chat_quit).
    joins 3, leaves 1, removed 1, members 3 - 2 = 1, net 3 - 1 - 1 = 1.
    Group chatLegacy (legacy payloads): a joins, b joins, a quits:
    joins 2, leaves 1, removed 0, members 1, net 1.
    The first add delivered twice, one forged callback: neither counts.
    """
    now = int(time.time() * 1000)
    camel = ding(server, camel_query=True)

    def camel_event(event_id: str, kind: str, users: list[str]) -> dict:
        return {
            "EventType": kind,
            "eventId": event_id,
            "chatId": "chatCamel",
            "openConversationId": "cidCamel",
            "userId": users,
            "operator": "admin1",
            "timeStamp": now,
            "corpId": "dingcorp",
        }

    add = camel_event("e1", "chat_add_member", ["u1", "u2", "u3"])
    for payload in (
        add,
        camel_event("e2", "chat_remove_member", ["u2"]),
        camel_event("e3", "chat_quit", ["u3"]),
        {
            "EventType": "chat_update_title",
            "eventId": "e4",
            "openConversationId": "cidCamel",
            "chatId": "chatCamel",
            "title": "钉钉新群名",
            "timeStamp": now,
        },
        {"EventType": "some_future_event", "eventId": "e5", "timeStamp": now},
    ):
        response = await camel.deliver(payload)
        assert response.status_code == 200, response.text
        assert camel.open_answer(response) == "success"
    assert (await camel.deliver(add)).status_code == 200  # DingTalk re-sends
    forged = await camel.deliver(
        camel_event("e9", "chat_add_member", ["mallory"]), bad_signature=True
    )
    assert forged.status_code == 401

    legacy = ding(server)
    for payload in (
        {
            "EventType": "chat_add_member",
            "ChatId": "chatLegacy",
            "UserId": ["a"],
            "Operator": "o",
            "TimeStamp": str(now),
            "CorpId": "c",
        },
        {
            "EventType": "chat_add_member",
            "ChatId": "chatLegacy",
            "UserId": ["b"],
            "Operator": "o",
            "TimeStamp": str(now + 1),
            "CorpId": "c",
        },
        {
            "EventType": "chat_quit",
            "ChatId": "chatLegacy",
            "UserId": ["a"],
            "Operator": "a",
            "TimeStamp": str(now + 2),
            "CorpId": "c",
        },
        {
            "EventType": "chat_disband",
            "ChatId": "chatLegacy",
            "Operator": "o",
            "TimeStamp": str(now + 3),
            "CorpId": "c",
        },
    ):
        assert (await legacy.deliver(payload)).status_code == 200

    stats = stats_json(capsys, server.config_file, "cidCamel")
    assert membership(stats) == (3, 1, 1, 1, 1)
    assert stats["group"]["name"] == "钉钉新群名"
    assert stats["group"]["source"] == "at_mentions_only"
    assert membership(stats_json(capsys, server.config_file, "chatLegacy")) == (2, 1, 0, 1, 1)
    assert count(server, GroupChange) == 2  # the rename and the disband
    assert count(server, MembershipEvent) == 3 + 1 + 1 + 3


# --- Feishu ----------------------------------------------------------------------------


def feishu(server: RunningServer, encrypted: bool) -> FeishuDouble:
    if encrypted:
        return FeishuDouble(server.callback_url("feishu-enc"), FEISHU_TOKEN, FEISHU_KEY)
    return FeishuDouble(server.callback_url("feishu-plain"), FEISHU_TOKEN)


@pytest.mark.parametrize("encrypted", [False, True])
async def test_feishu_url_verification(server: RunningServer, encrypted: bool) -> None:
    double = feishu(server, encrypted)
    response = await double.url_verification("ajls384kdjx98XX")
    assert response.status_code == 200, response.text
    assert response.json() == {"challenge": "ajls384kdjx98XX"}
    wrong = await double.url_verification("x", token="not-the-token")
    assert wrong.status_code == 401


async def test_feishu_vector_decrypts_through_our_code() -> None:
    from bot.platforms.feishu import feishu_decrypt

    assert (
        feishu_decrypt("P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=", "test key") == "hello world"
    )


@pytest.mark.parametrize("encrypted", [False, True])
async def test_feishu_messages_and_members(
    server: RunningServer, capsys: pytest.CaptureFixture[str], encrypted: bool
) -> None:
    """Group oc_fs: alice, bob, carol join (added_v1, operator admin); bob leaves by
    himself (deleted_v1, operator bob); carol is removed (deleted_v1, operator admin).
    joins 3, leaves 1, removed 1, members 1 (alice), net 1.
    Messages: alice 2 (one @-mentions the bot: text stored without the mention), one of
    them redelivered under a new event_id (same message_id): messages 2.
    """
    double = feishu(server, encrypted)
    chat = "oc_fs"
    docs = [
        double.members(
            "ev1", True, chat, "admin", [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")]
        ),
        double.group_text(
            "ev2",
            "om_1",
            chat,
            "alice",
            "@_user_1 大家好",
            mentions=[{"key": "@_user_1", "id": {"open_id": "ou_bot"}, "name": "群脉"}],
        ),
        double.group_text("ev3", "om_2", chat, "alice", "第二条"),
        double.members("ev4", False, chat, "bob", [("bob", "Bob")]),
        double.members("ev5", False, chat, "admin", [("carol", "Carol")]),
        double.event("ev6", "im.chat.updated_v1", {"chat_id": chat}),
    ]
    for document in docs:
        response = await double.post(document)
        assert response.status_code == 200, response.text
    assert (await double.post(docs[0])).status_code == 200  # same event_id again
    assert (
        await double.post(double.group_text("ev7", "om_1", chat, "alice", "@_user_1 大家好"))
    ).status_code == 200
    if encrypted:
        forged = await double.post(
            double.group_text("ev8", "om_9", chat, "mallory", "x"), bad_signature=True
        )
        assert forged.status_code == 401
        unsigned = await double.post(
            double.group_text("ev9", "om_9", chat, "mallory", "x"), sign=False
        )
        assert unsigned.status_code == 401
    else:
        bad = FeishuDouble(double.url, "wrong-token")
        forged = await bad.post(bad.group_text("ev8", "om_9", chat, "mallory", "x"))
        assert forged.status_code == 401

    schema_one = {
        "uuid": "u1",
        "token": FEISHU_TOKEN,
        "ts": "1",
        "type": "event_callback",
        "event": {"type": "message", "open_chat_id": chat},
    }
    assert (await double.post(schema_one)).status_code == 200
    only_members = double.members("ev10", True, "oc_quiet", "admin", [("dan", "Dan")])
    assert (await double.post(only_members)).status_code == 200
    quiet = stats_json(capsys, server.config_file, "oc_quiet")
    assert (quiet["group"]["source"], quiet["joins"]["value"]) == ("full", 1)

    stats = stats_json(capsys, server.config_file, chat)
    assert stats["group"]["source"] == "full"
    assert stats["group"]["name"] == "飞书产品群"
    assert membership(stats) == (3, 1, 1, 1, 1)
    assert stats["messages"]["value"] == 2
    assert [(e["member"], e["name"], e["messages"]) for e in stats["message_rank"]] == [
        ("alice", "Alice", 2)
    ]
    with server.service.engine.connect() as connection:
        texts = sorted(connection.execute(select(Message.text)).scalars())
    assert texts == ["大家好", "第二条"]


# --- WeCom self-built app --------------------------------------------------------------


def wecom_app(server: RunningServer) -> WeComAppDouble:
    return WeComAppDouble(server.callback_url("wecom-app"), WECOM_TOKEN, WECOM_AES_KEY, CORP_ID)


async def test_wecom_app_url_check(server: RunningServer) -> None:
    response = await wecom_app(server).url_check("1288432023552776189")
    assert (response.status_code, response.text) == (200, "1288432023552776189")


async def test_wecom_app_official_message_vector_is_accepted(server: RunningServer) -> None:
    encrypt = (
        "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
        "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Yh"
        "mZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpc"
        "wocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
    )
    envelope = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
    query = {
        "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
        "timestamp": "1476422779",
        "nonce": "1597212914",
    }
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(
            server.callback_url("wecom-app"), params=query, content=envelope
        )
        again = await client.post(server.callback_url("wecom-app"), params=query, content=envelope)
    assert (response.status_code, response.text) == (200, "success")
    assert again.status_code == 200
    assert count(server, InboundEvent) == 1  # the private message, once
    assert count(server, Message) == 0  # private chats are not group activity


async def test_wecom_app_customer_group_membership(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Group wrOgQhDgAAcust: created; w1, w2, w3 join (JoinScene 3, <Item> form); w4 joins
    (comma form); w2 leaves (QuitScene 0); w3 removed (QuitScene 1); renamed.
    joins 4, leaves 1, removed 1, members 2, net 2.
    Versions: v0→v1, v1→v2, v2→v3, then v5→v6: a gap (v4 lost), so re-sync is flagged.
    """
    double = wecom_app(server)
    chat = "wrOgQhDgAAcust"
    now = int(time.time())
    xmls = [
        double.chat_change(chat, "create", create_time=now - 10),
        double.chat_change(
            chat,
            "update",
            "add_member",
            members=["w1", "w2", "w3"],
            join_scene=3,
            last_ver="v0",
            cur_ver="v1",
            create_time=now - 9,
        ),
        double.chat_change(
            chat,
            "update",
            "add_member",
            members=["w4"],
            item_form=False,
            join_scene=0,
            last_ver="v1",
            cur_ver="v2",
            create_time=now - 8,
        ),
        double.chat_change(
            chat,
            "update",
            "del_member",
            members=["w2"],
            quit_scene=0,
            last_ver="v2",
            cur_ver="v3",
            create_time=now - 7,
        ),
    ]
    for xml in xmls:
        response = await double.deliver(xml)
        assert (response.status_code, response.text) == (200, "success")
    with server.service.engine.connect() as connection:
        assert connection.execute(select(GroupSyncState.resync_needed)).scalar_one() is False
    more = [
        double.chat_change(
            chat,
            "update",
            "del_member",
            members=["w3"],
            quit_scene=1,
            last_ver="v5",
            cur_ver="v6",
            create_time=now - 6,
        ),
        double.chat_change(chat, "update", "change_name", create_time=now - 5),
        "<xml><ToUserName>ww</ToUserName><FromUserName>sys</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>some_new_event</Event></xml>",
        f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>sys</FromUserName><CreateTime>{now}</CreateTime><MsgType>event</MsgType><Event>msgaudit_notify</Event><AgentID>1000002</AgentID></xml>",
    ]
    for xml in more:
        assert (await double.deliver(xml)).status_code == 200
    assert (await double.deliver(xmls[1])).status_code == 200  # WeCom retries
    assert (await double.deliver(more[3])).status_code == 200
    forged = await double.deliver(
        double.chat_change(chat, "update", "add_member", members=["evil"], create_time=now),
        bad_signature=True,
    )
    assert forged.status_code == 401

    stats = stats_json(capsys, server.config_file, chat)
    assert membership(stats) == (4, 1, 1, 2, 2)
    with server.service.engine.connect() as connection:
        state = connection.execute(select(GroupSyncState)).one()
        kinds = sorted(connection.execute(select(GroupChange.kind)).scalars())
        notices = connection.execute(select(PlatformNotice.kind, PlatformNotice.handled_at)).all()
    assert (state.member_version, state.resync_needed) == ("v6", True)
    assert kinds == ["created", "renamed"]
    assert [(n.kind, n.handled_at) for n in notices] == [("archive_ready", None)]


# --- WeCom legacy robot callback on wecom_aibot ----------------------------------------


def legacy_xml(
    msg_id: str, chat: str, user: str, name: str, text: str, msg_type: str = "text"
) -> str:
    return (
        "<xml><WebhookUrl><![CDATA[https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k]]></WebhookUrl>"
        f"<MsgId><![CDATA[{msg_id}]]></MsgId><ChatId><![CDATA[{chat}]]></ChatId>"
        "<ChatType>group</ChatType>"
        f"<From><UserId>{user}</UserId><Name>{name}</Name><Alias>{user}-alias</Alias></From>"
        f"<MsgType>{msg_type}</MsgType><Text><Content><![CDATA[@群脉 {text}]]></Content></Text></xml>"
    )


async def post_legacy(
    server: RunningServer, plaintext: str, *, xml_envelope: bool, bad: bool = False
) -> httpx.Response:
    from tests.doubles.wecom import wx_encrypt, wx_signature

    encrypt = wx_encrypt(plaintext, WECOM_AES_KEY, "")
    stamp, nonce = str(int(time.time())), "n0nce"
    query = {
        "msg_signature": "0" * 40 if bad else wx_signature(WECOM_TOKEN, stamp, nonce, encrypt),
        "timestamp": stamp,
        "nonce": nonce,
    }
    async with httpx.AsyncClient(timeout=5) as client:
        if xml_envelope:
            return await client.post(
                server.callback_url("wecom-bot"),
                params=query,
                content=f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
            )
        return await client.post(
            server.callback_url("wecom-bot"), params=query, json={"encrypt": encrypt}
        )


async def test_wecom_legacy_robot_callbacks_xml_and_json(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Group wrkLegacy: L1 (XML, 张三), L2 (JSON, 李四), L1 again as JSON: messages 2."""
    chat = "wrkLegacy"
    as_json = {
        "WebhookUrl": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        "MsgId": "L2",
        "ChatId": chat,
        "ChatType": "group",
        "From": {"UserId": "lisi", "Name": "李四", "Alias": "ls"},
        "MsgType": "text",
        "Text": {"Content": "@群脉 第二条"},
    }
    first = await post_legacy(
        server, legacy_xml("L1", chat, "zhangsan", "张三", "第一条"), xml_envelope=True
    )
    assert first.status_code == 200, first.text
    assert (
        await post_legacy(server, json.dumps(as_json, ensure_ascii=False), xml_envelope=False)
    ).status_code == 200
    again = json.dumps(
        as_json | {"MsgId": "L1", "From": {"UserId": "zhangsan"}}, ensure_ascii=False
    )
    assert (await post_legacy(server, again, xml_envelope=False)).status_code == 200
    unknown = json.dumps({"MsgId": "L3", "MsgType": "event", "Event": {"EventType": "add_to_chat"}})
    assert (await post_legacy(server, unknown, xml_envelope=False)).status_code == 200
    forged = await post_legacy(
        server, legacy_xml("L9", chat, "evil", "x", "x"), xml_envelope=True, bad=True
    )
    assert forged.status_code == 401

    stats = stats_json(capsys, server.config_file, chat)
    assert stats["messages"]["value"] == 2
    assert sorted((e["member"], e["name"]) for e in stats["message_rank"]) == [
        ("lisi", "李四"),
        ("zhangsan", "张三"),
    ]
    with server.service.engine.connect() as connection:
        assert sorted(connection.execute(select(Message.text)).scalars()) == ["第一条", "第二条"]
