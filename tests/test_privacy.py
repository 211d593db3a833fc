"""Privacy and data care on SQLite and PostgreSQL: opt-out, forget, purge, retention, audit.

Everything goes through the real command line (``bot.cli.main``) and the real event
writer; the counts are checked against ``qunpulse stats --json``.

Hand count for group ``g1`` (the day 2026-11-20 in Shanghai unless said otherwise):
    alice 3 messages, bob 2 (one of them the command ``/rank``), carol 1.
    messages = 6; message rank: alice 3, bob 1, carol 1; active members 3; members 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.cli import main
from bot.events import Chat, ChatId, MembershipEvent, MessageEvent, Person, UserId
from bot.retention import run_retention
from bot.telemetry import Telemetry
from config import Settings, load_settings
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.models import GroupMember, Member, Message
from storage.models import MembershipEvent as MembershipRow
from tests.conftest import write_config

DAY = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def message(msg_id: str, user: str, at: datetime, text: str = "你好") -> MessageEvent:
    return MessageEvent(
        platform="wecom",
        bot_id="b",
        message_id=msg_id,
        chat=Chat(ChatId("g1"), "group", "测试群"),
        sender=Person(UserId(user), f"{user.title()} 名字"),
        msg_type="text",
        text=text,
        sent_at=at,
        source="at_mentions_only",
    )


def membership(event_id: str, change: str, users: list[str], at: datetime) -> MembershipEvent:
    return MembershipEvent(
        platform="wecom",
        bot_id="b",
        event_id=event_id,
        chat=Chat(ChatId("g1"), "group"),
        change=change,  # type: ignore[arg-type]
        members=tuple(Person(UserId(u)) for u in users),
        occurred_at=at,
    )


def day_script(at: datetime, prefix: str = "") -> list[MessageEvent]:
    minute = timedelta(minutes=1)
    return [
        message(f"{prefix}m1", "alice", at, "今天的直播几点开始"),
        message(f"{prefix}m2", "bob", at + minute, "/rank"),
        message(f"{prefix}m3", "alice", at + 2 * minute, "收到"),
        message(f"{prefix}m4", "carol", at + 3 * minute, "产品很好用"),
        message(f"{prefix}m5", "bob", at + 4 * minute, "有回放吗"),
        message(f"{prefix}m6", "alice", at + 5 * minute, "谢谢"),
    ]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> str:
    return str(write_config(tmp_path / "qunpulse.toml", database_url))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def stats(capsys: pytest.CaptureFixture[str], config: str, day: str = "2026-11-20") -> dict:
    code, out, err = cli(
        capsys, "stats", "-c", config, "--group", "g1", "--date", day, "--json", "--period", "day"
    )
    assert code == 0, err
    return json.loads(out)


#: Figures read from the words themselves: blanking text rightly changes them.
TEXT_FIGURES = ("top_words", "topics")


def counts(document: dict) -> dict:
    """Every figure of a stats document but names and words (which forget may erase).

    Sentiment scores are kept with the message, so the split stays; only texts still
    waiting for a score are no longer waiting once their text is gone.
    """
    skip = ("group", "period", "message_rank", *TEXT_FIGURES)
    figures = {k: v for k, v in document.items() if k not in skip}
    figures["rank"] = [(e["member"], e["messages"]) for e in document["message_rank"]]
    split = dict(figures.get("sentiment_split") or {})
    split["counts"] = {k: v for k, v in (split.get("counts") or {}).items() if k != "unscored"}
    figures["sentiment_split"] = split
    return figures


def texts(engine: Engine) -> list[str | None]:
    with engine.connect() as connection:
        return list(connection.execute(select(Message.text).order_by(Message.id)).scalars())  # type: ignore[call-overload]


def test_admin_optout_hides_then_optin_shows_and_both_are_audited(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    EventStore(engine).store([day_script(DAY)])

    code, out, _ = cli(capsys, "member", "optout", "wecom", "alice", "-c", config)
    assert code == 0
    assert "hidden" in out
    rank = stats(capsys, config)["message_rank"]
    assert rank[0] == {
        "position": 1,
        "member": "alice",
        "name": "Alice 名字",
        "messages": 3,
        "opted_out": True,
    }

    assert cli(capsys, "member", "optin", "wecom", "alice", "-c", config)[0] == 0
    assert "opted_out" not in stats(capsys, config)["message_rank"][0]

    code, out, _ = cli(capsys, "audit", "list", "-c", config)
    assert code == 0
    lines = out.strip().splitlines()
    assert "optin" in lines[0]
    assert "optout" in lines[1]
    assert all("wecom:alice" in line for line in lines)


def test_unknown_member_is_a_usage_error(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "member", "optout", "wecom", "nobody", "-c", config)
    assert code == 2
    assert "no member 'nobody' on wecom" in err


def test_forget_without_yes_and_without_a_terminal_refuses(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    EventStore(engine).store([day_script(DAY)])
    code, _, err = cli(capsys, "member", "forget", "wecom", "alice", "-c", config)
    assert code == 2
    assert "pass --yes" in err
    assert "今天的直播几点开始" in texts(engine)


def test_forget_erases_text_and_name_and_keeps_every_count(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    EventStore(engine).store([day_script(DAY)])
    before = stats(capsys, config)

    code, out, _ = cli(capsys, "member", "forget", "wecom", "alice", "--yes", "-c", config)

    assert code == 0
    assert "forgot alice on wecom" in out
    assert "messages 3" in out
    assert texts(engine) == [None, "/rank", None, "产品很好用", "有回放吗", None]
    with engine.connect() as connection:
        names = dict(connection.execute(select(Member.user_id, Member.display_name)).all())  # type: ignore[call-overload]
    assert names == {"alice": None, "bob": "Bob 名字", "carol": "Carol 名字"}
    after = stats(capsys, config)
    assert counts(after) == counts(before)
    assert after["message_rank"][0]["name"] is None
    assert "forget" in cli(capsys, "audit", "list", "-c", config)[1]


def test_purge_deletes_every_row_and_says_past_figures_change(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = EventStore(engine)
    store.store([[membership("j1", "join", ["alice", "bob"], DAY - timedelta(hours=1))]])
    store.store([day_script(DAY)])
    assert stats(capsys, config)["messages"]["value"] == 6

    code, out, _ = cli(
        capsys, "member", "forget", "wecom", "alice", "--purge", "--yes", "-c", config
    )

    assert code == 0
    assert "group figures for past periods change" in out
    with engine.connect() as connection:
        users = connection.execute(select(Member.user_id)).scalars().all()  # type: ignore[call-overload]
        memberships = connection.execute(select(MembershipRow.member_id)).scalars().all()  # type: ignore[call-overload]
        seen = connection.execute(select(GroupMember.member_id)).scalars().all()  # type: ignore[call-overload]
    assert sorted(users) == ["bob", "carol"]
    assert len(memberships) == 1  # bob's join
    assert len(seen) == 2
    after = stats(capsys, config)
    assert after["messages"]["value"] == 3
    assert after["joins"]["value"] == 1
    assert [e["member"] for e in after["message_rank"]] == ["carol", "bob"]  # carol got 1 first
    assert "purge" in cli(capsys, "audit", "list", "-c", config)[1]


def test_a_purged_member_who_writes_again_is_stored_as_new_by_a_running_writer(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: the serving process caches member ids; a purge in another process
    must not make its next write fail on a foreign key."""
    serving = EventStore(engine)  # stands for `qunpulse serve`, with warm caches
    serving.store([day_script(DAY)])
    assert (
        cli(capsys, "member", "forget", "wecom", "alice", "--purge", "--yes", "-c", config)[0] == 0
    )

    later = DAY + timedelta(hours=2)
    result = serving.store([[message("again1", "alice", later, "我又来了")]])

    assert [s.new for s in result[0]] == [True]
    document = stats(capsys, config)
    assert document["messages"]["value"] == 4
    assert ("alice", 1) in [(e["member"], e["messages"]) for e in document["message_rank"]]
    assert document["members"]["value"] == 3  # alice counts again, as a new member


