"""Scaling out: two `serve` processes on one PostgreSQL database behind no shared memory.

Callbacks go to both processes alternately (as a load balancer would send them), some of
them twice (a platform retrying against the other process); every message is stored
once, `qunpulse stats` counts them right, and the scheduled job ran in exactly one process
(the scheduler lease), posting its digest once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from sqlalchemy import text

from bot.cli import main
from bot.events import Chat, ChatId, MessageEvent, Person, UserId
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from tests.conftest import (
    ADMIN_URL,
    IN_CI,
    NIGHTLY_JOBS,
    WECOM_AES_KEY,
    WECOM_TOKEN,
    scheduled_never,
    toml_value,
    write_config,
)
from tests.doubles.webhooks import Webhooks
from tests.doubles.wecom import WeComAiBotDouble

GROUP = "wrkSFfCgAAscale"


@pytest.fixture
def postgres_url(postgres_unavailable: str | None) -> Iterator[str]:
    if postgres_unavailable:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is required: {postgres_unavailable}")
        pytest.skip(postgres_unavailable)
    name = f"qp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _config(path: Path, url: str, webhook: str) -> Path:
    # The digest fires every minute, so the process that leads makes up the latest fire
    # at once on start; every other job is out of the way.
    schedule = scheduled_never(("leaderboard", "weekly_digest", "alert_scan", *NIGHTLY_JOBS))
    return write_config(
        path,
        url,
        f"""
[schedule]
daily_digest = "* * * * *"
{schedule}
grace_hours = 0.5

[[groups]]
platform = "wecom"
chat_id = "{GROUP}"
webhook = {toml_value(webhook)}
""",
    )


async def _healthy(port: int, process: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(600):
            if process.poll() is not None:
                raise AssertionError(f"serve exited early: {process.communicate()[1]}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # start-up only; nothing else to wait on
    raise AssertionError("serve did not answer /healthz in time")


def _port(config: Path) -> int:
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.startswith("port = "):
            return int(line.split("=")[1])
    raise AssertionError("no port in the config")


def _seed_group(url: str) -> None:
    """Yesterday's message, so that the group exists when the first digest is made up."""
    engine = make_engine(url)
    upgrade(engine)  # once, before the two processes start
    zone = ZoneInfo("Asia/Shanghai")
    yesterday = datetime.now(zone).replace(hour=12) - timedelta(days=1)
    EventStore(engine).store(
        [
            [
                MessageEvent(
                    "wecom",
                    "wecom-bot",
                    "seed-1",
                    Chat(ChatId(GROUP), "group"),
                    Person(UserId("seed")),
                    "text",
                    "昨天的消息",
                    yesterday.astimezone(UTC),
                    "at_mentions_only",
                )
            ]
        ]
    )
    engine.dispose()


async def test_two_processes_share_one_postgres(
    tmp_path: Path,
    postgres_url: str,
    platform_api: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hooks = Webhooks(platform_api, "unused", "unused")
    hooks.install()
    _seed_group(postgres_url)
    configs = [_config(tmp_path / f"q{n}.toml", postgres_url, hooks.wecom_url) for n in (1, 2)]
    processes = [
        subprocess.Popen(  # noqa: S603, ASYNC220 - the servers under test; started once
            [sys.executable, "-m", "bot.cli", "serve", "-c", str(c)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    try:
        for config, process in zip(configs, processes, strict=True):
            await _healthy(_port(config), process)
        doubles = [
            WeComAiBotDouble(
                f"http://127.0.0.1:{_port(c)}/callback/wecom-bot", WECOM_TOKEN, WECOM_AES_KEY
            )
            for c in configs
        ]
        users = ("alice", "bob", "carol")
        for n in range(60):
            double = doubles[n % 2]
            payload = double.group_text(f"m{n}", GROUP, users[n % 3], f"第{n}条消息")
            # A long timeout: the leading process renders the digest's word cloud meanwhile,
            # and the machine running the tests may be busy.
            assert (await double.deliver(payload, seconds=30)).status_code == 200
            if n % 10 == 0:  # the platform retries against the other process
                retry = await doubles[(n + 1) % 2].deliver(payload, seconds=30)
                assert retry.status_code == 200
        await hooks.wait_for(2, within=60)  # the digest and its word cloud
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            _, stderr = process.communicate(timeout=30)
            assert "Traceback" not in stderr, stderr

    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        ids = connection.execute(text("SELECT platform_msg_id FROM message")).scalars().all()
        runs = connection.execute(text("SELECT job, runner, status FROM job_run")).all()
        posts = connection.execute(text("SELECT job, state FROM outbox_post")).all()
    engine.dispose()
    assert sorted(ids) == sorted([f"m{n}" for n in range(60)] + ["seed-1"])
    assert {job for job, _, _ in runs} == {"daily_digest"}
    assert len({runner for _, runner, _ in runs}) == 1, runs  # one process ran the jobs
    assert sorted(posts) == [("daily_digest", "sent"), ("daily_digest_words", "sent")]
    assert len(hooks.accepted["wecom"]) == 2

    capsys.readouterr()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert main(["stats", "-c", str(configs[0]), "--group", GROUP, "--date", today, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["messages"]["value"] == 60
    assert stats["active_members"]["value"] == 3
