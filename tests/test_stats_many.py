"""``collect_stats_many``: every group's figures from one pass of queries over all of them
are exactly ``collect_stats`` of that group alone, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import itertools
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, text

from analytics.periods import resolve_period
from bot.demo.generator import Community, DemoSize, generate
from bot.events import Chat, ChatId, Event, MembershipEvent, MessageEvent, Person, UserId
from bot.sentiment import rescore
from config import Settings
from handlers.stats import StatsOptions, collect_stats, collect_stats_many
from storage.db import make_engine, upgrade
from storage.history import OrderRow, OrderStore
from storage.ingest import EventStore
from storage.queries import GroupRecord, QueryScope, list_groups

ZONE = ZoneInfo("Asia/Shanghai")
LAST_DAY = date(2026, 11, 20)


@pytest.fixture
def community(database_url: str) -> Iterator[Engine]:
    """Four demo groups (messages, joins, leaves, orders, scores) of three weeks."""
    engine = make_engine(database_url)
    upgrade(engine)
    found, events = generate(11, DemoSize(groups=4, members=60, days=21), LAST_DAY, ZONE)
    store = EventStore(engine)
    while batch := list(itertools.islice(events, 2000)):
        store.store([batch])
    store.store([_in_two_groups(found)])
    OrderStore(engine).store(
        [
            OrderRow(
                o.platform, o.order_id, o.user_id, o.amount_fen, o.cost_fen, o.status, o.paid_at
            )
            for o in found.orders
        ]
    )
    rescore(engine, Settings(), only_unscored=True)
    with engine.begin() as connection:
        # Somebody of every group is a paid member, and a few messages are recalled.
        connection.execute(
            text(
                "UPDATE member SET paid_member_since = :at WHERE id IN "
                "(SELECT MIN(member_id) FROM group_member GROUP BY group_id)"
            ),
            {"at": datetime(2026, 11, 1, tzinfo=ZONE).replace(tzinfo=None)},
        )
        connection.execute(text("UPDATE message SET recalled_at = sent_at WHERE id % 97 = 0"))
    yield engine
    engine.dispose()


def _in_two_groups(found: Community) -> list[Event]:
    """Members of one group who join another of its platform and talk and pay in both."""
    first, second = next(
        (a, b) for a, b in itertools.combinations(found.groups, 2) if a.platform == b.platform
    )
    chat = Chat(ChatId(second.chat_id), "group", second.name)
    bot_id = f"demo-{second.platform}"
    joined = datetime.combine(LAST_DAY - timedelta(days=2), time(9, 30), ZONE).astimezone(UTC)
    events: list[Event] = []
    for number, member in enumerate(found.members[first.chat_id][:6]):
        person = Person(UserId(member.user_id), member.name)
        events.append(
            MembershipEvent(
                platform=second.platform,
                bot_id=bot_id,
                event_id=f"twice-join-{member.user_id}",
                chat=chat,
                change="join",
                members=(person,),
                occurred_at=joined + timedelta(minutes=number),
            )
        )
        for hour in range(0, 60, 7 + number):
            events.append(
                MessageEvent(
                    platform=second.platform,
                    bot_id=bot_id,
                    message_id=f"twice-{member.user_id}-{hour}",
                    chat=chat,
                    sender=person,
                    msg_type="text",
                    text="打卡 第二个群也来了" if hour % 2 else "老师好，这个课程的价格是多少",
                    sent_at=joined + timedelta(hours=hour, minutes=number + 1),
                    source=second.source,
                )
            )
    return events


def _options(engine: Engine, groups: list[GroupRecord]) -> list[StatsOptions]:
    with engine.connect() as connection:
        busiest = connection.execute(
            text(
                "SELECT m.user_id FROM message g JOIN member m ON m.id = g.member_id "
                "GROUP BY m.user_id ORDER BY COUNT(*) DESC, m.user_id LIMIT 1"
            )
        ).scalar_one()
    return [
        StatsOptions(),
        StatsOptions(
            exclude_users=(str(busiest),), topics={"课程": ("课", "老师"), "价格": ("价",)}
        ),
    ]


@pytest.mark.parametrize("kind", ["day", "week"])
def test_many_groups_at_once_equal_each_group_alone(community: Engine, kind: str) -> None:
    groups = list_groups(community)
    assert len(groups) == 4
    for options in _options(community, groups):
        for day in (LAST_DAY, LAST_DAY - timedelta(days=6)):
            period = resolve_period(kind, day, ZONE)
            now = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), ZONE)
            for when in (None, now):
                many = collect_stats_many(community, groups, period, options=options, now=when)
                assert set(many) == {g.id for g in groups}
                for group in groups:
                    alone = collect_stats(community, group, period, options=options, now=when)
                    assert many[group.id].to_json() == alone.to_json(), (group.chat_id, day)
                    assert many[group.id].previous_rank == alone.previous_rank
    # Not vacuous: the figures differ between groups and include the rarer metrics.
    figures = collect_stats_many(community, groups, resolve_period("week", LAST_DAY, ZONE))
    documents = [figures[g.id].to_json() for g in groups]
    assert len({str(d["message_rank"]) for d in documents}) == len(groups)
    assert any(d["gmv"]["orders"] for d in documents)
    assert any(d["joins"]["value"] for d in documents)
    assert any(d["leaves"]["value"] for d in documents)
    assert any(d["paid_members"]["value"] for d in documents)
    with community.connect() as connection:
        shared = connection.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT member_id FROM group_member "
                "GROUP BY member_id HAVING COUNT(*) > 1) AS twice"
            )
        ).scalar_one()
    assert shared >= 6


@pytest.mark.parametrize("kind", ["day", "week"])
def test_the_previous_rank_is_the_rank_of_the_period_before(community: Engine, kind: str) -> None:
    """The leaderboard's arrows compare with it instead of asking for yesterday again."""
    groups = list_groups(community)
    period = resolve_period(kind, LAST_DAY, ZONE)
    for options in _options(community, groups):
        many = collect_stats_many(community, groups, period, options=options)
        before = collect_stats_many(community, groups, period.previous(), options=options)
        for group in groups:
            assert many[group.id].previous_rank == before[group.id].rank != []
    wanted = {"messages", "message_rank"}
    assert collect_stats(community, groups[0], period, wanted=wanted).previous_rank != []
    assert collect_stats(community, groups[0], period, wanted={"messages"}).previous_rank == []


