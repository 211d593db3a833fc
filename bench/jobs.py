"""``daily_jobs_1000``: leaderboard and daily digest for 1,000 active groups.

Every group has its own robot webhook on a local double (``bench/webhook_double.py``, a
separate process answering at once), so the per-robot rate limit never waits. The jobs
run as ``qunpulse run`` runs them (:func:`bot.app.run_and_deliver`: figures from the
database, posts into the outbox, each batch sent while the next is made), after
:meth:`bot.jobs.Jobs.warm_up` (jieba's dictionary, wordcloud, the word cloud worker and
the first compilation of the figures' statements: timed apart, shown in the note). Of
these, `serve` pays the worker's start (≈ 0.8 s, beside the first figures) again on each
day's digest run, since the worker stops after ten idle minutes. The baseline posts the
same bodies to the same URLs with a bare ``httpx`` client, one after the other as the
sender does; the best of three passes counts.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.corpus import LAST_DAY, ZONE
from bench.stats import DATA
from bot.events import PlatformName

SEED = 1000


@dataclass(frozen=True)
class JobsRun:
    seconds: float
    baseline_seconds: float
    posts: int
    groups: int
    #: Loading jieba and wordcloud once before the run (not in ``seconds``).
    warm_up_seconds: float


def _database(groups: int) -> tuple[Path, list[tuple[PlatformName, str]]]:
    from bot.demo.generator import DemoSize, generate
    from bot.sentiment import rescore
    from config import Settings
    from storage.db import make_engine, upgrade
    from storage.ingest import EventStore

    size = DemoSize(groups, 20, 2, 2.0)
    # "-w": scored and cut by the scorer's own rescore, as `serve` leaves the database.
    path = DATA / f"jobs-g{groups}-s{SEED}-w.db"
    community, events = generate(SEED, size, LAST_DAY, ZONE)
    chats = [(g.platform, g.chat_id) for g in community.groups]
    if path.exists():
        return path, chats
    DATA.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    Path(partial).unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}")
    try:
        upgrade(engine)
        store = EventStore(engine)
        while batch := list(itertools.islice(events, 5000)):
            store.store([batch])
        rescore(engine, Settings(), only_unscored=True)
    finally:
        engine.dispose()
    partial.rename(path)
    return path, chats


def _webhook(base: str, platform: str, number: int) -> str:
    if platform == "wecom":
        return f"{base}/cgi-bin/webhook/send?key=k{number}"
    if platform == "dingtalk":
        return f"{base}/robot/send?access_token=t{number}"
    return f"{base}/open-apis/bot/v2/hook/h{number}"


def bench_jobs(groups: int) -> JobsRun:
    import shutil
    import tempfile

    import httpx
    from pydantic import SecretStr

    from bench.ingest import free_port
    from bot.app import build_outbound, run_and_deliver
    from bot.telemetry import Telemetry
    from config.settings import GroupSettings, Settings, StorageSettings
    from storage.db import make_engine, upgrade

    source, chats = _database(groups)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    double = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook_double", str(port)],
        cwd=Path(__file__).resolve().parents[1],
    )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _wait(f"{base}/healthz", double)
            path = Path(tmp) / "jobs.db"
            shutil.copy(source, path)  # the outbox starts empty on every run
            settings = Settings(
                storage=StorageSettings(url=f"sqlite:///{path}"),
                groups=tuple(
                    GroupSettings(
                        platform=platform,
                        chat_id=chat_id,
                        webhook=SecretStr(_webhook(base, platform, number)),
                    )
                    for number, (platform, chat_id) in enumerate(chats)
                ),
            )
            engine = make_engine(settings.storage.url)
            upgrade(engine)
            day = LAST_DAY
            now = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZONE)

            def clock() -> datetime:
                return now.astimezone(UTC)

            async def run_jobs() -> tuple[float, int, float]:
                http, outbox, sender, jobs, _ = build_outbound(settings, engine, Telemetry(), clock)
                try:
                    # One-off costs of a process (see the module's docstring): measured
                    # apart, not in the per-group figure.
                    warming = time.perf_counter()
                    jobs.warm_up()
                    warm = time.perf_counter() - warming
                    started = time.perf_counter()
                    queued: list[int] = []
                    for job in ("leaderboard", "daily_digest"):
                        queued += (await run_and_deliver(jobs, sender, job, day)).queued
                    elapsed = time.perf_counter() - started
                finally:
                    jobs.close()
                    await http.aclose()
                posts = [p for p in outbox.list(limit=100_000) if p.id in set(queued)]
                if any(p.state != "sent" for p in posts):
                    raise RuntimeError("some posts were not sent")
                return elapsed, len(posts), warm

            elapsed, posts, warm = asyncio.run(run_jobs())
            engine.dispose()
            with urllib.request.urlopen(f"{base}/recorded", timeout=30) as answer:  # noqa: S310
                recorded = json.load(answer)
            if len(recorded) != posts:
                raise RuntimeError(f"the double got {len(recorded)} posts, the outbox sent {posts}")
            bodies = [(f"{base}{path}", base64.b64decode(body)) for path, body in recorded]

            async def bare() -> float:
                async with httpx.AsyncClient() as client:
                    started = time.perf_counter()
                    for url, body in bodies:
                        response = await client.post(
                            url, content=body, headers={"Content-Type": "application/json"}
                        )
                        response.raise_for_status()
                    return time.perf_counter() - started

            # The best of three: one pass is easily slowed by whatever else runs.
            baseline = min(asyncio.run(bare()) for _ in range(3))
        finally:
            double.terminate()
            double.wait(timeout=30)
    return JobsRun(elapsed, baseline, posts, len(chats), warm)


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the webhook double exited")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the webhook double did not start")
