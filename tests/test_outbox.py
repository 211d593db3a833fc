"""Scheduled posts end to end: jobs → outbox → senders → platform webhook doubles.

Every test runs on SQLite and PostgreSQL, posts over real HTTP to the PlatformAPI double
(DingTalk and Feishu doubles check the signature), and moves time with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from bot.app import build_outbound, run_and_deliver
from bot.events import Chat, ChatId, MessageEvent, Person, UserId
from bot.jobs import Jobs
from bot.outbox import OutboxSender
from bot.scheduler import JobScheduler
from bot.telemetry import Telemetry
from config import Settings, load_settings
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.models import Member
from storage.outbox import JobRuns, NewPost, Outbox
from tests.conftest import NIGHTLY_JOBS, scheduled_never, write_config
from tests.doubles.api import Call, LoopbackOnly, PlatformAPI
from tests.doubles.clock import FakeClock
from tests.doubles.webhooks import DINGTALK_PATH, WECOM_PATH, Webhooks

DAY = date(2026, 11, 24)
#: 21:00 in Shanghai on DAY: the leaderboard's default time.
AT_2100 = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
DING_SECRET = "SECtest-dingtalk-robot-secret"
FEISHU_SECRET = "test-feishu-bot-secret"


def message(platform: str, chat: str, msg_id: str, user: str, at: datetime) -> MessageEvent:
    return MessageEvent(
        platform=platform,  # type: ignore[arg-type]
        bot_id="b",
        message_id=msg_id,
        chat=Chat(ChatId(chat), "group", name=f"{platform} 群"),
        sender=Person(UserId(user), f"成员{user}"),
        msg_type="text",
        text="今天的活动很好",
        sent_at=at,
        source="full",
    )


def seed(engine: Engine) -> None:
    """Messages on DAY (and the day before) in one group per platform."""
    events = []
    for platform, chat in (("wecom", "wx-g1"), ("dingtalk", "cid-g2"), ("feishu", "oc_g3")):
        for n, user in enumerate(["a", "b", "b", "c", "c", "c", "hidden", "hidden", "hidden"]):
            at = AT_2100 - timedelta(hours=3, minutes=n)
            events.append([message(platform, chat, f"{platform}-{n}", user, at)])
        for n, user in enumerate(["a", "a", "b"]):
            at = AT_2100 - timedelta(days=1, hours=3, minutes=n)
            events.append([message(platform, chat, f"{platform}-y{n}", user, at)])
    EventStore(engine).store(events)
    with engine.begin() as connection:
        connection.execute(
            update(Member.__table__)
            .where(Member.__table__.c.user_id == "hidden")
            .values(opted_out=True)  # type: ignore[attr-defined]
        )


@dataclass
class World:
    settings: Settings
    engine: Engine
    hooks: Webhooks
    clock: FakeClock
    closers: list[Any]

    def process(
        self, holder: str = "p1"
    ) -> tuple[Outbox, OutboxSender, Jobs, JobScheduler, Telemetry]:
        """One qunpulse process (its own engine and HTTP client) on the shared database."""
        engine = make_engine(self.settings.storage.url)
        telemetry = Telemetry()
        http, outbox, sender, jobs, scheduler = build_outbound(
            self.settings,
            engine,
            telemetry,
            self.clock,
            transport=LoopbackOnly(),
            holder=holder,
            sleep=self.clock.sleep,
        )
        self.closers.append((http, engine, sender, scheduler))
        return outbox, sender, jobs, scheduler, telemetry


def groups_toml(hooks: Webhooks, *, wecom_url: str | None = None, extra: str = "") -> str:
    return f"""
[[groups]]
platform = "wecom"
chat_id = "wx-g1"
name = "VIP 用户群"
webhook = "{wecom_url or hooks.wecom_url}"
operators = ["zhangsan"]

[[groups]]
platform = "dingtalk"
chat_id = "cid-g2"
webhook = "{hooks.dingtalk_url}"
secret = "{DING_SECRET}"