def test_retention_blanks_old_text_and_keeps_the_old_period_counts(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old_day = DAY - timedelta(days=200)
    store = EventStore(engine)
    store.store([day_script(old_day, "old-")])
    store.store([day_script(DAY)])
    old_date = old_day.date().isoformat()
    before_old, before_new = stats(capsys, config, old_date), stats(capsys, config)
    settings = load_settings(config, env={})
    telemetry = Telemetry()

    result = run_retention(engine, settings, DAY + timedelta(hours=1), telemetry)

    assert result.messages_blanked == 6
    assert texts(engine)[:6] == [None] * 6
    assert "今天的直播几点开始" in texts(engine)[6:]
    assert counts(stats(capsys, config, old_date)) == counts(before_old)
    assert counts(stats(capsys, config)) == counts(before_new)
    rendered = telemetry.render().decode()
    assert 'qunpulse_retention_expired_total{what="message_text"} 6.0' in rendered
    assert "qunpulse_retention_runs_total 1.0" in rendered
    again = run_retention(engine, settings, DAY + timedelta(hours=1), telemetry)
    assert again.messages_blanked == 0


def test_retention_of_membership_keeps_who_is_a_member(
    engine: Engine, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting an old departure must not bring the member back into `members`."""
    config = str(
        write_config(
            tmp_path / "short.toml",
            database_url,
            "[retention]\nmessage_text_days = 0\nmembership_days = 30\nalerts_days = 0\n",
        )
    )
    long_ago = DAY - timedelta(days=100)
    store = EventStore(engine)
    store.store([[membership("j1", "join", ["alice", "bob", "carol"], long_ago)]])
    store.store([[membership("l1", "leave", ["bob"], long_ago + timedelta(days=1))]])
    store.store([[membership("l2", "leave", ["carol"], DAY - timedelta(days=2))]])
    store.store([day_script(DAY)])
    assert stats(capsys, config)["members"]["value"] == 1  # alice (bob, carol left)
    settings: Settings = load_settings(config, env={})

    result = run_retention(engine, settings, DAY + timedelta(hours=1))

    assert result.membership_events_deleted == 4  # three old joins and bob's old leave
    assert result.messages_blanked == 0  # message_text_days = 0 keeps text forever
    assert stats(capsys, config)["members"]["value"] == 1
    with engine.connect() as connection:
        kinds = connection.execute(select(MembershipRow.kind)).scalars().all()  # type: ignore[call-overload]
    assert kinds == ["leave"]  # carol's recent leave stays


def test_retention_run_command_reports_and_audits(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    EventStore(engine).store([day_script(datetime.now(UTC) - timedelta(days=400))])
    code, out, _ = cli(capsys, "retention", "run", "-c", config)
    assert code == 0
    assert "blanked the text of 6 messages" in out
    assert "retention" in cli(capsys, "audit", "list", "-c", config)[1]


def test_a_member_whose_old_departure_expired_counts_again_when_they_rejoin(
    engine: Engine, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The serving writer's caches expire (here at once), so a group membership row
    deleted by retention in another process is written again on the member's return."""
    config = str(
        write_config(tmp_path / "short.toml", database_url, "[retention]\nmembership_days = 30\n")
    )
    serving = EventStore(engine, cache_ttl=0)
    long_ago = DAY - timedelta(days=100)
    serving.store([[membership("j1", "join", ["alice", "bob"], long_ago)]])
    serving.store([[membership("l1", "leave", ["bob"], long_ago + timedelta(days=1))]])
    run_retention(engine, load_settings(config, env={}), DAY)
    assert stats(capsys, config)["members"]["value"] == 1

    serving.store([[membership("j2", "join", ["bob"], DAY + timedelta(minutes=1))]])

    document = stats(capsys, config)
    assert document["members"]["value"] == 2
    assert document["joins"]["value"] == 1


def test_a_forgotten_name_is_stored_again_when_the_member_writes_again(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    serving = EventStore(engine, cache_ttl=0)
    serving.store([day_script(DAY)])
    assert cli(capsys, "member", "forget", "wecom", "carol", "--yes", "-c", config)[0] == 0

    serving.store([[message("again", "carol", DAY + timedelta(hours=1), "我回来了")]])

    rank = {e["member"]: e for e in stats(capsys, config)["message_rank"]}
    assert rank["carol"]["name"] == "Carol 名字"
    assert rank["carol"]["messages"] == 2
    assert texts(engine)[3] is None  # what was forgotten stays forgotten


def test_the_scheduled_retention_job_blanks_old_text(
    engine: Engine, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`retention` is a scheduled job like the posts: `qunpulse run retention` runs it now."""
    EventStore(engine).store([day_script(datetime.now(UTC) - timedelta(days=400))])
    code, _, err = cli(capsys, "run", "retention", "-c", config)
    assert code == 0, err
    assert texts(engine) == [""] * 6 or texts(engine) == [None] * 6
