"""Storage on SQLite and PostgreSQL: unique keys, migrations, membership state, local days."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, insert, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import SQLModel

from analytics.periods import offset_segments, resolve_period
from bot.events import Chat, ChatId, MembershipEvent, MessageEvent, Person, UserId
from storage.db import HEAD, alembic_config, current_revision, make_engine, upgrade
from storage.ingest import EventStore
from storage.models import GroupMember, Member, Message
from storage.privacy import forget_member
from storage.queries import PeriodQueries, as_date, bot_ids, find_group, local_date

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def message(
    msg_id: str, user: str, at: datetime, text: str = "你好", chat: str = "g1"
) -> MessageEvent:
    return MessageEvent(
        platform="wecom",
        bot_id="b",
        message_id=msg_id,
        chat=Chat(ChatId(chat), "group"),
        sender=Person(UserId(user), user.title()),
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


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything the database's catalog says of its tables, comparable with ``==``:
    columns in order with types, nullability and defaults; keys; indexes with their
    ``WHERE``; and each database's own DDL, for what the inspector leaves out."""
    inspector = inspect(engine)
    tables = {
        name: {
            "columns": inspector.get_columns(name),
            "primary key": inspector.get_pk_constraint(name),
            "foreign keys": _sorted(inspector.get_foreign_keys(name)),
            "unique": _sorted(inspector.get_unique_constraints(name)),
            "checks": _sorted(inspector.get_check_constraints(name)),
            "indexes": _sorted(inspector.get_indexes(name)),
        }
        for name in inspector.get_table_names()
    }
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            ddl = {
                name: _sqlite_clauses(sql) if kind == "table" else " ".join(sql.split())
                for kind, name, sql in connection.exec_driver_sql(
                    "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                )
            }
        else:
            ddl = {
                "indexes": _sorted(
                    connection.exec_driver_sql(
                        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                    ).all()
                ),
                "constraints": _sorted(
                    connection.exec_driver_sql(
                        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                    ).all()
                ),
                "sequences": _sorted(
                    connection.exec_driver_sql(
                        "SELECT sequence_name, data_type, start_value, increment "
                        "FROM information_schema.sequences"
                    ).all()
                ),
            }
    # Types and partial-index clauses are objects without equality: compare their text.
    return json.loads(json.dumps({"tables": tables, "ddl": ddl}, default=str, sort_keys=True))


def _sorted(items: Sequence[Any]) -> list[Any]:
    return sorted(items, key=str)


def _sqlite_clauses(sql: str) -> tuple[str, list[str]]:
    """A ``CREATE TABLE`` as its head and clauses: columns in order, then the table
    constraints sorted (a table rebuilt by a migration lists them in another order, to
    the same effect)."""
    head, _, body = " ".join(sql.split()).partition(" (")
    clauses, depth, start = [], 0, 0
    for at, char in enumerate(body.removesuffix(")")):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            clauses.append(body[start:at].strip())
            start = at + 1
    clauses.append(body.removesuffix(")")[start:].strip())
    keywords = ("CONSTRAINT", "PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK")
    columns = [clause for clause in clauses if not clause.startswith(keywords)]
    return head, columns + sorted(set(clauses) - set(columns))


def test_a_new_database_is_created_exactly_as_the_migrations_build_it(
    database_url: str,
) -> None:
    from alembic import command

    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "head")
        migrated = _schema(engine)
        existing = MetaData()
        existing.reflect(engine)
        existing.drop_all(engine)
        assert _schema(engine)["tables"] == {}
        upgrade(engine)
        assert current_revision(engine) == HEAD
        assert _schema(engine) == migrated
    finally:
        engine.dispose()