[[groups]]
platform = "feishu"
chat_id = "oc_g3"
webhook = "{hooks.feishu_url}"
secret = "{FEISHU_SECRET}"
{extra}
"""


async def make_world(tmp_path: Path, database_url: str, api: PlatformAPI, **kwargs: Any) -> World:
    hooks = Webhooks(api, DING_SECRET, FEISHU_SECRET)
    hooks.install()
    config = write_config(tmp_path / "qunpulse.toml", database_url, groups_toml(hooks, **kwargs))
    settings = load_settings(config, env={})
    engine = make_engine(database_url)
    upgrade(engine)
    seed(engine)
    return World(settings, engine, hooks, FakeClock(AT_2100), [])


@pytest.fixture
async def world(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> AsyncIterator[World]:
    w = await make_world(tmp_path, database_url, platform_api)
    yield w
    await close(w)


async def close(w: World) -> None:
    for http, engine, sender, scheduler in w.closers:
        await scheduler.stop()
        await sender.stop()
        await http.aclose()
        engine.dispose()
    w.engine.dispose()


async def test_a_job_run_twice_posts_once(world: World) -> None:
    outbox, sender, jobs, _, telemetry = world.process()
    first = jobs.run("leaderboard", DAY)
    second = jobs.run("leaderboard", DAY)
    assert len(first.queued) == 3
    assert second.queued == []
    assert second.existing == 3
    await sender.drain()
    await sender.drain()
    assert [len(world.hooks.accepted[p]) for p in ("wecom", "dingtalk", "feishu")] == [1, 1, 1]
    wecom = world.hooks.accepted["wecom"][0]["markdown"]["content"]
    assert "成员c" in wecom
    assert "3 条" in wecom
    assert "成员hidden" not in wecom  # opted out: never in a public post
    ding = world.hooks.accepted["dingtalk"][0]
    assert ding["markdown"]["title"]
    assert "成员c" in ding["markdown"]["text"]
    assert "成员c" in world.hooks.accepted["feishu"][0]["card"]["elements"][0]["content"]
    metrics = telemetry.render().decode()
    assert 'qunpulse_posts_sent_total{job="leaderboard",platform="wecom"} 1.0' in metrics
    assert "qunpulse_outbox_queue_depth 0.0" in metrics
    assert outbox.counts()["sent"] == 3


async def test_run_and_deliver_sends_its_own_posts_batch_by_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.jobs.BATCH_GROUPS", 1)  # one group a batch: three batches
    outbox, sender, jobs, _, _ = world.process()
    earlier = jobs.run("leaderboard", DAY).queued  # queued by `serve`: not this run's to send
    result = await run_and_deliver(jobs, sender, "daily_digest", DAY)
    assert len(result.queued) == 4  # three digests and the WeCom group's word cloud
    assert {p.state for p in outbox.find(result.queued)} == {"sent"}
    assert {p.state for p in outbox.find(earlier)} == {"pending"}
    assert [len(world.hooks.accepted[p]) for p in ("wecom", "dingtalk", "feishu")] == [2, 1, 1]


async def test_a_post_written_before_a_crash_is_sent_once_after_restart(world: World) -> None:
    _outbox, _sender, jobs, _, _ = world.process("dies")
    queued = jobs.run("leaderboard", DAY, "wx-g1").queued
    assert len(queued) == 1
    # The process dies here: the post is committed, the sender never ran.
    assert world.hooks.accepted["wecom"] == []
    outbox2, sender2, _, scheduler2, _ = world.process("restarted")
    assert await scheduler2.tick()  # leads: starts the sender loop, makes up nothing sent
    await sender2.drain()  # races the background loop on purpose: the claim decides
    assert len(world.hooks.accepted["wecom"]) == 1
    # The 21:00 fire is due now, so the restart also made up the other two groups' posts;
    # the WeCom group's post existed already and was not queued again.
    assert outbox2.counts() == {"pending": 0, "sending": 0, "sent": 3, "failed": 0}


async def test_rate_limit_45009_is_retried_then_succeeds(world: World) -> None:
    world.hooks.wecom_script.append({"errcode": 45009, "errmsg": "api freq out of limit"})
    outbox, sender, jobs, _, _ = world.process()
    [post_id] = jobs.run("leaderboard", DAY, "wx-g1").queued
    await sender.drain([post_id])
    calls = world.hooks.api.calls_to("/cgi-bin/webhook/send")
    assert len(calls) == 2
    assert len(world.hooks.accepted["wecom"]) == 1
    [post] = outbox.list("sent")
    assert post.attempts == 2
    assert world.clock.slept >= 5  # backed off before the retry


async def test_93000_is_not_retried_marked_failed_and_told_to_operators(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    hooks_probe = f"{platform_api.base_url}/cgi-bin/webhook/send"
    w = await make_world(
        tmp_path,
        database_url,
        platform_api,
        wecom_url=f"{hooks_probe}?key=removed-robot",
        extra=f'\n[alerts]\nwebhook = "{hooks_probe}?key=test-key"\n',
    )
    try:
        outbox, sender, jobs, _, telemetry = w.process()
        [post_id] = jobs.run("leaderboard", DAY, "wx-g1").queued
        await sender.drain([post_id])
        assert len(platform_api.calls_to("/cgi-bin/webhook/send")) == 1  # no retry
        [failed] = outbox.list("failed")
        assert "93000" in (failed.error or "")
        assert "groups[0].webhook" in (failed.error or "")
        assert "removed-robot" not in (failed.error or "")  # the webhook key is a secret
        assert 'qunpulse_posts_failed_total{job="leaderboard",platform="wecom"} 1.0' in (
            telemetry.render().decode()
        )
        # The next digest to the operators names the failure.
        settings = w.settings.model_copy(
            update={"groups": (w.settings.groups[0].model_copy(update={"digest_to": "operators"}),)}
        )
        jobs2 = Jobs(settings, w.engine, outbox, w.clock)
        # The digest itself, and its word cloud now that top_words exists.
        queued = jobs2.run("daily_digest", DAY, "wx-g1").queued
        await sender.drain(queued)
        [body] = [b["markdown"]["content"] for b in w.hooks.accepted["wecom"] if "markdown" in b]
        assert "93000" in body
        assert "leaderboard" in body
    finally:
        await close(w)


def queue_text(world: World, outbox: Outbox, platform: str, chat: str, key: str, body: str) -> None:
    """A text post of the job ``test`` into the group's robot."""
    group = f"{platform}:{chat}"
    outbox.add(
        NewPost(group, "test", key, platform, f"group:{group}", "text", "t", body), world.clock()
    )


