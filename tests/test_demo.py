"""`qunpulse demo`: a deterministic sample community that exercises the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

ARGS = ["--seed", "5", "--members", "40", "--days", "14", "--date", "2026-11-20"]


def demo_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, chat_id: str) -> dict:
    db = tmp_path / name
    assert main(["demo", "--db", str(db), *ARGS]) == 0
    capsys.readouterr()
    config = tmp_path / f"{name}.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    args = [
        "stats",
        "-c",
        str(config),
        "--group",
        chat_id,
        "--period",
        "14d",
        "--date",
        "2026-11-20",
    ]
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_same_seed_gives_the_same_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = demo_stats(tmp_path, capsys, "a.db", "wrkDemoVIPGroup")
    second = demo_stats(tmp_path, capsys, "b.db", "wrkDemoVIPGroup")
    assert first == second


def test_demo_community_has_activity_and_a_leave_spike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = demo_stats(tmp_path, capsys, "c.db", "wrkDemoVIPGroup")
    assert stats["messages"]["value"] > 100
    assert stats["leaves"]["value"] + stats["removed"]["value"] >= 3
    assert stats["net_growth"]["value"] == (
        stats["joins"]["value"] - stats["leaves"]["value"] - stats["removed"]["value"]
    )
    ranks = [entry["messages"] for entry in stats["message_rank"]]
    assert ranks[0] >= 3 * ranks[len(ranks) // 2]  # a power law: the top writes far more