def test_a_subset_of_groups_and_a_shared_scope_give_the_same_figures(community: Engine) -> None:
    groups = list_groups(community)
    wanted = {"messages", "active_members", "members", "message_rank"}
    today = resolve_period("day", LAST_DAY, ZONE)
    yesterday = resolve_period("yesterday", LAST_DAY, ZONE)
    scope = QueryScope([g.id for g in groups], each=True)
    first = collect_stats_many(community, groups[:2], today, wanted=wanted, scope=scope)
    second = collect_stats_many(community, groups, yesterday, wanted=wanted, scope=scope)
    for group in groups[:2]:
        alone = collect_stats(community, group, today, wanted=wanted)
        assert first[group.id].to_json() == alone.to_json()
    for group in groups:
        alone = collect_stats(community, group, yesterday, wanted=wanted)
        assert second[group.id].to_json() == alone.to_json()


def test_statements_do_not_grow_with_the_groups(community: Engine) -> None:
    groups = list_groups(community)
    period = resolve_period("day", LAST_DAY, ZONE)
    wanted = {"messages", "active_members", "members", "message_rank"}

    def statements(batch: list[GroupRecord]) -> int:
        seen: list[Any] = []

        def count(*_: Any) -> None:
            seen.append(1)

        event.listen(community, "before_cursor_execute", count)
        try:
            collect_stats_many(community, batch, period, wanted=wanted)
        finally:
            event.remove(community, "before_cursor_execute", count)
        return len(seen)

    assert statements(groups) == statements(groups[:1]) > 0


def test_a_scope_rejects_a_group_it_does_not_hold(community: Engine) -> None:
    groups = list_groups(community)
    scope = QueryScope([groups[0].id], each=True)
    with pytest.raises(ValueError, match="not one group of the scope"):
        collect_stats_many(
            community, groups[1:2], resolve_period("day", LAST_DAY, ZONE), scope=scope
        )