def test_posts_are_found_by_id_in_the_order_asked(world: World) -> None:
    outbox = Outbox(world.engine)
    for key in ("a", "b", "c"):
        queue_text(world, outbox, "wecom", "g1", key, f"post {key}")
    a, _, c = sorted(p.id for p in outbox.list())
    assert [p.period_key for p in outbox.find([c, 10**9, a])] == ["c", "a"]
    assert outbox.find([]) == []


async def test_thirty_posts_to_one_robot_take_at_least_a_minute(world: World) -> None:
    counts_while_waiting: list[dict[str, int]] = []
    sleep = world.clock.sleep

    async def watched(seconds: float) -> None:
        counts_while_waiting.append(outbox.counts())
        await sleep(seconds)

    world.clock.sleep = watched  # type: ignore[method-assign]
    outbox, sender, _, _, _ = world.process()
    for n in range(30):
        queue_text(world, outbox, "wecom", "wx-g1", f"p{n}", f"#{n}")
    start = world.clock()
    await sender.drain()
    assert len(world.hooks.accepted["wecom"]) == 30
    assert world.clock() - start >= timedelta(minutes=1)
    # While the robot's limit holds the last ten back, the twenty sent are recorded and
    # the ten are not claimed: a crash meanwhile would not cost them.
    assert counts_while_waiting[0] == {"pending": 10, "sending": 0, "sent": 20, "failed": 0}


