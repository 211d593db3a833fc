"""The bulk import path stores what the live path stores, and keeps its guarantees.

`qunpulse import` writes messages through :class:`storage.history.MessageImporter`, not the
live :class:`storage.ingest.EventStore`. These tests feed the same message events to both
and compare every stored value as the database driver returns it (SQLite text, PostgreSQL
timestamps), so a difference in a time's text form or a flag would show. They also pin
what the bulk path adds: the row-count claim and its fall-back for a chunk only partly new,
ids cached between chunks, and correct line numbers after blank lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.dialects import sqlite

from bot.cli import main
from bot.events import Chat, ChatId, MessageEvent, Person, UserId
from bot.history_import import IMPORT_BOT_ID, imported_message
from storage.db import make_engine, upgrade
from storage.history import MessageImporter, sqlite_time
from storage.ingest import EventStore
from storage.models import Message

CST = timezone(timedelta(hours=8))


def event(
    msg_id: str,
    chat: str,
    sender: str,
    at: datetime,
    text: str | None = "你好",
    *,
    chat_name: str | None = None,
    sender_name: str | None = None,
    msg_type: str = "text",
    source: str = "at_mentions_only",
) -> MessageEvent:
    return MessageEvent(
        platform="wecom",
        bot_id=IMPORT_BOT_ID,
        message_id=msg_id,
        chat=Chat(ChatId(chat), "group", chat_name),
        sender=Person(UserId(sender), sender_name),
        msg_type=msg_type,
        text=text,
        sent_at=at,
        source=source,  # type: ignore[arg-type]
        mentions_bot=False,
    )


FIRST = [
    event("a1", "wrA", "alice", datetime(2026, 11, 20, 9, 0, tzinfo=CST), chat_name="甲群"),
    event(
        "a2",
        "wrA",
        "bob",
        datetime(2026, 11, 20, 9, 1, 2, 345678, tzinfo=CST),
        "价格是多少?",
        sender_name="鲍勃",
    ),
    event(
        "a3",
        "wrA",
        "alice",
        datetime(2026, 11, 20, 8, 59, tzinfo=UTC),
        "/stats",
        sender_name="爱丽丝",
    ),
    event("a4", "wrA", "carol", datetime(2026, 11, 20, 10, 0, tzinfo=CST), None, msg_type="image"),
    event(
        "b1",
        "wrB",
        "bob",
        datetime(2026, 11, 19, 23, 59, 59, tzinfo=CST),
        " ／rank",
        sender_name="鲍勃",
    ),
    event("a2", "wrA", "bob", datetime(2026, 11, 20, 9, 1, 2, 345678, tzinfo=CST), "价格是多少?"),
]
SECOND = [
    # A rename of a group and of a member, an earlier sighting, a group becoming full,
    # and two messages stored before.
    event("a5", "wrA", "bob", datetime(2026, 11, 18, 7, 0, tzinfo=CST), chat_name="甲群新名"),
    event("a6", "wrA", "alice", datetime(2026, 11, 21, 7, 0, tzinfo=CST), sender_name="Alice"),
    event("b2", "wrB", "dave", datetime(2026, 11, 21, 8, 0, tzinfo=CST), source="full"),
    FIRST[0],
    FIRST[4],
]

TABLES = ("group_member", "message", "inbound_event", "member", "chat_group")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value the two paths write, ids replaced by natural keys, as the
    driver returns them (no SQLAlchemy type processing)."""
    queries = {
        "chat_group": "SELECT platform, chat_id, name, source FROM chat_group",
        "member": "SELECT platform, user_id, display_name, opted_out, is_bot, "
        "paid_member_since FROM member",
        "group_member": "SELECT g.chat_id, m.user_id, gm.first_seen_at FROM group_member gm "
        "JOIN chat_group g ON g.id = gm.group_id JOIN member m ON m.id = gm.member_id",
        "message": "SELECT msg.platform, msg.platform_msg_id, g.chat_id, m.user_id, "
        "msg.msg_type, msg.text, msg.sent_at, msg.sentiment, msg.is_command, msg.recalled_at "
        "FROM message msg JOIN chat_group g ON g.id = msg.group_id "
        "JOIN member m ON m.id = msg.member_id",
        "inbound_event": "SELECT platform, event_key, bot_id FROM inbound_event",
    }
    with engine.connect() as connection:
        return {
            table: sorted(
                (tuple(row) for row in connection.exec_driver_sql(query)),
                key=repr,
            )
            for table, query in queries.items()
        }


