"""Measure `qunpulse import` throughput on a generated message CSV (not collected by pytest).

    .venv/bin/python -m tests.bench_import 100000 [DATABASE_URL]

Generates N rows over 20 groups and 500 senders (half with msg_id, half hashed), imports
them into a fresh SQLite file (or the URL given), then imports again (all duplicates), and
prints rows/s for both runs.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.history_import import ImportRequest, run_import
from storage.db import make_engine, upgrade


def generate(path: Path, rows: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("platform,chat_id,chat_name,sender_id,sender_name,sent_at,msg_type,text,msg_id\n")
        for i in range(rows):
            at = (start + timedelta(seconds=17 * i)).strftime("%Y-%m-%d %H:%M:%S")
            msg_id = f"bench-{i}" if i % 2 else ""
            out.write(
                f"wecom,wrBENCH{i % 20},群{i % 20},u{i % 500},用户{i % 500},{at},text,"
                f"第{i}条消息 今天的活动很好,{msg_id}\n"
            )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{folder}/bench.db"
        csv_path = Path(folder) / "bench.csv"
        generate(csv_path, rows)
        engine = make_engine(url)
        upgrade(engine)
        zone = ZoneInfo("Asia/Shanghai")
        for label in ("first import", "re-import"):
            summary = run_import(ImportRequest(csv_path), engine, zone)
            print(f"{label}: {summary.describe()}")
        engine.dispose()


if __name__ == "__main__":
    main()