async def test_posts_to_different_robots_go_side_by_side_and_each_robots_in_order(
    world: World,
) -> None:
    outbox, sender, _, _, _ = world.process()
    for n in range(3):
        queue_text(world, outbox, "wecom", "wx-g1", f"w{n}", f"#{n}")
    queue_text(world, outbox, "dingtalk", "cid-g2", "d0", "#d")
    # WeCom holds its first answer until DingTalk's post has arrived: a sender posting one
    # post after the other would only reach DingTalk after that answer.
    dingtalk_arrived = asyncio.Event()
    seen_before_answering: list[bool] = []
    answer_wecom, answer_dingtalk = world.hooks._wecom, world.hooks._dingtalk

    async def slow_wecom(call: Call) -> tuple[int, Any]:
        if not seen_before_answering:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dingtalk_arrived.wait(), 5)
            seen_before_answering.append(dingtalk_arrived.is_set())
        return answer_wecom(call)

    def dingtalk(call: Call) -> tuple[int, Any]:
        dingtalk_arrived.set()
        return answer_dingtalk(call)

    world.hooks.api.route("POST", WECOM_PATH, slow_wecom)
    world.hooks.api.route("POST", DINGTALK_PATH, dingtalk)
    await sender.drain()
    assert seen_before_answering == [True]
    assert [b["text"]["content"] for b in world.hooks.accepted["wecom"]] == ["#0", "#1", "#2"]
    assert len(world.hooks.accepted["dingtalk"]) == 1


def hold_wecom_from(world: World, post: int) -> asyncio.Event:
    """WeCom answers its first ``post`` - 1 posts at once and keeps the next waiting.

    Returns the event that lets the waiting answer go (set it before the test ends).
    """
    answer = world.hooks._wecom
    release = asyncio.Event()

    async def held(call: Call) -> tuple[int, Any]:
        if len(world.hooks.api.calls_to(WECOM_PATH)) >= post:
            await release.wait()
        return answer(call)

    world.hooks.api.route("POST", WECOM_PATH, held)
    return release


def states(outbox: Outbox, job: str) -> dict[str, str]:
    return {p.period_key: p.state for p in outbox.list() if p.job == job}


async def test_a_sender_stopped_mid_pass_records_what_it_sent_and_puts_back_what_it_did_not_try(
    world: World,
) -> None:
    outbox, sender, _, _, _ = world.process("stopped")
    for n in range(3):
        queue_text(world, outbox, "wecom", "wx-g1", f"w{n}", f"#{n}")
    release = hold_wecom_from(world, 2)
    pass_ = asyncio.create_task(sender.drain())
    await world.hooks.api.wait_for_calls(WECOM_PATH, 2)  # #1 is mid-POST
    pass_.cancel()  # as ``stop`` does
    with contextlib.suppress(asyncio.CancelledError):
        await pass_
    release.set()
    # #0 went out and is recorded although the pass never ended; nobody knows whether #1
    # arrived; #2 was claimed with the others but never tried, so it is pending again.
    assert states(outbox, "test") == {"w0": "sent", "w1": "sending", "w2": "pending"}
    assert [p.sent_at for p in outbox.list("sent")] == [AT_2100]
    outbox2, sender2, _, scheduler2, _ = world.process("restarted")
    assert await scheduler2.tick()  # leads: marks #1 failed, then sends what is pending
    await sender2.drain()
    assert states(outbox2, "test") == {"w0": "sent", "w1": "failed", "w2": "sent"}
    [failed] = [p for p in outbox2.list("failed") if p.job == "test"]
    assert "outcome unknown" in (failed.error or "")
    texts = [
        c.json["text"]["content"] for c in world.hooks.api.calls_to(WECOM_PATH) if "text" in c.json
    ]
    assert texts == ["#0", "#1", "#2"]  # each posted once


