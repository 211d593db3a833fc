"""Shared fixtures: a clean database per test (SQLite and PostgreSQL), a running server.

PostgreSQL: tests use ``$QUNPULSE_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) to create a fresh database per test. Where
no server answers, the PostgreSQL half is skipped with the reason, except under
``CI=true``, where it fails instead.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import uuid
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from bot.app import Service, build_service
from config import Settings, load_settings

ADMIN_URL = os.environ.get("QUNPULSE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"

WECOM_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
WECOM_AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
DINGTALK_APP_SECRET = "test-dingtalk-app-secret-Zk3Q"


def _postgres_reason() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"no PostgreSQL at {ADMIN_URL} ({type(error).__name__}); set QUNPULSE_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_unavailable() -> str | None:
    return _postgres_reason()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_unavailable: str | None
) -> Iterator[str]:
    """A URL to an empty database of each kind, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qunpulse.db'}"
        return
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
        _collect_connections_of_the_test()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _collect_connections_of_the_test() -> None:
    """Collect what the test left unreachable before its database is dropped.

    A connection checked out while a test disposes its engine (the healthz test drops
    the database under a running server) belongs to no pool any more; psycopg warns
    when the garbage collector closes it, which pytest would otherwise report in
    whichever later test the collector happens to run.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


#: A schedule outside the grace window of any test (1 January, midnight).
NEVER = "0 0 1 1 *"
#: The jobs that run at night by default.
NIGHTLY_JOBS = ("retention", "roster_sync", "wecom_stats")


def scheduled_never(jobs: Iterable[str]) -> str:
    """``[schedule]`` lines that keep ``jobs`` from running or being made up in a test."""
    return "".join(f"{job} = {toml_value(NEVER)}\n" for job in jobs)


def write_config(path: Path, database_url: str, extra: str = "") -> Path:
    """A config with one WeCom AI bot and one DingTalk robot, on ``database_url``.

    Tests run at any hour: a server started within ``schedule.grace_hours`` of a nightly
    job (retention 03:30, roster sync 04:00, WeCom stats 04:30 Shanghai time) would make
    it up at once, with platform calls and counters nobody expected. Unless ``extra``
    has a ``[schedule]`` of its own, the nightly jobs are scheduled :data:`NEVER`.
    """
    if "[schedule]" not in extra:
        extra += "\n[schedule]\n" + scheduled_never(NIGHTLY_JOBS)
    path.write_text(
        f"""
timezone = "Asia/Shanghai"

[server]
host = "127.0.0.1"
port = {free_port()}

[storage]
url = {toml_value(database_url)}

[[bots]]
id = "wecom-bot"
kind = "wecom_aibot"
token = "{WECOM_TOKEN}"
encoding_aes_key = "{WECOM_AES_KEY}"

[[bots]]
id = "ding-bot"
kind = "dingtalk_robot"
app_key = "dingappkey"
app_secret = "{DINGTALK_APP_SECRET}"
robot_code = "dingrobot"
mode = "http"
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path / "qunpulse.toml", database_url)


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings(config_file, env={})


@dataclass
class RunningServer:
    base_url: str
    service: Service
    config_file: Path

    def callback_url(self, bot_id: str) -> str:
        return f"{self.base_url}/callback/{bot_id}"


@pytest.fixture
async def server(settings: Settings, config_file: Path) -> AsyncIterator[RunningServer]:
    """The real qunpulse app, listening on a free port on 127.0.0.1."""
    service = build_service(settings)
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.server.port)
    await site.start()
    try:
        yield RunningServer(f"http://127.0.0.1:{settings.server.port}", service, config_file)
    finally:
        await runner.cleanup()


@pytest.fixture
async def platform_api() -> AsyncIterator[Any]:
    """A local stand-in for the platforms' server APIs; fails the test on unexpected calls."""
    from tests.doubles.api import PlatformAPI

    api = PlatformAPI()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()
    assert api.unexpected == [], f"calls nobody expected: {api.unexpected}"
