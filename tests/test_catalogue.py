"""The whole metric catalogue on a scripted history, worked out by hand, on both databases.

Group ``g1`` (WeCom, Asia/Shanghai = UTC+8), period ``day`` of Fri 2026-09-18 local, i.e.
[2026-09-17 16:00Z, 2026-09-18 16:00Z); the previous period is Thu 2026-09-17 local.

Membership:
    e1 join a, b, c    09-17 02:00Z (Thu 10:00)     previous period
    e2 join d          09-18 01:00Z (Fri 09:00)
    e3 leave b         09-18 03:00Z
    e4 removed c       09-18 04:00Z
Messages (score set by hand; the scorer itself is tested in test_sentiment.py):
    m1 a "今天打卡第一天"          09-17 15:59Z = Thu 23:59 local -> previous period   0.7
    m2 a "打卡完成，产品很好用"    09-17 16:00Z = Fri 00:00 local -> this period        0.9
    m3 d "新人报到，请多关照"      09-18 02:00Z = 10:00                                 0.5
    m4 a "/stats"                  09-18 02:30Z = 10:30  command: a message, not conversation
    m5 d "打卡 https://example.com/x" 05:00Z = 13:00  check-in and a share            0.5
    m6 bot "机器人消息"            05:30Z = 13:30  a bot: counts nowhere
    m7 a "[流泪] 产品价格太贵了"   06:00Z = 14:00                                       0.1
    m8 d "@alice 产品价格多少"     15:59Z = 23:59                                       0.5
    m9 d "明天见"                  09-18 16:00Z = Sat 00:00 -> after the period
Orders: a paid 100.00 (cost 60.00) 03:00Z; d completed 50.00 (cost 20.00) 07:00Z;
        a refunded 99.99 08:00Z (never counts). d is a paid member since 10:00Z.

This period:
    messages = m2 m3 m4 m5 m7 m8 = 6 (previous: m1 = 1)
    message_rank: d 3 (m3 m5 m8), a 2 (m2 m7; the command m4 is not conversation)
    members at start = a b c = 3; at end = a d = 2 (previous: 0 -> 3)
    joins 1, leaves 1, removed 1, net_growth -1 = 2 - 3; leave_rate 1/3
    active_members 2, activity_rate 2/2 = 1.0, messages_per_member 6/2 = 3.0
    participants (打卡) a (m2), d (m5) = 2, participation_rate 1.0 (previous a: 1, 1/3)
    behaviours over the 5 conversation messages m2 m3 m5 m7 m8: checkins 2 (0.4),
        shares 1 (m5, 0.2), red_packets 0, images 0, mentions 1 (m8, 0.2)
    hour_histogram: hour 0:1, 10:2, 13:1, 14:1, 23:1 (sum 6); peak 10; Friday = weekday 4
    gmv 150.0, profit 150 - 80 = 70.0, profit_margin 70/80 = 0.875, payers 2,
        conversion_rate 2/2 = 1.0, aov 150/2 = 75.0, paid_members 1 (previous 0)
    retention (cohort d, joined Fri): m9 on Sat -> d1 = d7 = d30 = 1.0;
        previous cohort a b c (Thu): only a spoke on Fri (m2) -> d1 = 1/3, d7 = 1/3
    funnel: joined d -> first message (m3) -> check-in (m5) -> paid (07:00Z) = 1 1 1 1
    sentiment: m2 0.9 pos, m3 m5 m8 0.5 neutral, m7 0.1 neg: 1/5, 3/5, 1/5, mean 0.5
        a: pos 1 neg 1 mean 0.5; d: neutral 3 mean 0.5
    stickiness (1-day period, most messages 3): a 0.5*1 + 0.3*2/3 + 0.2*1 = 0.9 high;
        d 0.5 + 0.3 + 0.2 = 1.0 high
    churn_profile (14 days): left b, c: no messages -> 0 per member, share 0, mean None;
        stayed a (m1 m2 m7: 0.7 0.9 0.1) and d (m3 m5 m8: 0.5 x3): 3.0 per member, share
        1.0, mean (1.7 + 1.5) / 6 = 0.5333
    segments as of the end: nobody is silent 14 days, nobody spoke on 4 of the last 7
        days, nobody's last week fell by half -> all empty
    anomalies: no hour reaches 10 messages -> []
    targets: activity_rate 0.15 -> 1.0 met; retention_d7 0.30 -> 1.0 met
    operator_score: activity min(1, 1/0.15) = 1; growth 0.5 + 10 * (-1/3) -> 0;
        sentiment 0.5; conversion min(1, 1/0.05) = 1; gmv without a target: left out.
        (0.3*1 + 0.2*0 + 0.2*0.5 + 0.2*1) / 0.9 = 0.6/0.9 = 66.7 -> B
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select, update

from bot.cli import main
from bot.events import Chat, ChatId, MembershipEvent, MessageEvent, Person, UserId
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.models import Member, Message, Order
from tests.conftest import write_config


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, minute, tzinfo=UTC)


def msg(
    msg_id: str, user: str, when: datetime, text: str, chat: str = "g1", bot: bool = False
) -> MessageEvent:
    return MessageEvent(
        platform="wecom",
        bot_id="b",
        message_id=msg_id,
        chat=Chat(ChatId(chat), "group"),
        sender=Person(UserId(user), None, is_bot=bot),
        msg_type="text",
        text=text,
        sent_at=when,
        source="full",
    )


def change(event_id: str, kind: str, users: list[str], when: datetime) -> MembershipEvent:
    return MembershipEvent(
        platform="wecom",
        bot_id="b",
        event_id=event_id,
        chat=Chat(ChatId("g1"), "group"),
        change=kind,  # type: ignore[arg-type]
        members=tuple(Person(UserId(u)) for u in users),
        occurred_at=when,
    )


SCORES = {"m1": 0.7, "m2": 0.9, "m3": 0.5, "m5": 0.5, "m7": 0.1, "m8": 0.5}


def load_history(engine: Engine) -> None:
    store = EventStore(engine)
    store.store(
        [
            [change("e1", "join", ["a", "b", "c"], at(17, 2))],
            [change("e2", "join", ["d"], at(18, 1))],
            [change("e3", "leave", ["b"], at(18, 3))],
            [change("e4", "removed", ["c"], at(18, 4))],
            [msg("m1", "a", at(17, 15, 59), "今天打卡第一天")],
            [msg("m2", "a", at(17, 16), "打卡完成，产品很好用")],
            [msg("m3", "d", at(18, 2), "新人报到，请多关照")],
            [msg("m4", "a", at(18, 2, 30), "/stats")],
            [msg("m5", "d", at(18, 5), "打卡 https://example.com/x")],
            [msg("m6", "bot1", at(18, 5, 30), "机器人消息", bot=True)],
            [msg("m7", "a", at(18, 6), "[流泪] 产品价格太贵了")],
            [msg("m8", "d", at(18, 15, 59), "@alice 产品价格多少")],
            [msg("m9", "d", at(18, 16), "明天见")],
            [msg("x1", "e", at(18, 5), "你好呀大家", chat="g2")],
        ]
    )
    with engine.begin() as connection:
        ids = dict(connection.execute(select(Member.user_id, Member.id)).all())  # type: ignore[call-overload]
        for msg_id, value in SCORES.items():
            connection.execute(
                update(Message).where(Message.platform_msg_id == msg_id).values(sentiment=value)  # type: ignore[arg-type]
            )
        connection.execute(
            update(Member).where(Member.user_id == "d").values(paid_member_since=at(18, 10))  # type: ignore[arg-type]
        )
        now = at(18, 12)
        connection.execute(
            insert(Order),
            [
                dict(
                    platform="wecom",
                    order_id="o1",
                    member_id=ids["a"],
                    amount_fen=10000,
                    cost_fen=6000,
                    status="paid",
                    paid_at=at(18, 3),
                    imported_at=now,
                ),
                dict(
                    platform="wecom",
                    order_id="o2",
                    member_id=ids["d"],
                    amount_fen=5000,
                    cost_fen=2000,
                    status="completed",
                    paid_at=at(18, 7),
                    imported_at=now,
                ),
                dict(
                    platform="wecom",
                    order_id="o3",
                    member_id=ids["a"],
                    amount_fen=9999,
                    cost_fen=0,
                    status="refunded",
                    paid_at=at(18, 8),
                    imported_at=now,
                ),
            ],
        )


EXTRA = """
[[groups]]
platform = "wecom"
chat_id = "g1"
operators = ["op1"]