async def test_posts_claimed_by_a_killed_run_are_never_posted_again(
    tmp_path: Path, database_url: str, world: World
) -> None:
    """``qunpulse run`` killed mid-POST: its digest and the word cloud it claimed with it."""
    import signal
    import sys

    release = hold_wecom_from(world, 1)
    config = write_config(tmp_path / "run.toml", database_url, groups_toml(world.hooks))
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "daily_digest",
        "-c",
        str(config),
        "--date",
        DAY.isoformat(),
        "--group",
        "wx-g1",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await world.hooks.api.wait_for_calls(WECOM_PATH, 1, within=60)  # the digest, held
    finally:
        run.send_signal(signal.SIGKILL)
        await run.wait()
        release.set()
    outbox, sender, _, scheduler, _ = world.process("restarted")
    assert states(outbox, "daily_digest") == {DAY.isoformat(): "sending"}
    assert states(outbox, "daily_digest_words") == {DAY.isoformat(): "sending"}
    assert await scheduler.tick()  # leads: the two claimed posts are marked failed
    await sender.drain()
    assert states(outbox, "daily_digest") == {DAY.isoformat(): "failed"}
    assert states(outbox, "daily_digest_words") == {DAY.isoformat(): "failed"}
    # The digest reached WeCom once (its answer never came back); the cloud never did.
    [digest] = [p for p in outbox.list() if p.job == "daily_digest"]
    posted = [c.json for c in world.hooks.api.calls_to(WECOM_PATH)]
    assert len([b for b in posted if b.get("markdown", {}).get("content") == digest.body]) == 1
    assert [b for b in posted if "image" in b] == []


async def test_a_missed_2100_run_is_made_up_on_start_once(world: World) -> None:
    world.clock.current = AT_2100 + timedelta(hours=1, minutes=30)  # started at 22:30
    _outbox, sender, _, scheduler, _ = world.process("late")
    assert await scheduler.tick()
    await sender.drain()
    assert len(world.hooks.accepted["wecom"]) == 1
    runs = JobRuns(world.engine)
    assert runs.exists("leaderboard", AT_2100)
    # Restarted again: the run is recorded, nothing is made up twice.
    _, sender2, _, scheduler2, _ = world.process("later")
    await scheduler.stop()
    assert await scheduler2.tick()
    await sender2.drain()
    assert len(world.hooks.accepted["wecom"]) == 1
    assert runs.count("leaderboard") == 1


async def test_stopping_while_the_lease_waits_for_a_lock_runs_what_it_recorded_and_lets_go(
    world: World, database_url: str
) -> None:
    import contextlib
    import sqlite3

    import psycopg

    world.clock.current = AT_2100 + timedelta(hours=1, minutes=30)  # the 21:00 run is due
    outbox, _, _, scheduler, _ = world.process("stopping")
    with contextlib.ExitStack() as held:
        # Another process (an import, say) holds the lock the lease renewal needs.
        if database_url.startswith("sqlite"):
            holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            held.callback(holder.close)
            held.callback(holder.execute, "ROLLBACK")
        else:
            url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
            locker = held.enter_context(psycopg.connect(url))
            locker.execute("LOCK TABLE scheduler_lease IN ACCESS EXCLUSIVE MODE")
        await scheduler.start()
        await asyncio.sleep(0.3)  # the first tick waits for the lock on a worker thread
        stopping = asyncio.create_task(scheduler.stop())
        await asyncio.sleep(0.3)
        assert not stopping.done(), "stop() must let the tick in progress finish"
    await asyncio.wait_for(stopping, 30)
    # What the tick recorded, it ran: the made-up leaderboard is queued, not lost.
    assert JobRuns(world.engine).exists("leaderboard", AT_2100)
    assert set(states(outbox, "leaderboard")) == {DAY.isoformat()}
    # And it let go of the lease: another process leads at once, not after the lease ends.
    _, _, _, successor, _ = world.process("successor")
    assert await successor.tick()


async def test_a_run_older_than_the_grace_is_not_made_up(world: World) -> None:
    world.clock.current = AT_2100 + timedelta(hours=7)
    _, _, _, scheduler, _ = world.process()
    assert await scheduler.tick()
    assert not JobRuns(world.engine).exists("leaderboard", AT_2100)


