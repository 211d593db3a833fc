"""Run qunpulse's benchmarks, each against a baseline measured in the same run.

    python bench/run.py [--quick] [--only NAME[,NAME]]

Prints one line per benchmark,
``BENCH <name> <value> <unit> ratio=<value/baseline> target=<target> ok|short``,
then a summary. The ratios are what matter: absolute figures move with the machine and
its load, a ratio against a baseline measured a moment earlier moves much less.
See bench/README.md for what each benchmark does and why its target is what it is.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTGRES = os.environ.get("QUNPULSE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    ratio: float
    target: str
    ok: bool
    note: str = ""

    def line(self) -> str:
        verdict = "ok" if self.ok else "short"
        note = f"  # {self.note}" if self.note else ""
        return (
            f"BENCH {self.name} {self.value:.4g} {self.unit} ratio={self.ratio:.3f} "
            f"target={self.target} {verdict}{note}"
        )


Bench = Callable[[bool], list[Result]]


def bench_ingest_sqlite(quick: bool) -> list[Result]:
    from bench.ingest import bench_ingest

    served, baseline = bench_ingest(None, 3000 if quick else 20000)
    ratio = served.rate / baseline.rate
    return [
        Result(
            "ingest_sqlite",
            served.rate,
            "callbacks/s",
            ratio,
            ">=0.5",
            ratio >= 0.5 and served.errors == 0,
            f"p50 {served.p50_ms:.1f} ms, p99 {served.p99_ms:.1f} ms; baseline {baseline.rate:.0f}/s"
            " (best of 2 rounds each)",
        )
    ]


def bench_ingest_postgres(quick: bool) -> list[Result]:
    import psycopg

    from bench.ingest import bench_ingest

    name = f"qp_bench_{os.getpid()}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        return [Result("ingest_postgres", 0, "callbacks/s", 0, ">=0.5", False, f"skipped: {error}")]
    url = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        served, baseline = bench_ingest(f"{url}/{name}", 3000 if quick else 20000)
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = served.rate / baseline.rate
    return [
        Result(
            "ingest_postgres",
            served.rate,
            "callbacks/s",
            ratio,
            ">=0.5",
            ratio >= 0.5 and served.errors == 0,
            f"p50 {served.p50_ms:.1f} ms, p99 {served.p99_ms:.1f} ms; baseline {baseline.rate:.0f}/s"
            " (best of 2 rounds each)",
        )
    ]


def _wall(command: list[str], env: dict[str, str], repeat: int) -> float:
    """Best-of-``repeat`` wall time of a command (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def bench_startup(quick: bool) -> list[Result]:
    from bench.ingest import free_port, serve_config, wait_ready

    repeat = 3 if quick else 7
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    baseline = _wall([sys.executable, "-c", "import aiohttp, sqlalchemy"], env, repeat)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_port()
        config = serve_config(directory, port, f"sqlite:///{directory / 'small.db'}")
        _seed_small_database(directory / "small.db", config)
        stats = _wall(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "stats",
                "-c",
                str(config),
                "--group",
                "wrkSmall",
                "--json",
            ],
            env,
            repeat,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(port, process)
            rss_mb = _rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return [
        Result(
            "startup_stats",
            stats,
            "s",
            stats / baseline,
            "<=1.5s",
            stats <= 1.5,
            f"baseline {baseline:.2f} s",
        ),
        Result("startup_serve_rss", rss_mb, "MB", rss_mb / 300, "<=300MB", rss_mb <= 300),
    ]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):  # peak resident set size
                return int(line.split()[1]) / 1024
    return float("nan")


def _seed_small_database(path: Path, config: Path) -> None:
    """500 messages in one group, stored and scored as ``serve`` leaves them."""
    from datetime import UTC, datetime, timedelta

    from bot.events import Chat, ChatId, MessageEvent, Person, UserId
    from bot.sentiment import rescore
    from config.settings import load_settings
    from storage.db import make_engine, upgrade
    from storage.ingest import EventStore

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = datetime.now(UTC)
    events = [
        MessageEvent(
            "wecom",
            "bench",
            f"s{n}",
            Chat(ChatId("wrkSmall"), "group"),
            Person(UserId(f"u{n % 20}")),
            "text",
            "你好",
            now - timedelta(minutes=n),
            "at_mentions_only",
        )
        for n in range(500)
    ]
    EventStore(engine).store([events])
    rescore(engine, load_settings(config, env={}), only_unscored=True)
    engine.dispose()