[[groups]]
platform = "wecom"
chat_id = "g2"
operators = ["op1"]

[targets]
activity_rate = 0.15
retention_d7 = 0.30
"""


@pytest.fixture
def history(tmp_path: Path, database_url: str) -> Path:
    engine = make_engine(database_url)
    upgrade(engine)
    load_history(engine)
    engine.dispose()
    return write_config(tmp_path / "qunpulse.toml", database_url, EXTRA)


def run_stats(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["stats", "-c", str(config), "--date", "2026-09-18", "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)  # type: ignore[no-any-return]


def countable(doc: dict[str, Any], key: str) -> tuple[Any, Any]:
    return doc[key]["value"], doc[key]["previous"]


def test_every_metric_of_the_scripted_day(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = run_stats(capsys, history, "--group", "g1")
    assert countable(doc, "messages") == (6, 1)
    assert [(e["member"], e["messages"]) for e in doc["message_rank"]] == [("d", 3), ("a", 2)]
    assert countable(doc, "members") == (2, 3)
    assert countable(doc, "joins") == (1, 3)
    assert (doc["leaves"]["value"], doc["removed"]["value"]) == (1, 1)
    assert countable(doc, "net_growth") == (-1, 3)
    assert doc["net_growth"]["delta"] == -4
    assert doc["leave_rate"]["value"] == pytest.approx(1 / 3)
    assert doc["leave_rate"]["previous"] is None
    assert countable(doc, "active_members") == (2, 1)
    assert doc["activity_rate"]["value"] == 1.0
    assert doc["activity_rate"]["previous"] == pytest.approx(1 / 3)
    assert doc["messages_per_member"]["value"] == 3.0
    assert countable(doc, "participants") == (2, 1)
    assert doc["participation_rate"]["value"] == 1.0

    behaviours = {k: (v["count"], v["rate"]) for k, v in doc["behaviours"].items()}
    assert behaviours == {
        "checkins": (2, 0.4),
        "shares": (1, 0.2),
        "red_packets": (0, 0.0),
        "images": (0, 0.0),
        "mentions": (1, 0.2),
    }

    hist = doc["hour_histogram"]
    expected = [0] * 24
    expected[0], expected[10], expected[13], expected[14], expected[23] = 1, 2, 1, 1, 1
    assert hist["counts"] == expected
    assert sum(hist["counts"]) == doc["messages"]["value"]
    assert hist["peak_hour"] == 10
    assert doc["heatmap"]["counts"][4] == expected
    assert doc["heatmap"]["peak_weekday"] == 4

    assert doc["gmv"]["value"] == 150.0
    assert doc["gmv"]["orders"] == 2
    assert doc["profit"]["value"] == 70.0
    assert doc["profit_margin"]["value"] == 0.875
    assert doc["aov"]["value"] == 75.0
    assert doc["conversion_rate"]["value"] == 1.0
    assert doc["conversion_rate"]["of_active"] == 1.0
    assert countable(doc, "paid_members") == (1, 0)

    assert countable(doc, "retention_d1")[0] == 1.0
    assert doc["retention_d1"]["previous"] == pytest.approx(1 / 3)
    assert doc["retention_d7"]["value"] == 1.0
    assert doc["retention_d7"]["previous"] == pytest.approx(1 / 3)
    assert doc["retention_d30"]["value"] == 1.0
    assert doc["retention_d1"]["cohorts"] == [
        {"day": "2026-09-18", "joined": 1, "retained": 1, "rate": 1.0}
    ]

    assert [s["members"] for s in doc["funnel"]["steps"]] == [1, 1, 1, 1]

    split = doc["sentiment_split"]
    assert (split["positive"], split["neutral"], split["negative"]) == (0.2, 0.6, 0.2)
    assert split["mean"] == 0.5
    assert [
        (m["member"], m["counts"]["positive"], m["counts"]["negative"], m["mean"])
        for m in split["by_member"]
    ] == [("a", 1, 1, 0.5), ("d", 0, 0, 0.5)]

    stick = doc["stickiness"]
    assert [(m["member"], m["score"], m["bucket"]) for m in stick["members"]] == [
        ("d", 1.0, "high"),
        ("a", 0.9, "high"),
    ]
    assert stick["buckets"] == {"high": 2, "mid": 0, "low": 0}

    churn = doc["churn_profile"]
    assert churn["left"] == {
        "members": 2,
        "messages_per_member": 0.0,
        "active_share": 0.0,
        "mean_sentiment": None,
    }
    assert churn["stayed"]["messages_per_member"] == 3.0
    assert churn["stayed"]["active_share"] == 1.0
    assert churn["stayed"]["mean_sentiment"] == 0.5333  # 3.2 / 6, means have 4 decimals

    assert {k: v["count"] for k, v in doc["segments"].items() if k != "as_of"} == {
        "high_active": 0,
        "churn_warning": 0,
        "silent": 0,
    }
    assert doc["anomalies"] == []
    assert doc["targets"] == {
        "activity_rate": {"target": 0.15, "actual": 1.0, "met": True},
        "retention_d7": {"target": 0.3, "actual": 1.0, "met": True},
    }
    score = doc["operator_score"]
    assert (score["value"], score["grade"]) == (66.7, "B")

    words = {w["word"]: w["count"] for w in doc["top_words"]}
    assert words["打卡"] == 2
    assert words["产品价格"] == 2
    assert not [w for w in words if "流泪" in w or "http" in w or "example" in w or "@" in w]
    assert "alice" not in words
    assert doc["topics"]["source"] == "automatic"


def test_operator_view_sums_their_groups(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_stats(
        capsys, history, "--operator", "op1", "--metrics", "messages,members,active_members"
    )
    assert [g["chat_id"] for g in doc["groups"]] == ["g1", "g2"]
    assert set(doc) == {"operator", "groups", "period", "messages", "members", "active_members"}
    assert doc["messages"]["value"] == 7  # 6 in g1, 1 in g2
    assert doc["members"]["value"] == 3  # a, d in g1; e in g2
    assert doc["active_members"]["value"] == 3
    scored = run_stats(capsys, history, "--operator", "op1", "--metrics", "operator_score")
    assert [(g["chat_id"], g["grade"]) for g in scored["operator_score"]["groups"]] == [
        ("g1", "B"),  # as in the single-group test
        ("g2", "A"),  # activity 1, growth 0.5 (no change), no scores/orders: 0.4/0.5 = 80
    ]


def test_same_json_on_both_databases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_unavailable: str | None
) -> None:
    if postgres_unavailable:
        pytest.skip(postgres_unavailable)
    import uuid

    import psycopg

    from tests.conftest import ADMIN_URL

    name = f"qp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    urls = {"sqlite": f"sqlite:///{tmp_path / 'same.db'}", "postgresql": f"{base}/{name}"}
    try:
        documents = {}
        for kind, url in urls.items():
            engine = make_engine(url)
            upgrade(engine)
            load_history(engine)
            engine.dispose()
            config = write_config(tmp_path / f"{kind}.toml", url, EXTRA)
            documents[kind] = run_stats(capsys, config, "--group", "g1")
        assert documents["sqlite"] == documents["postgresql"]
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_unknown_metric_is_a_usage_error(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["stats", "-c", str(history), "--group", "g1", "--metrics", "nope"]) == 2
    assert "unknown metric id(s) nope" in capsys.readouterr().err


def test_table_shows_every_metric_in_chinese(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["stats", "-c", str(history), "--group", "g1", "--date", "2026-09-18"]) == 0
    out = capsys.readouterr().out
    for label in (
        "消息总量",
        "社群活跃度",
        "活动参与人数",
        "营销额(元)",
        "7日留存",
        "消息量排名",
        "观点倾向分布",
        "内容高频词",
        "消息的时间分布",
        "特定行为",
        "用户黏性",
        "用户分层",
        "转化漏斗",
        "流失画像",
        "目标达成",
        "运营贡献度",
    ):
        assert label in out, label
    assert "150.00" in out  # gmv in yuan


def test_explicit_range_matches_the_day_and_spans_the_shanghai_midnight(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = "messages,hour_histogram,participants"
    day = run_stats(capsys, history, "--group", "g1", "--metrics", wanted)
    ranged = run_stats(
        capsys,
        history,
        "--group",
        "g1",
        "--from",
        "2026-09-18",
        "--to",
        "2026-09-18",
        "--metrics",
        wanted,
    )
    assert ranged["period"]["kind"] == "range"
    assert {k: ranged[k] for k in wanted.split(",")} == {k: day[k] for k in wanted.split(",")}
    both = run_stats(
        capsys,
        history,
        "--group",
        "g1",
        "--from",
        "2026-09-17",
        "--to",
        "2026-09-18",
        "--metrics",
        wanted,
    )
    # m1 (Thu 23:59) and m2 (Fri 00:00) sit either side of the Shanghai midnight
    assert both["messages"]["value"] == 7
    assert both["hour_histogram"]["counts"][23] == 2  # m1 and m8
    assert both["participants"]["value"] == 2


def test_a_burst_above_four_weeks_of_the_same_hour_is_an_anomaly(database_url: str) -> None:
    """Fri 19:00 local (11:00Z) had 1 message in each of the 4 weeks before; now 12."""
    from datetime import date, timedelta

    from analytics.periods import resolve_period
    from handlers.stats import collect_stats
    from storage.queries import find_group

    engine = make_engine(database_url)
    upgrade(engine)
    try:
        friday = at(18, 11)  # Fri 2026-09-18 19:00 Shanghai
        events: list[list[MessageEvent | MembershipEvent]] = [
            [msg(f"w{k}", "a", friday - timedelta(weeks=k), "平常的一句话")] for k in range(1, 5)
        ]
        events += [
            [msg(f"b{n}", f"u{n % 3}", friday + timedelta(minutes=n), "怎么回事")]
            for n in range(12)
        ]
        EventStore(engine).store(events)
        group = find_group(engine, "g1")
        assert group is not None
        period = resolve_period("day", date(2026, 9, 18), ZoneInfo("Asia/Shanghai"))
        found = collect_stats(engine, group, period, wanted={"anomalies"}).to_json()["anomalies"]
    finally:
        engine.dispose()
    # baseline 1, 1, 1, 1: mean 1, sigma 0; 12 > 1 and reaches the minimum of 10
    assert found == [
        {"measure": "messages", "hour": "2026-09-18T19:00", "value": 12, "mean": 1.0, "sigma": 0.0}
    ]


def test_excluded_users_count_in_messages_but_not_in_rank_words_or_activity(
    tmp_path: Path, history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "excluded.toml"
    config.write_text(
        history.read_text(encoding="utf-8") + '\n[activity]\nexclude_users = ["d"]\n',
        encoding="utf-8",
    )
    doc = run_stats(
        capsys,
        config,
        "--group",
        "g1",
        "--metrics",
        "messages,message_rank,active_members,participants,top_words",
    )
    assert doc["messages"]["value"] == 6  # d's messages are still messages
    assert [e["member"] for e in doc["message_rank"]] == ["a"]
    assert doc["active_members"]["value"] == 1
    assert doc["participants"]["value"] == 1  # only a's check-in (m2)
    words = {w["word"]: w["count"] for w in doc["top_words"]}
    assert words.get("打卡") == 1
    assert "关照" not in words  # m3 was d's
