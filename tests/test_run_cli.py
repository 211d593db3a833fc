"""``qunpulse run`` and ``qunpulse outbox list`` as a user runs them: real processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from storage.db import make_engine, upgrade
from tests.conftest import write_config
from tests.doubles.api import PlatformAPI
from tests.doubles.webhooks import Webhooks
from tests.test_outbox import DING_SECRET, FEISHU_SECRET, groups_toml, seed


async def qunpulse(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_run_leaderboard_twice_posts_once(
    tmp_path: Path, database_url: str, platform_api: PlatformAPI
) -> None:
    hooks = Webhooks(platform_api, DING_SECRET, FEISHU_SECRET)
    hooks.install()
    config = write_config(tmp_path / "qunpulse.toml", database_url, groups_toml(hooks))
    engine = make_engine(database_url)
    upgrade(engine)
    seed(engine)
    engine.dispose()

    code, out, err = await qunpulse("run", "leaderboard", "-c", str(config), "--date", "2026-11-24")
    assert code == 0, err
    assert "3 post(s) queued" in out
    code, out, err = await qunpulse("run", "leaderboard", "-c", str(config), "--date", "2026-11-24")
    assert code == 0, err
    assert "0 post(s) queued, 3 already queued" in out
    assert [len(hooks.accepted[p]) for p in ("wecom", "dingtalk", "feishu")] == [1, 1, 1]

    code, out, err = await qunpulse("outbox", "list", "-c", str(config), "--state", "sent")
    assert code == 0, err
    assert out.count("leaderboard") == 3
    assert "sent: 3" in out

    code, out, err = await qunpulse("run", "alert_scan", "-c", str(config))
    assert code == 0, err
    assert "alert_scan: 0 post(s) queued" in err  # no spikes in this history