def bench_sentiment(quick: bool) -> list[Result]:
    from bench.sentiment import bench_sentiment as run

    r = run(10_000, 1_000 if quick else 10_000)
    ratio = r.fast_rate / r.baseline_rate
    return [
        Result(
            "sentiment",
            r.fast_rate,
            "texts/s",
            ratio,
            ">=10",
            ratio >= 10 and r.max_difference <= 1e-9,
            f"baseline {r.baseline_rate:.0f}/s; max |diff| {r.max_difference:.1e}; "
            f"{r.distinct} distinct of {r.texts}; distinct texts alone x{r.distinct_ratio:.1f}",
        )
    ]


def bench_stats_1m(quick: bool) -> list[Result]:
    from bench.stats import bench_stats

    runs, group = bench_stats(100_000 if quick else 1_000_000, 3 if quick else 7)
    results = []
    for run in runs:
        ratio = run.seconds / run.baseline_seconds
        results.append(
            Result(
                f"stats_1m_{run.period}",
                run.seconds * 1000,
                "ms",
                ratio,
                "<=3,<300ms",
                ratio <= 3 and run.seconds < 0.3,
                f"baseline {run.baseline_seconds * 1000:.0f} ms for {run.statements} statements; "
                f"{run.messages} messages, group {group}",
            )
        )
    return results


def bench_daily_jobs(quick: bool) -> list[Result]:
    from bench.jobs import bench_jobs

    # The full run takes the 1,000 groups (about a minute with the baseline).
    run = bench_jobs(100 if quick else 1000)
    ratio = run.seconds / run.baseline_seconds
    return [
        Result(
            "daily_jobs_1000",
            run.seconds,
            "s",
            ratio,
            "<=5",
            ratio <= 5,
            f"{run.groups} groups, {run.posts} posts; "
            f"baseline {run.baseline_seconds:.2f} s of bare posts; "
            f"warm-up {run.warm_up_seconds:.1f} s once before",
        )
    ]


def bench_import_1m(quick: bool) -> list[Result]:
    from bench.history import bench_import

    run = bench_import(100_000 if quick else 1_000_000)
    rate, baseline = run.rows / run.seconds, run.rows / run.baseline_seconds
    ratio = rate / baseline
    return [
        Result(
            "import_1m",
            rate,
            "rows/s",
            ratio,
            ">=0.25",
            ratio >= 0.25,
            f"{run.rows} rows in {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB "
            f"(reader process {run.reader_rss_mb:.0f} MB, partly shared); "
            f"baseline {baseline:.0f} rows/s",
        )
    ]


BENCHMARKS: dict[str, Bench] = {
    "stats_1m": bench_stats_1m,
    "daily_jobs_1000": bench_daily_jobs,
    "import_1m": bench_import_1m,
    "sentiment": bench_sentiment,
    "ingest_sqlite": bench_ingest_sqlite,
    "ingest_postgres": bench_ingest_postgres,
    "startup": bench_startup,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: finishes within a minute"
    )
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    started = time.perf_counter()
    results: list[Result] = []
    took: list[str] = []  # each benchmark's wall time, datasets built included
    for name in names:
        began = time.perf_counter()
        for result in BENCHMARKS[name](args.quick):
            print(result.line(), flush=True)
            results.append(result)
        took.append(f"{name} {time.perf_counter() - began:.0f}")
    short = [r.name for r in results if not r.ok]
    print(
        f"SUMMARY {len(results) - len(short)} ok, {len(short)} short"
        + (f" ({', '.join(short)})" if short else "")
        + f" in {time.perf_counter() - started:.0f} s ({', '.join(took)} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