def test_a_new_database_is_created_without_loading_alembic(database_url: str) -> None:
    # Loading Alembic and replaying every migration took a quarter of a second of each
    # first start (a fresh `qunpulse import` measures it).
    script = (
        "import sys; from storage.db import make_engine, upgrade; "
        "upgrade(make_engine(sys.argv[1])); print(sorted(sys.modules.keys() & {'alembic'}))"
    )
    shown = subprocess.run(  # noqa: S603 - this Python, our own code
        [sys.executable, "-c", script, database_url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "[]"
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_a_first_start_cut_short_leaves_the_database_empty(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: on SQLite the tables were created outside the transaction, so a start
    stopped before the revision was written left tables that no later start could
    create again."""

    class Stopped(Exception):
        pass

    create_all = SQLModel.metadata.create_all

    def create_then_stop(*args: Any, **kwargs: Any) -> None:
        create_all(*args, **kwargs)
        raise Stopped

    engine = make_engine(database_url)
    try:
        monkeypatch.setattr(SQLModel.metadata, "create_all", create_then_stop)
        with pytest.raises(Stopped):
            upgrade(engine)
        monkeypatch.undo()
        assert inspect(engine).get_table_names() == []
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_a_database_with_tables_but_no_revision_is_left_to_alembic(engine: Engine) -> None:
    # Not empty: whatever made it, creating tables over it could only fail or half-work.
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
    with pytest.raises(DBAPIError, match="already exists"):
        upgrade(engine)


def test_upgrade_twice_is_harmless(engine: Engine) -> None:
    upgrade(engine)


def test_head_is_alembics_head_and_an_older_database_is_upgraded(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == HEAD
    assert current_revision(engine) == HEAD
    # A database one migration behind (as after installing a newer qunpulse) is upgraded,
    # although the fast path skips Alembic when the revision is already HEAD.
    from alembic import command

    command.downgrade(alembic_config(engine), "-1")
    assert current_revision(engine) != HEAD
    upgrade(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_the_metrics_bot_filter_reads_the_bots_index_not_every_member(engine: Engine) -> None:
    # Every period aggregate asks for the bots' ids; scanning a 50,000-member table for
    # them cost more than half of a month's `stats` on SQLite (migration 0011).
    query = bot_ids().compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # A tiny test table is cheaper to scan; forbid that to see the index is usable.
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {query}").scalars().all()
        else:
            plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")]
    assert any("ix_member_bots" in line for line in plan), plan


def test_redelivery_through_a_fresh_store_is_not_new(engine: Engine) -> None:
    event = message("m1", "alice", T0)
    first = EventStore(engine).store([[event]])
    again = EventStore(engine).store([[event], [event]])  # another process, no shared cache
    assert [s.new for s in first[0]] == [True]
    assert [s.new for batch in again for s in batch] == [False, False]
    with engine.connect() as connection:
        assert len(connection.execute(select(Message.id)).all()) == 1  # type: ignore[call-overload]


def test_message_ids_are_unique_in_the_schema_itself(engine: Engine) -> None:
    EventStore(engine).store([[message("m1", "alice", T0)]])
    with engine.connect() as connection:
        row = connection.execute(select(Message.group_id, Message.member_id)).one()  # type: ignore[call-overload]
    duplicate = {
        "platform": "wecom",
        "platform_msg_id": "m1",
        "group_id": row.group_id,
        "member_id": row.member_id,
        "msg_type": "text",
        "sent_at": T0,
        "is_command": False,
    }
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(Message), [duplicate])


def test_the_writer_binds_every_value_as_a_sqlalchemy_insert_would(engine: Engine) -> None:
    """The writer sends plain SQL; what it stores must equal, byte for byte, what an ORM
    insert of the same values stores (regression: a whole-second time lost its
    ``.000000`` on SQLite, which broke string comparisons of times)."""
    EventStore(engine).store([[message("m1", "alice", T0, text="/stats")]])
    copies = {
        "message": ("platform_msg_id", "m1", "m1-core"),
        "member": ("user_id", "alice", "alice-core"),
        "inbound_event": ("event_key", "msg:m1", "msg:m1-core"),
    }
    with engine.begin() as connection:
        for name, (key, value, copy) in copies.items():
            table = SQLModel.metadata.tables[name]
            row = connection.execute(select(table).where(table.c[key] == value)).one()
            values = {k: v for k, v in row._mapping.items() if k != "id"}
            connection.execute(insert(table), [{**values, key: copy}])
        seen = SQLModel.metadata.tables["group_member"]
        [(group_id, first_seen)] = connection.execute(
            select(seen.c.group_id, seen.c.first_seen_at)
        ).all()
        copied_member = connection.execute(
            select(SQLModel.metadata.tables["member"].c.id).where(
                SQLModel.metadata.tables["member"].c.user_id == "alice-core"
            )
        ).scalar_one()
        connection.execute(
            insert(seen),
            [{"group_id": group_id, "member_id": copied_member, "first_seen_at": first_seen}],
        )
        raw = {
            name: connection.exec_driver_sql(f"SELECT * FROM {name}").all()  # noqa: S608
            for name in (*copies, "group_member")
        }
    for name, (key, _, _) in copies.items():
        columns = list(SQLModel.metadata.tables[name].c.keys())
        skip = {columns.index("id"), columns.index(key)}
        written, copied = ([v for i, v in enumerate(r) if i not in skip] for r in raw[name])
        assert written == copied, name
    assert raw["group_member"][0][2] == raw["group_member"][1][2]


def _ingest_statement(engine: Engine) -> str | None:
    """The last statement of the server's own ingest connection (PostgreSQL only)."""
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT query FROM pg_stat_activity WHERE application_name = 'qunpulse-ingest'"
            " AND datname = current_database()"
        ).scalar()


async def test_a_warm_writer_stores_what_a_cold_one_stores(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Once its groups are known, a batch of messages goes to PostgreSQL as one
    statement: new, redelivered, repeated, private and command messages, new members and
    renamed ones come out as the general path stores them."""
    store = EventStore(engine)
    await store.store_async([[message("m1", "alice", T0)], [message("m2", "bob", T0)]])
    renamed = replace(
        message("m7", "bob", T0 - timedelta(hours=1)), sender=Person(UserId("bob"), "Bobby")
    )
    private = replace(
        message("p1", "bob", T0 + timedelta(minutes=2)), chat=Chat(ChatId("bob"), "single")
    )
    later = T0 + timedelta(minutes=1)
    results = await store.store_async(
        [
            [message("m3", "alice", later)],
            [message("m1", "alice", T0)],  # a redelivery
            [message("m4", "bob", later)],
            [message("m4", "bob", later)],  # the same callback twice in one batch
            [private],
            [message("m5", "bob", later, text="/stats")],
            [message("m6", "carol", later)],  # a new member
            [renamed],  # an earlier message under a new name
        ]
    )
    if engine.dialect.name == "postgresql":
        assert (_ingest_statement(engine) or "").startswith("WITH claimed AS")
    assert [r.getMessage() for r in caplog.records if r.name == "storage.ingest"] == []
    await store.aclose()

    assert [s.new for batch in results for s in batch] == [True, False, True, False] + [True] * 4
    with engine.connect() as connection:
        stored = connection.execute(
            select(Message.platform_msg_id, Message.is_command).order_by(Message.platform_msg_id)  # type: ignore[arg-type]
        ).all()
        claims = connection.exec_driver_sql("SELECT count(*) FROM inbound_event").scalar()
        members = connection.execute(
            select(Member.user_id, Member.display_name, GroupMember.first_seen_at)  # type: ignore[call-overload]
            .join(GroupMember, GroupMember.member_id == Member.id)
            .order_by(Member.user_id)
        ).all()
    assert [tuple(row) for row in stored] == [
        ("m1", False),
        ("m2", False),
        ("m3", False),
        ("m4", False),
        ("m5", True),
        ("m6", False),
        ("m7", False),
    ]
    assert claims == 8  # p1 is claimed: a private message is a command to the bot
    assert [tuple(row) for row in members] == [
        ("alice", "Alice", T0),
        ("bob", "Bobby", T0 - timedelta(hours=1)),  # the newest name; seen earlier than known
        ("carol", "Carol", later),
    ]


@pytest.mark.parametrize("writer", ["store", "store_async"])
async def test_the_newest_name_given_wins_within_a_batch(engine: Engine, writer: str) -> None:
    """Regression: an event without a name (WeCom callbacks carry none) blanked a new
    member's name given earlier in the batch, and a name equal to the known one did not
    undo an earlier rename in the same batch."""
    store = EventStore(engine)

    async def write(batches: list[list[MessageEvent]]) -> None:
        if writer == "store":
            store.store(batches)
        else:
            await store.store_async(batches)

    def named(event: MessageEvent, name: str | None) -> MessageEvent:
        return replace(event, sender=Person(event.sender.user_id, name))

    await write([[message("m1", "bob", T0)]])  # bob is known as "Bob"
    await write(
        [
            [message("m2", "carol", T0)],  # a new member, "Carol"
            [named(message("m3", "carol", T0), None)],
            [named(message("m4", "bob", T0), "Bobby")],
            [message("m5", "bob", T0)],  # "Bob" again, last
        ]
    )
    await store.aclose()

    with engine.connect() as connection:
        names = connection.execute(
            select(Member.user_id, Member.display_name).order_by(Member.user_id)  # type: ignore[arg-type]
        ).all()
    assert [tuple(row) for row in names] == [("bob", "Bob"), ("carol", "Carol")]


async def test_a_warm_writer_stores_a_purged_member_again(engine: Engine) -> None:
    """Regression guard: a purge in another process deletes a member the writer has
    cached; the one-statement write fails on its foreign key and the batch is stored
    from the database instead, the member as new."""
    store = EventStore(engine)
    await store.store_async([[message("m1", "alice", T0)], [message("m2", "bob", T0)]])
    await store.store_async([[message("m3", "alice", T0 + timedelta(minutes=1))]])
    forget_member(engine, "wecom", "alice", purge=True)

    result = await store.store_async([[message("m4", "alice", T0 + timedelta(minutes=2))]])
    again = await store.store_async([[message("m5", "alice", T0 + timedelta(minutes=3))]])
    await store.aclose()

    assert [s.new for s in result[0] + again[0]] == [True, True]
    with engine.connect() as connection:
        ids = (
            connection.execute(select(Message.platform_msg_id).order_by(Message.platform_msg_id))
            .scalars()
            .all()
        )  # type: ignore[arg-type]
    assert ids == ["m2", "m4", "m5"]


async def test_a_writer_whose_connection_was_cut_stores_on(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement connection is PostgreSQL's")
    store = EventStore(engine)
    await store.store_async([[message("m1", "alice", T0)]])
    await store.store_async([[message("m2", "alice", T0)]])
    with engine.connect() as connection:
        cut = (
            connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'qunpulse-ingest' AND datname = current_database()"
            )
            .scalars()
            .all()
        )
    assert cut == [True]

    results = [await store.store_async([[message(f"m{n}", "alice", T0)]]) for n in (3, 4)]
    await store.aclose()

    assert [r[0][0].new for r in results] == [True, True]
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM message").scalar() == 4


def test_display_names_follow_the_newest(engine: Engine) -> None:
    store = EventStore(engine)
    store.store([[message("m1", "alice", T0)]])
    renamed = replace(
        message("m2", "alice", T0 + timedelta(minutes=1)),
        sender=Person(UserId("alice"), "Alice Wang"),
    )
    store.store([[renamed]])
    from storage.models import Member

    with engine.connect() as connection:
        names = connection.execute(select(Member.display_name)).scalars().all()  # type: ignore[call-overload]
    assert names == ["Alice Wang"]


def test_members_follow_joins_leaves_and_rejoins(engine: Engine) -> None:
    store = EventStore(engine)
    store.store(
        [
            [membership("e1", "join", ["a", "b", "c"], T0)],
            [membership("e2", "leave", ["b"], T0 + timedelta(hours=1))],
            [membership("e3", "removed", ["c"], T0 + timedelta(hours=2))],
            [membership("e4", "join", ["b"], T0 + timedelta(hours=3))],
            [message("m1", "d", T0 + timedelta(minutes=30))],  # seen by speaking
        ]
    )
    group = find_group(engine, "g1")
    assert group is not None
    with engine.connect() as connection:
        queries = PeriodQueries(connection, group.id)
        assert queries.members_at(T0) == 0
        assert queries.members_at(T0 + timedelta(minutes=31)) == 4
        assert queries.members_at(T0 + timedelta(hours=2, minutes=1)) == 2
        assert queries.members_at(T0 + timedelta(hours=4)) == 3
        changes = queries.membership_changes(T0, T0 + timedelta(days=1))
    assert changes == {"join": 4, "leave": 1, "removed": 1}


def test_local_dates_follow_daylight_saving(engine: Engine) -> None:
    """New York left DST on 2026-11-01 at 06:00 UTC; local midnight moved from 04:00 to 05:00 UTC."""
    zone = ZoneInfo("America/New_York")
    period = resolve_period("week", date(2026, 11, 1), zone)  # Mon 26 Oct .. Sun 1 Nov
    following = resolve_period("week", date(2026, 11, 2), zone)
    store = EventStore(engine)
    store.store(
        [
            [message("a", "u", datetime(2026, 11, 1, 3, 59, tzinfo=UTC))],  # 31 Oct 23:59 EDT
            [message("b", "u", datetime(2026, 11, 1, 4, 0, tzinfo=UTC))],  # 1 Nov 00:00 EDT
            [message("c", "u", datetime(2026, 11, 2, 4, 30, tzinfo=UTC))],  # 1 Nov 23:30 EST
            [message("d", "u", datetime(2026, 11, 2, 5, 0, tzinfo=UTC))],  # 2 Nov 00:00 EST
        ]
    )
    start, end = period.start_utc, following.end_utc
    segments = offset_segments(zone, start, end)
    assert [s.seconds for s in segments] == [-4 * 3600, -5 * 3600]
    from storage.models import Message as M

    with engine.connect() as connection:
        days = [
            as_date(d)
            for d in connection.execute(
                select(local_date(connection, M.sent_at, segments)).order_by(M.sent_at)  # type: ignore[arg-type]
            ).scalars()
        ]
        group = find_group(engine, "g1")
        assert group is not None
        queries = PeriodQueries(connection, group.id)
        in_week = queries.member_activity(
            period.start_utc, period.end_utc, segments, count_days=True
        )
    assert days == [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 1), date(2026, 11, 2)]
    assert [(a.messages, a.active_days) for a in in_week] == [(3, 2)]


def test_hour_histogram_and_heatmap_follow_daylight_saving(engine: Engine) -> None:
    """New York, Sat 31 Oct .. Mon 2 Nov 2026: 01:30 happens twice on 1 Nov (EDT, then EST)."""
    from handlers.stats import collect_stats

    zone = ZoneInfo("America/New_York")
    EventStore(engine).store(
        [
            [message("h1", "u", datetime(2026, 10, 31, 16, 0, tzinfo=UTC))],  # Sat 12:00 EDT
            [message("h2", "u", datetime(2026, 11, 1, 5, 30, tzinfo=UTC))],  # Sun 01:30 EDT
            [message("h3", "u", datetime(2026, 11, 1, 6, 30, tzinfo=UTC))],  # Sun 01:30 EST
            [message("h4", "u", datetime(2026, 11, 2, 17, 0, tzinfo=UTC))],  # Mon 12:00 EST
            [message("h5", "u", datetime(2026, 11, 3, 4, 59, tzinfo=UTC))],  # Mon 23:59 EST
            [message("h6", "u", datetime(2026, 11, 3, 5, 0, tzinfo=UTC))],  # Tue 00:00: outside
        ]
    )
    group = find_group(engine, "g1")
    assert group is not None
    period = resolve_period("3d", date(2026, 11, 2), zone)
    doc = collect_stats(
        engine, group, period, wanted={"messages", "hour_histogram", "heatmap"}
    ).to_json()
    counts = doc["hour_histogram"]["counts"]
    assert (counts[1], counts[12], counts[23], sum(counts)) == (2, 2, 1, 5)
    assert doc["messages"]["value"] == 5
    grid = doc["heatmap"]["counts"]
    assert (grid[5][12], grid[6][1], grid[0][12], grid[0][23]) == (1, 2, 1, 1)
    assert doc["heatmap"]["peak_weekday"] == 0  # Monday 2 and Sunday 2: the earlier weekday