def wipe(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in TABLES:
            connection.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - constant names


def store_live(engine: Engine, batches: Sequence[Sequence[MessageEvent]]) -> list[int]:
    store = EventStore(engine)
    return [sum(store.store_messages(batch)) for batch in batches]


def store_bulk(engine: Engine, batches: Sequence[Sequence[MessageEvent]]) -> list[int]:
    with MessageImporter(engine, IMPORT_BOT_ID) as importer:
        return [importer.store([imported_message(e) for e in batch]) for batch in batches]


def test_bulk_path_stores_exactly_what_the_live_path_stores(engine: Engine) -> None:
    batches = [FIRST, SECOND, FIRST + SECOND]
    live_new = store_live(engine, batches)
    live = snapshot(engine)
    wipe(engine)
    bulk_new = store_bulk(engine, batches)
    bulk = snapshot(engine)
    assert live_new == bulk_new == [5, 3, 0]
    for table in live:
        assert bulk[table] == live[table], table
    # The figures the comparison rests on, by hand.
    assert len(bulk["message"]) == 8
    assert ("wecom", "wrA", "甲群新名", "at_mentions_only") in bulk["chat_group"]
    assert ("wecom", "wrB", None, "full") in bulk["chat_group"]
    names = {row[1]: row[2] for row in bulk["member"]}
    assert names == {"alice": "Alice", "bob": "鲍勃", "carol": None, "dave": None}
    commands = {row[1]: bool(row[8]) for row in bulk["message"]}
    assert commands == {
        "a1": False,
        "a2": False,
        "a3": True,
        "a4": False,
        "a5": False,
        "a6": False,
        "b1": True,
        "b2": False,
    }
    unscored = [row for row in bulk["message"] if row[7] is not None]
    assert unscored == []  # the sentiment worker finds them all (sentiment IS NULL)


def test_bulk_and_live_paths_share_one_key_either_way_round(engine: Engine) -> None:
    assert store_bulk(engine, [FIRST]) == [5]
    assert store_live(engine, [FIRST]) == [0]
    assert store_live(engine, [SECOND]) == [3]
    assert store_bulk(engine, [SECOND]) == [0]


def test_a_chunk_only_partly_new_claims_just_the_new_messages(engine: Engine) -> None:
    with MessageImporter(engine, IMPORT_BOT_ID) as importer:
        assert importer.store([imported_message(e) for e in FIRST[:2]]) == 2
        # Row count says "some new, some not": the chunk is claimed again row by row.
        assert importer.store([imported_message(e) for e in FIRST + SECOND]) == 6
        assert importer.store([imported_message(e) for e in FIRST + SECOND]) == 0
    assert len(snapshot(engine)["message"]) == 8


def test_a_member_purged_between_chunks_is_created_again_not_referenced(
    engine: Engine, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with MessageImporter(engine, IMPORT_BOT_ID) as importer:
        assert importer.store([imported_message(FIRST[0])]) == 1
        # Another process purges alice while the import holds her id in its cache; her
        # next message (under the name the cache knows) must not use that id.
        config = tmp_path / "qunpulse.toml"
        config.write_text(f'[storage]\nurl = "{database_url}"\n', encoding="utf-8")
        code = main(["member", "forget", "wecom", "alice", "--purge", "--yes", "-c", str(config)])
        assert code == 0, capsys.readouterr().err
        later = event("a7", "wrA", "alice", datetime(2026, 11, 22, 9, 0, tzinfo=CST))
        assert importer.store([imported_message(later)]) == 1
    stored = snapshot(engine)
    assert [row[1] for row in stored["message"]] == ["a7"]
    assert [row[1] for row in stored["member"]] == ["alice"]


def test_a_purged_members_messages_do_not_come_back_on_reimport(
    engine: Engine, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert store_bulk(engine, [FIRST]) == [5]
    config = tmp_path / "qunpulse.toml"
    config.write_text(f'[storage]\nurl = "{database_url}"\n', encoding="utf-8")
    assert main(["member", "forget", "wecom", "bob", "--purge", "--yes", "-c", str(config)]) == 0
    capsys.readouterr()
    assert store_bulk(engine, [FIRST]) == [0]
    stored = snapshot(engine)
    assert sorted(row[1] for row in stored["message"]) == ["a1", "a3", "a4"]
    assert "bob" not in {row[1] for row in stored["member"]}


def test_sqlite_time_is_the_text_sqlalchemy_stores() -> None:
    dialect = sqlite.dialect()
    column = Message.__table__.c.sent_at.type.dialect_impl(dialect)  # type: ignore[attr-defined]
    bind = column.bind_processor(dialect)
    for moment in (
        datetime(2026, 11, 20, 9, 0, tzinfo=CST),
        datetime(2026, 11, 20, 9, 1, 2, 345678, tzinfo=CST),
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ):
        assert sqlite_time(moment) == bind(moment)


def test_overlapping_files_import_only_the_rows_not_seen(
    config_file: Path, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "platform,chat_id,chat_name,sender_id,sender_name,sent_at,msg_type,text,msg_id\n"
    rows = [
        f"wecom,wrCSV,群,u{i % 3},用户{i % 3},2026-11-20 10:{i:02d},text,第{i}条,c{i}\n"
        for i in range(8)
    ]
    early, late = tmp_path / "early.csv", tmp_path / "late.csv"
    early.write_text(header + "".join(rows[:5]), encoding="utf-8")
    late.write_text(header + "".join(rows[3:]), encoding="utf-8")
    capsys.readouterr()
    assert main(["import", str(early), "-c", str(config_file)]) == 0
    assert "imported 5, duplicated 0" in capsys.readouterr().out
    assert main(["import", str(late), "-c", str(config_file)]) == 0
    assert "imported 3, duplicated 2" in capsys.readouterr().out
    engine = make_engine(database_url)
    try:
        assert len(snapshot(engine)["message"]) == 8
    finally:
        engine.dispose()


def test_a_bad_row_after_blank_lines_is_reported_at_its_own_line(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        "platform,chat_id,sender_id,sent_at,text\n"
        "wecom,wrGAP,u1,2026-11-20 10:00,早\n"
        "\n"
        "wecom,wrGAP,u1,not a time,晚\n"
        ",,,,\n"
        "wecom,wrGAP,u1,2026-11-20 10:01,好,extra\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["import", str(path), "-c", str(config_file)]) == 0
    captured = capsys.readouterr()
    assert "imported 1, duplicated 0, rejected 2, skipped 0" in captured.out
    assert f"{path}:4: expected a time like" in captured.err
    assert f"{path}:6: more cells than the 5 header columns" in captured.err


def test_a_nameless_message_does_not_erase_a_name_given_earlier_in_the_chunk(
    engine: Engine,
) -> None:
    named = event("n1", "wrN", "erin", datetime(2026, 11, 20, 9, 0, tzinfo=CST), sender_name="艾琳")
    nameless = event("n2", "wrN", "erin", datetime(2026, 11, 20, 9, 5, tzinfo=CST))
    assert store_bulk(engine, [[named, nameless]]) == [2]
    assert [row[2] for row in snapshot(engine)["member"]] == ["艾琳"]


def test_the_import_connection_goes_back_to_the_pool_with_its_settings(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the page cache and checkpoint settings are SQLite's")

    def settings() -> list[int]:
        with engine.connect() as connection:
            return [
                connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("cache_size", "wal_autocheckpoint")
            ]

    before = settings()
    # The pool's one connection: the importer takes it, changes it and gives it back.
    with MessageImporter(engine, IMPORT_BOT_ID) as importer:
        assert importer.store([imported_message(e) for e in FIRST]) == 5
    assert settings() == before