def _jobs(community: Engine, database_url: str, cloud_process_min: int) -> tuple[Any, Settings]:
    from pydantic import SecretStr

    from bot.jobs import Jobs
    from config.settings import GroupSettings, StorageSettings
    from storage.outbox import Outbox

    hooks = {
        "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k{n}",
        "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=t{n}",
        "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook/h{n}",
    }
    settings = Settings(
        storage=StorageSettings(url=database_url),
        groups=tuple(
            GroupSettings(
                platform=g.platform,  # type: ignore[arg-type]
                chat_id=g.chat_id,
                webhook=SecretStr(hooks[g.platform].format(n=n)),
            )
            for n, g in enumerate(list_groups(community))
        ),
    )
    now = datetime.combine(LAST_DAY + timedelta(days=1), time(8), ZONE).astimezone(UTC)
    jobs = Jobs(
        settings, community, Outbox(community), lambda: now, cloud_process_min=cloud_process_min
    )
    return jobs, settings


def test_batched_jobs_post_what_one_group_at_a_time_would(
    community: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from analytics.charts import render_word_cloud, top_words_counts
    from storage.outbox import Outbox

    # The worker process draws the clouds (it starts for one cloud here).
    jobs, settings = _jobs(community, database_url, cloud_process_min=1)
    with caplog.at_level(logging.INFO, logger="bot.jobs"):
        queued = {job: jobs.run(job, LAST_DAY).queued for job in ("leaderboard", "daily_digest")}
    assert "starting a worker process" in caplog.text
    posts = {(p.group_key, p.job): p for p in Outbox(community).list(limit=1000)}
    assert len(posts) == sum(len(ids) for ids in queued.values())
    groups = {f"{g.platform}:{g.chat_id}": g for g in settings.groups}
    clouds = 0
    for key, group in groups.items():
        record = next(r for r in list_groups(community) if f"{r.platform}:{r.chat_id}" == key)
        made = jobs.leaderboard_post(group, record, LAST_DAY, group.platform)
        if made is None:
            assert (key, "leaderboard") not in posts
        else:
            assert posts[key, "leaderboard"].body == made[1].body
        period = resolve_period("day", LAST_DAY, ZONE)
        digest, figures = jobs.digest_post(group, record, period, "daily", group.platform)
        assert posts[key, "daily_digest"].body == digest.body
        words = top_words_counts(figures.get("top_words"))
        if group.platform == "wecom" and words:
            clouds += 1
            image = posts[key, "daily_digest_words"]
            assert image.msg_type == "image"
            assert base64.b64decode(image.body) == render_word_cloud(words)
        else:
            assert (key, "daily_digest_words") not in posts
    assert clouds >= 1


def test_a_run_hands_over_each_batch_as_soon_as_it_is_saved(
    community: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.outbox import Outbox

    monkeypatch.setattr("bot.jobs.BATCH_GROUPS", 1)  # one group a batch
    jobs, settings = _jobs(community, database_url, cloud_process_min=1000)
    handed: list[tuple[list[int], set[int]]] = []

    def on_saved(ids: list[int]) -> None:
        handed.append((ids, {p.id for p in Outbox(community).list(limit=1000)}))

    result = jobs.run("daily_digest", LAST_DAY, on_saved=on_saved)
    # One hand-over a group (a cloud, drawn here at once, with its digest); each holds
    # what the outbox just got.
    assert len(handed) == len(settings.groups)
    seen: set[int] = set()
    for ids, in_outbox in handed:
        assert in_outbox == seen | set(ids)
        seen |= set(ids)
    assert [i for ids, _ in handed for i in ids] == result.queued


def test_the_cloud_worker_serves_every_run_until_closed(
    community: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from storage.outbox import Outbox

    others = _workers()  # other tests' processes (the scorer)
    jobs, _ = _jobs(community, database_url, cloud_process_min=1)
    try:
        with caplog.at_level(logging.INFO, logger="bot.jobs"):
            jobs.warm_up()  # starts the worker: a WeCom group may bring a cloud
            assert len(_workers(others)) == 1
            assert Outbox(community).list() == []  # figures made to warm up, never posted
            for day in (LAST_DAY, LAST_DAY - timedelta(days=1)):
                jobs.run("daily_digest", day)
        assert caplog.text.count("starting a worker process") == 1
    finally:
        jobs.close()
    assert _workers(others) == []
    posts = Outbox(community).list(limit=1000)
    clouds = [p for p in posts if p.msg_type == "image"]
    assert {p.period_key for p in clouds} == {
        LAST_DAY.isoformat(),
        (LAST_DAY - timedelta(days=1)).isoformat(),
    }
    digests = {(p.group_key, p.period_key): p.id for p in posts if p.job == "daily_digest"}
    assert all(digests[c.group_key, c.period_key] < c.id for c in clouds)  # queued after


def test_a_killed_cloud_worker_is_replaced_and_no_cloud_is_lost(
    community: Engine, database_url: str
) -> None:
    from analytics.charts import render_word_cloud, top_words_counts
    from storage.outbox import Outbox

    others = _workers()  # other tests' processes (the scorer)
    jobs, settings = _jobs(community, database_url, cloud_process_min=1)
    try:
        jobs.warm_up()
        (killed,) = _workers(others)
        killed.kill()
        killed.join()
        # Drawn here if the run does not know yet; by the next run a new worker draws.
        for day in (LAST_DAY, LAST_DAY - timedelta(days=1)):
            jobs.run("daily_digest", day)
        (worker,) = _workers(others)
        assert worker.pid != killed.pid
    finally:
        jobs.close()
    assert _workers(others) == []
    posts = {
        (p.group_key, p.job): p
        for p in Outbox(community).list(limit=1000)
        if p.period_key == LAST_DAY.isoformat()
    }
    period = resolve_period("day", LAST_DAY, ZONE)
    clouds = 0
    for group in settings.groups:
        key = f"{group.platform}:{group.chat_id}"
        record = next(r for r in list_groups(community) if f"{r.platform}:{r.chat_id}" == key)
        _, figures = jobs.digest_post(group, record, period, "daily", group.platform)
        words = top_words_counts(figures.get("top_words"))
        if group.platform == "wecom" and words:
            clouds += 1
            drawn = base64.b64decode(posts[key, "daily_digest_words"].body)
            assert drawn == render_word_cloud(words)
    assert clouds >= 1


@pytest.mark.parametrize("kind", ["daily", "weekly"])
def test_a_digest_shows_nothing_of_what_jobs_leave_out(community: Engine, kind: str) -> None:
    from analytics.posts import DIGEST_OMITS, Flavour, render_digest

    period = resolve_period("day" if kind == "daily" else "week", LAST_DAY, ZONE)
    for stats in collect_stats_many(community, list_groups(community), period).values():
        document = stats.to_json()
        assert set(document) >= DIGEST_OMITS  # each of them is there, and not shown
        shown = {k: v for k, v in document.items() if k not in DIGEST_OMITS}
        flavours: tuple[Flavour, ...] = ("wecom", "dingtalk", "feishu")
        for flavour in flavours:
            options: dict[str, Any] = {"kind": kind, "locale": "zh_CN", "flavour": flavour}
            assert render_digest(shown, **options) == render_digest(document, **options)


def test_the_cloud_worker_ignores_ctrl_c_and_leaves_when_closed() -> None:
    import os
    import signal
    import time as clock

    from analytics.charts import render_word_cloud
    from bot.jobs import CloudRenderer

    others = _workers()  # other tests' processes (the scorer)
    clouds = CloudRenderer(process_min=1)
    try:
        clouds.start()
        (worker,) = _workers(others)
        os.kill(worker.pid or 0, signal.SIGINT)  # Ctrl-C reaches the whole process group
        clock.sleep(0.3)
        assert worker.is_alive()
        words = {"活动": 5, "课程": 3}
        assert clouds.render(words).result() == render_word_cloud(words)
    finally:
        clouds.close()
    assert _workers(others) == []


def test_the_cloud_worker_stops_when_no_run_used_it_for_a_while() -> None:
    """`serve` must not hold the worker's memory from one day's digests to the next."""
    import time as clock

    from bot.jobs import CloudRenderer

    others = _workers()  # other tests' processes (the scorer)
    clouds = CloudRenderer(process_min=1, idle_seconds=2.0)
    try:
        clouds.start()
        with clouds.in_use():
            (worker,) = _workers(others)
            clock.sleep(3.0)  # a long run keeps it
            assert clouds.render({"活动": 5}).result()
            assert worker.is_alive()
        with clouds.in_use():
            clouds.expect(1)  # the next run within the idle time has the same worker
            assert _workers(others) == [worker]
        deadline = clock.monotonic() + 10
        while worker.is_alive() and clock.monotonic() < deadline:
            clock.sleep(0.1)
        assert not worker.is_alive()
        assert _workers(others) == []
    finally:
        clouds.close()


def _workers(others: Sequence[Any] = ()) -> list[Any]:
    """This process's child processes, but ``others``."""
    import multiprocessing

    return [p for p in multiprocessing.active_children() if p not in others]
