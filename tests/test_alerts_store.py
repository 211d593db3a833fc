"""The alert store on SQLite and PostgreSQL: the cooldown and the de-duplication live in
the database, so separate processes (here: separate engines, and threads racing) never
raise the same alert twice."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from storage.alerts import AlertStore, Delivery, NewAlert
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.models import Message
from storage.outbox import Outbox
from tests.test_privacy import message

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
COOLDOWN = timedelta(minutes=60)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    EventStore(engine).store(
        [[message(f"m{i}", "alice", T0 + timedelta(minutes=i))] for i in range(8)]
    )
    yield engine
    engine.dispose()


def _alert(engine: Engine, platform_msg_id: str) -> NewAlert:
    with engine.connect() as connection:
        message_id = connection.execute(
            select(Message.id).where(Message.platform_msg_id == platform_msg_id)  # type: ignore[call-overload]
        ).scalar_one()
    context = AlertStore(engine).contexts([message_id])[message_id]
    return NewAlert(
        group_id=context.group_id,
        group_key="wecom:g1",
        kind="negative",
        dedupe_key=f"message:{message_id}",
        cooldown_subject=str(context.member_id),
        title="群脉告警",
        summary=context.text,
        member_id=context.member_id,
        message_id=message_id,
        member_ids=(context.member_id,),
        text=context.text,
    )


DELIVERY = [Delivery("alert", "wecom", "operators:wecom:g1")]


def test_cooldown_holds_across_engines_and_ends_on_time(engine: Engine, database_url: str) -> None:
    other = make_engine(database_url)  # a second process
    try:
        first = AlertStore(engine).raise_alert(_alert(engine, "m0"), DELIVERY, T0, COOLDOWN)
        second = AlertStore(other).raise_alert(
            _alert(other, "m1"), DELIVERY, T0 + timedelta(minutes=59), COOLDOWN
        )
        later = AlertStore(other).raise_alert(
            _alert(other, "m2"), DELIVERY, T0 + timedelta(minutes=60), COOLDOWN
        )
        again = AlertStore(engine).raise_alert(
            _alert(engine, "m0"), DELIVERY, T0 + timedelta(days=1), COOLDOWN
        )
    finally:
        other.dispose()
    assert first.alert_id is not None
    assert len(first.outbox_ids) == 1
    assert second.skipped == "cooldown"
    assert later.alert_id is not None  # the cooldown is over
    assert again.skipped == "duplicate"  # a message alerts once, ever
    assert [a.state for a in AlertStore(engine).list()] == ["pending", "pending"]
    # A skipped alert leaves nothing behind: no post was queued for it.
    assert len(Outbox(engine).list()) == 2


def test_racing_writers_store_one_alert(engine: Engine) -> None:
    alerts = [_alert(engine, f"m{i}") for i in range(8)]
    store = AlertStore(engine)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda a: store.raise_alert(a, DELIVERY, T0, COOLDOWN), alerts))
    assert sum(r.alert_id is not None for r in results) == 1
    assert sorted(str(r.skipped) for r in results).count("cooldown") == 7
    assert len(Outbox(engine).list()) == 1
