"""Time the dashboard's pages on a group with about a million messages (SQLite).

    python bench/dashboard.py [--messages-per-member-day 0.95] [--rebuild]

Builds (once, into bench/.data/) a demo community of one group with 3,000 members and a
year of history, then renders each page's data the way the web layer does and prints the
median of five runs per page and period. The target is 500 ms per page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.periods import resolve_period  # noqa: E402
from bot.dashboard import pages  # noqa: E402
from bot.demo.build import build_demo  # noqa: E402
from bot.demo.generator import DemoSize  # noqa: E402
from config.settings import Settings  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.queries import list_groups  # noqa: E402

LAST_DAY = date(2026, 11, 25)
ZONE = ZoneInfo("Asia/Shanghai")
TARGET_MS = 500.0


def _median_ms(run: Callable[[], Any], repeat: int = 5) -> float:
    run()  # warm the page cache once
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages-per-member-day", type=float, default=0.95)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    # Scored and cut ("-scored") as serve's background scorer leaves a database.
    path = ROOT / "bench" / ".data" / f"dashboard-{args.messages_per_member_day}-scored.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not path.exists():
        size = DemoSize(1, 3000, 365, args.messages_per_member_day)
        print(f"building {path} …", file=sys.stderr)
        build_demo(path, 11, size, LAST_DAY, Settings())
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    settings = Settings()
    [group] = list_groups(engine)
    with engine.connect() as connection:
        from sqlalchemy import text

        count = connection.execute(text("SELECT count(*) FROM message")).scalar_one()
    print(f"group {group.chat_id}: {count:,} messages")
    worst = 0.0
    for spec in ("day", "7d", "week", "30d", "month", "90d"):
        period = resolve_period(spec, LAST_DAY, ZONE)
        runs: dict[str, Callable[[], Any]] = {
            "my_groups": partial(
                pages.overview, engine, settings, [group], period, "messages", True
            ),
            "group": partial(pages.group_page, engine, settings, group, period),
            "members": partial(
                pages.members_page,
                engine,
                settings,
                group,
                period,
                query="",
                sort="messages",
                descending=True,
                page=1,
                today=LAST_DAY,
            ),
        }
        for name, run in runs.items():
            ms = _median_ms(run)
            if spec in ("day", "7d", "week", "30d", "month"):
                worst = max(worst, ms)
            verdict = "ok" if ms < TARGET_MS else "slow"
            print(f"BENCH dashboard_{name}_{spec} {ms:.0f} ms target<{TARGET_MS:.0f} {verdict}")
    engine.dispose()
    print(f"slowest page up to a month: {worst:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