async def test_two_processes_post_once_and_the_second_takes_over(world: World) -> None:
    world.clock.current = AT_2100 + timedelta(minutes=5)
    _, sender1, _, scheduler1, _ = world.process("one")
    _, sender2, _, scheduler2, _ = world.process("two")
    leads = [await scheduler1.tick(), await scheduler2.tick()]
    assert leads == [True, False]
    await sender1.drain()
    await sender2.drain()
    assert [len(world.hooks.accepted[p]) for p in ("wecom", "dingtalk", "feishu")] == [1, 1, 1]
    # "one" dies (stops renewing); within a minute "two" holds the lease.
    world.clock.advance(world.settings.schedule.lease_seconds + 1)
    assert await scheduler2.tick()
    assert not await scheduler1.tick()
    await sender2.drain()
    assert len(world.hooks.accepted["wecom"]) == 1


async def test_apscheduler_fires_in_the_configured_zone(world: World) -> None:
    _, _, _, scheduler, _ = world.process()
    await scheduler.tick(use_apscheduler=True)
    runs = scheduler.next_runs()
    assert set(runs) == {
        "leaderboard",
        "daily_digest",
        "weekly_digest",
        "alert_scan",
        "retention",
        "roster_sync",
        "wecom_stats",
    }
    leaderboard = runs["leaderboard"]
    assert leaderboard is not None
    assert (leaderboard.hour, leaderboard.minute) == (21, 0)
    assert str(leaderboard.tzinfo) == "Asia/Shanghai"
    weekly = runs["weekly_digest"]
    assert weekly is not None
    assert weekly.weekday() == 0
    assert weekly.hour == 10


async def test_weekly_digest_carries_a_chart_where_the_platform_takes_images(
    world: World,
) -> None:
    import base64
    import hashlib

    _, sender, jobs, _, _ = world.process()
    result = jobs.run("weekly_digest", DAY)
    # Three digests, and for WeCom (the one robot that takes images) a chart and a word cloud.
    assert len(result.queued) == 5
    await sender.drain()
    markdown, *images = world.hooks.accepted["wecom"]
    assert "社群周报" in markdown["markdown"]["content"]
    assert len(images) == 2
    for image in images:
        png = base64.b64decode(image["image"]["base64"])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) <= 2 * 1024 * 1024
        assert image["image"]["md5"] == hashlib.md5(png).hexdigest()  # noqa: S324 - WeCom checksum
    # DingTalk and Feishu robots take no image: the digest says where to look instead.
    assert "不能发图片" in world.hooks.accepted["dingtalk"][0]["markdown"]["text"]
    feishu = world.hooks.accepted["feishu"][0]["card"]["elements"][0]["content"]
    assert "不能发图片" in feishu


async def test_serve_posts_on_its_schedule_into_all_three_platforms(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    """The real service, real clock: a leaderboard due this minute goes out once per group."""
    from aiohttp import web

    from bot.app import build_service

    hooks = Webhooks(platform_api, DING_SECRET, FEISHU_SECRET)
    hooks.install()
    schedule = '\n[schedule]\nleaderboard = "* * * * *"\n' + scheduled_never(
        ("daily_digest", "weekly_digest", *NIGHTLY_JOBS)
    )  # no other job is made up, whatever the hour
    config = write_config(
        tmp_path / "qunpulse.toml", database_url, groups_toml(hooks, extra=schedule)
    )
    settings = load_settings(config, env={})
    engine = make_engine(database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    EventStore(engine).store(
        [
            [message(p, chat, f"{p}-now-{n}", user, now - timedelta(seconds=n))]
            for p, chat in (("wecom", "wx-g1"), ("dingtalk", "cid-g2"), ("feishu", "oc_g3"))
            for n, user in enumerate(["a", "b", "b"])
        ]
    )
    engine.dispose()
    service = build_service(settings, http_transport=LoopbackOnly())
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    try:
        await hooks.wait_for(3)  # the start-up catch-up runs this minute's leaderboard
    finally:
        await runner.cleanup()
    assert [len(hooks.accepted[p]) for p in ("wecom", "dingtalk", "feishu")] == [1, 1, 1]
    assert "成员b 2 条" in hooks.accepted["wecom"][0]["markdown"]["content"]
