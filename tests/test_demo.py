"""`qunpulse demo`: a deterministic sample community that exercises every feature."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from handlers.stats import ALL_METRICS
from tests.conftest import free_port
from tests.test_serve import wait_for_health

ARGS = ["--seed", "5", "--members", "60", "--days", "40", "--date", "2026-11-20"]
GROUPS = ("wrkDemoVIPGroup", "cidDemoStaffGroup==", "oc_demo_runners")
#: WeCom and DingTalk markdown take at most 4096 UTF-8 bytes (PLATFORMS.md).
MAX_BYTES = 4096


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run shared by the tests here: its database and what it printed."""
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "demo.db"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["demo", "--db", str(db), *ARGS]) == 0
    return db, out.getvalue()


def stats_json(db: Path, chat_id: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    config = db.with_suffix(".toml")
    # A range that ended before today, so every figure is as of its end, not of now.
    args = [
        "stats",
        "-c",
        str(config),
        "--group",
        chat_id,
        "--from",
        "2026-10-12",
        "--to",
        "2026-11-19",
    ]
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_same_seed_gives_the_same_figures(
    demo: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = tmp_path / "again.db"
    assert main(["demo", "--db", str(again), *ARGS]) == 0
    assert stats_json(demo[0], GROUPS[0], capsys) == stats_json(again, GROUPS[0], capsys)


def test_the_printed_posts_fit_the_platforms(demo: tuple[Path, str]) -> None:
    _, printed = demo
    headings = re.findall(r"━━ (.+?) · (\d+) bytes ━━", printed)
    assert len(headings) == 9  # a leaderboard, a daily and a weekly digest per group
    assert all(int(size) <= MAX_BYTES for _, size in headings)
    for title in ("今日发言排行", "社群日报", "社群周报"):
        assert title in printed


def test_every_metric_has_something_to_show(
    demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    documents = [stats_json(demo[0], chat_id, capsys) for chat_id in GROUPS]

    def shown(value: object) -> bool:
        if isinstance(value, dict) and "value" in value:
            return value["value"] is not None
        return value not in (None, [], {})

    empty = [m for m in ALL_METRICS if not any(shown(d.get(m)) for d in documents)]
    assert empty == []


def test_the_demo_community_has_a_leave_spike_and_a_power_law(
    demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stats = stats_json(demo[0], GROUPS[0], capsys)
    assert stats["leaves"]["value"] + stats["removed"]["value"] >= 3
    ranks = [entry["messages"] for entry in stats["message_rank"]]
    assert ranks[0] >= 3 * ranks[len(ranks) // 2]  # a few members write most


def test_pictures_are_written(demo: tuple[Path, str]) -> None:
    pictures = sorted(p.name for p in (demo[0].parent / "demo-pictures").glob("*.png"))
    assert len(pictures) == 6  # a weekly chart and a word cloud per group


def test_demo_serve_answers_healthz(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "bot.cli", "demo", "--serve", "--port", str(port), *ARGS],
        cwd=tmp_path,
        env={**os.environ, "QUNPULSE_CONFIG": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}/healthz", process, timeout=120)
        assert health.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_demo_shows_private_alerts_to_operators(demo: tuple[Path, str]) -> None:
    _, printed = demo
    assert "私信告警 →" in printed
    assert "关键词告警" in printed  # the angry customers' 投诉 / 退款
