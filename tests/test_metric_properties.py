"""Invariants of the catalogue, for any history hypothesis can think of (on SQLite).

- net_growth equals the change in members when all membership comes from events;
- activity_rate lies in [0, 1];
- the hour histogram sums to messages;
- message_rank is a permutation ordered by count, ties by who reached it first, then id.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from analytics.metrics import message_rank
from analytics.periods import resolve_period
from analytics.records import MemberActivity
from bot.events import Chat, ChatId, MembershipEvent, MessageEvent, Person, UserId
from handlers.stats import collect_stats
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.models import ChatGroup, GroupMember, InboundEvent, Member, Message
from storage.models import MembershipEvent as MembershipRow
from storage.queries import find_group

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 9, 18)
START = datetime(2026, 9, 16, 16, 0, tzinfo=UTC)  # two local days before DAY
USERS = ["u1", "u2", "u3"]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'props.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (Message, MembershipRow, GroupMember, InboundEvent, Member, ChatGroup):
            connection.execute(delete(table))  # type: ignore[arg-type]


# Each user toggles in and out: join, then leave or removed, then join again ...
toggles = st.lists(
    st.tuples(
        st.sampled_from(USERS), st.integers(0, 72 * 60 - 1), st.sampled_from(["leave", "removed"])
    ),
    max_size=25,
)
messages = st.lists(
    st.tuples(
        st.sampled_from([*USERS, "bot"]),
        st.integers(0, 72 * 60 - 1),
        st.sampled_from(["聊天内容", "/stats", "打卡"]),
    ),
    max_size=40,
)


def consistent_membership(raw: list[tuple[str, int, str]]) -> list[MembershipEvent]:
    """Turn random toggles into a valid history: alternate join / departure per user."""
    inside: dict[str, bool] = {}
    events = []
    seen_minutes: set[int] = set()
    for index, (user, minute, departure) in enumerate(sorted(raw, key=lambda r: r[1])):
        if minute in seen_minutes:
            continue  # one event per minute keeps the order of events unambiguous
        seen_minutes.add(minute)
        kind = departure if inside.get(user) else "join"
        inside[user] = kind == "join"
        events.append(
            MembershipEvent(
                platform="wecom",
                bot_id="b",
                event_id=f"e{index}",
                chat=Chat(ChatId("g"), "group"),
                change=kind,  # type: ignore[arg-type]
                members=(Person(UserId(user)),),
                occurred_at=START + timedelta(minutes=minute),
            )
        )
    return events


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=toggles, sent=messages, talk=st.booleans())
@example(  # two people speak and then leave, one silent member stays: rate must stay <= 1
    raw=[
        ("u1", 10, "leave"),
        ("u2", 20, "leave"),
        ("u3", 30, "leave"),
        ("u1", 1600, "leave"),
        ("u2", 1700, "removed"),
    ],
    sent=[("u1", 1500, "聊天内容"), ("u2", 1550, "聊天内容")],
    talk=True,
)
def test_counts_agree_with_each_other(
    engine: Engine, raw: list[tuple[str, int, str]], sent: list[tuple[str, int, str]], talk: bool
) -> None:
    reset(engine)
    if not talk:  # half the histories: membership from events only
        sent = [(user, minute, text) for user, minute, text in sent if user == "bot"]
    store = EventStore(engine)
    events: list[MembershipEvent | MessageEvent] = list(consistent_membership(raw))
    # every group needs to exist: one membership-free message from a bot opens it
    events.append(
        MessageEvent(
            platform="wecom",
            bot_id="b",
            message_id="open",
            chat=Chat(ChatId("g"), "group"),
            sender=Person(UserId("bot"), is_bot=True),
            msg_type="text",
            text="hi",
            sent_at=START,
            source="full",
        )
    )
    # Messages only from people inside the group at that minute keep membership event-driven.
    for index, (user, minute, text) in enumerate(sent):
        events.append(
            MessageEvent(
                platform="wecom",
                bot_id="b",
                message_id=f"m{index}",
                chat=Chat(ChatId("g"), "group"),
                sender=Person(UserId(user), is_bot=user == "bot"),
                msg_type="text",
                text=text,
                sent_at=START + timedelta(minutes=minute),
                source="full",
            )
        )
    store.store([[event] for event in events])
    group = find_group(engine, "g")
    assert group is not None
    period = resolve_period("day", DAY, ZONE)
    stats = collect_stats(
        engine,
        group,
        period,
        wanted={"messages", "members", "net_growth", "activity_rate", "hour_histogram"},
    )
    doc = stats.to_json()
    members_before = stats.metrics["members"].previous
    assert isinstance(members_before, int)
    if not talk:
        assert doc["net_growth"]["value"] == doc["members"]["value"] - members_before
    rate = doc["activity_rate"]["value"]
    assert rate is None or 0.0 <= rate <= 1.0
    assert sum(doc["hour_histogram"]["counts"]) == doc["messages"]["value"]


activities = st.lists(
    st.tuples(st.integers(1, 5), st.integers(0, 50)), max_size=12, unique_by=lambda t: t[1]
)


@given(rows=activities)
def test_rank_is_a_permutation_ordered_by_count_then_first_to_reach(
    rows: list[tuple[int, int]],
) -> None:
    base = datetime(2026, 9, 18, tzinfo=UTC)
    activity = [
        MemberActivity(i, f"user{i:02d}", None, False, count, base + timedelta(minutes=minute), 1)
        for i, (count, minute) in enumerate(rows)
    ]
    rank = message_rank(activity)
    assert sorted(e.member for e in rank) == sorted(a.user_id for a in activity)
    assert [e.position for e in rank] == list(range(1, len(rank) + 1))
    by_user = {a.user_id: a for a in activity}
    for first, second in itertools.pairwise(rank):
        assert first.messages >= second.messages
        if first.messages == second.messages:
            a, b = by_user[first.member], by_user[second.member]
            assert (a.last_at, a.user_id) < (b.last_at, b.user_id)
