"""`qunpulse import` end to end through the CLI, counted by `qunpulse stats --json`.

Hand count, all on 2026-11-20 in Asia/Shanghai:

archive.jsonl (room ``wrARCHIVE``), 10 non-empty lines:
    m1 alice text, m2 bob text, m3 alice text, m4 carol image     -> 4 imported
    recall of m3 (msgtype revoke, pre_msgid m3)                   -> m3 recalled
    a switch record, a one-to-one chat (empty roomid)             -> 2 skipped
    a line that is not JSON, a send without msgtime               -> 2 rejected
    m1 again (the same record exported twice)                     -> 1 duplicated
    messages = 3 (m3 recalled counts nowhere); active = 3 (alice m1, bob, carol)

messages-bom.csv (UTF-8 with BOM, DingTalk group ``cidCSV``): 4 data rows
    d1 (msg_id), two rows without msg_id (hashed keys), one with sent_at "yesterday"
    -> 3 imported, 1 rejected (line 5)
messages-gbk.csv (GB18030, same group): 2 data rows, d1 again and d9
    -> 1 imported, 1 duplicated
    cidCSV messages = 3 + 1 = 4, from 王芳 (2), 李雷 (1), 韩梅梅 (1)

orders.csv: o1 alice 99.90 (cost 50), o2 bob 0.10 completed, o3 12.345 (rejected:
    3 decimals), o4 carol 1,299.00 refunded -> 3 orders, amount 9990 + 10 + 129900 fen
"""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.cli import main
from bot.history_import import ImportRequest, _read_chunks, _Reading, run_import
from storage.db import make_engine
from storage.models import Message, Order
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN, RunningServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = "2026-11-20"


def ms(hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 11, 20, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


def record(msgid: str, sender: str, at: int, text: str | None = None, **extra: object) -> str:
    body: dict[str, object] = {
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": ["x"],
        "roomid": "wrARCHIVE",
        "msgtime": at,
        "msgtype": "text" if text is not None else "image",
    }
    if text is not None:
        body["text"] = {"content": text}
    body.update(extra)
    return json.dumps(body, ensure_ascii=False)


ARCHIVE_LINES = [
    record("m1", "alice", ms(9), "早上好"),
    record("m2", "bob", ms(9, 5), "今天有活动吗"),
    record("m3", "alice", ms(9, 6), "发错了"),
    json.dumps(
        {
            "msgid": "r1",
            "action": "recall",
            "from": "alice",
            "tolist": ["x"],
            "roomid": "wrARCHIVE",
            "msgtime": ms(9, 7),
            "msgtype": "revoke",
            "revoke": {"pre_msgid": "m3"},
        }
    ),
    json.dumps({"msgid": "s1", "action": "switch", "time": ms(9, 8), "user": "alice"}),
    record("p1", "alice", ms(9, 9), "私聊", roomid=""),
    "{not json",
    json.dumps({"msgid": "m5", "action": "send", "from": "bob", "roomid": "wrARCHIVE"}),
    record("m4", "carol", ms(10)),
    record("m1", "alice", ms(9), "早上好"),
]

BOM_CSV = (
    "platform,chat_id,chat_name,sender_id,sender_name,sent_at,msg_type,text,msg_id\r\n"
    "dingtalk,cidCSV,产品交流群,u1,王芳,2026-11-20 10:00,text,大家好,d1\r\n"
    'dingtalk,cidCSV,产品交流群,u2,李雷,2026-11-20 10:01:30,text,"价格是多少,有优惠吗?",\r\n'
    "dingtalk,cidCSV,产品交流群,u1,王芳,2026-11-20T11:00:00+08:00,text,好的,\r\n"
    "dingtalk,cidCSV,产品交流群,u3,韩梅梅,yesterday,text,坏行,\r\n"
)
GBK_CSV = (
    "platform,chat_id,chat_name,sender_id,sender_name,sent_at,msg_type,text,msg_id\r\n"
    "dingtalk,cidCSV,产品交流群,u1,王芳,2026-11-20 10:00,text,大家好,d1\r\n"
    "dingtalk,cidCSV,产品交流群,u3,韩梅梅,2026/11/20 15:30,text,收到谢谢,d9\r\n"
)
ORDERS_CSV = (
    "order_id,platform,user_id,amount,cost,status,paid_at\n"
    "o1,wecom,alice,99.90,50,paid,2026-11-20 12:00\n"
    "o2,wecom,bob,0.10,,completed,2026-11-20 13:00\n"
    "o3,wecom,bob,12.345,,paid,2026-11-20 14:00\n"
    'o4,wecom,carol,"1,299.00",800,已退款,2026-11-20 15:00\n'
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "archive": tmp_path / "archive.jsonl",
        "bom": tmp_path / "messages-bom.csv",
        "gbk": tmp_path / "messages-gbk.csv",
        "orders": tmp_path / "orders.csv",
    }
    paths["archive"].write_text("\n".join(ARCHIVE_LINES) + "\n", encoding="utf-8")
    paths["bom"].write_bytes(BOM_CSV.encode("utf-8-sig"))
    paths["gbk"].write_bytes(GBK_CSV.encode("gb18030"))
    paths["orders"].write_text(ORDERS_CSV, encoding="utf-8")
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stats(capsys: pytest.CaptureFixture[str], config: Path, group: str) -> dict:
    code, out, err = run(
        capsys, "stats", "-c", str(config), "--group", group, "--from", DAY, "--to", DAY, "--json"
    )
    assert code == 0, err
    return json.loads(out)


def test_import_counts_exactly_and_a_second_import_adds_nothing(
    config_file: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config_file)
    code, out, err = run(capsys, "import", str(files["archive"]), "-c", cfg)
    assert code == 0, err
    assert "(archive-jsonl): imported 4, duplicated 1, rejected 2, skipped 2" in out
    assert "recalls applied 1" in out
    assert f"{files['archive']}:7: not JSON" in err
    assert f"{files['archive']}:8: missing field 'msgtime'" in err

    code, out, err = run(capsys, "import", str(files["bom"]), "-c", cfg)
    assert code == 0, err
    assert "(csv): imported 3, duplicated 0, rejected 1, skipped 0" in out
    assert f"{files['bom']}:5: expected a time like" in err

    code, out, err = run(capsys, "import", str(files["gbk"]), "-c", cfg)
    assert code == 0, err
    assert "(csv): imported 1, duplicated 1, rejected 0" in out

    archive = stats(capsys, config_file, "wrARCHIVE")
    assert archive["group"]["source"] == "full"
    assert archive["messages"]["value"] == 3
    assert archive["active_members"]["value"] == 3
    assert [(r["member"], r["messages"]) for r in archive["message_rank"]] == [
        ("alice", 1),
        ("bob", 1),
        ("carol", 1),
    ]

    csv_group = stats(capsys, config_file, "cidCSV")
    assert csv_group["group"]["name"] == "产品交流群"
    assert csv_group["group"]["source"] == "at_mentions_only"
    assert csv_group["messages"]["value"] == 4
    assert [(r["name"], r["messages"]) for r in csv_group["message_rank"]] == [
        ("王芳", 2),
        ("李雷", 1),
        ("韩梅梅", 1),
    ]

    # The same three files again: every row is a duplicate, the figures do not move.
    for name, duplicates in (("archive", 6), ("bom", 3), ("gbk", 2)):
        code, out, err = run(capsys, "import", str(files[name]), "-c", cfg)
        assert code == 0, err
        assert f"imported 0, duplicated {duplicates}," in out
    assert stats(capsys, config_file, "wrARCHIVE")["messages"]["value"] == 3
    assert stats(capsys, config_file, "cidCSV")["messages"]["value"] == 4


def test_orders_are_stored_in_exact_fen(
    config_file: Path, database_url: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "import", str(files["orders"]), "-c", str(config_file))
    assert code == 0, err
    assert "(orders-csv): imported 3, duplicated 0, rejected 1" in out
    assert "orders.csv:4: amount: expected a non-negative amount with at most 2 decimals" in err
    code, out, _ = run(capsys, "import", str(files["orders"]), "-c", str(config_file))
    assert "imported 0, duplicated 3, rejected 1" in out

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    Order.order_id, Order.amount_fen, Order.cost_fen, Order.status, Order.paid_at
                ).order_by(Order.order_id)  # type: ignore[call-overload]
            ).all()
            paid_total = connection.execute(
                select(func.sum(Order.amount_fen)).where(Order.status.in_(["paid", "completed"]))  # type: ignore[attr-defined]
            ).scalar_one()
    finally:
        engine.dispose()
    assert [(r.order_id, r.amount_fen, r.cost_fen, r.status) for r in rows] == [
        ("o1", 9990, 5000, "paid"),
        ("o2", 10, None, "completed"),
        ("o4", 129900, 80000, "refunded"),
    ]
    assert rows[0].paid_at == datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    assert paid_total == 10000


def count_messages(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(Message)).scalar_one())
    finally:
        engine.dispose()


def test_dry_run_writes_nothing(
    config_file: Path, database_url: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "db", "upgrade", "-c", str(config_file))[0] == 0
    code, out, err = run(
        capsys, "import", str(files["archive"]), "--dry-run", "-c", str(config_file)
    )
    assert code == 0, err
    assert "dry run, nothing written: 6 rows valid, rejected 2, skipped 2" in out
    assert f"{files['archive']}:7: not JSON" in err
    assert count_messages(database_url) == 0


def test_strict_stops_at_the_first_bad_row_and_writes_nothing(
    config_file: Path, database_url: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "import", str(files["bom"]), "--strict", "-c", str(config_file))
    assert code == 1
    assert f"stopped at {files['bom']}:5: expected a time like" in out
    assert count_messages(database_url) == 0
    good = files["gbk"]
    code, out, err = run(capsys, "import", str(good), "--strict", "-c", str(config_file))
    assert code == 0, err
    assert "imported 2, duplicated 0, rejected 0" in out


def test_a_failed_write_ends_the_reader_process_with_the_file_half_read(
    tmp_path: Path,
) -> None:
    # The reader is chunks ahead when the database fails (here: no tables); it must not
    # be left waiting to hand them over, or the import would never return.
    long = tmp_path / "long.csv"
    rows = (f"wecom,wrLONG,u{n % 50},2026-11-20 09:00:00,text {n},m{n}" for n in range(100_000))
    long.write_text(
        "platform,chat_id,sender_id,sent_at,text,msg_id\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table"):
            run_import(ImportRequest(long), engine, SHANGHAI)
    finally:
        engine.dispose()
    readers = [p for p in multiprocessing.active_children() if p.name == "qunpulse-import-reader"]
    assert readers == []  # other tests' processes (the sentiment scorer) may live on


def test_the_reader_hands_over_what_it_has_when_the_writer_waits(tmp_path: Path) -> None:
    # Sizes fixed beforehand (an eighth of a batch, then doubling) kept the writer
    # waiting while each bigger chunk was read; a waiting writer now gets the rows read
    # so far (in whole thousands), a busy one a whole batch at most.
    path = tmp_path / "five-thousand.csv"
    rows = (f"wecom,wrFIVE,u{n % 50},2026-11-20 09:00:00,text {n},m{n}" for n in range(5_000))
    path.write_text(
        "platform,chat_id,sender_id,sent_at,text,msg_id\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    reading = _Reading(path, "csv", "utf-8-sig", SHANGHAI, None, False, 2_000)

    def sizes(waiting: bool) -> list[int]:
        return [chunk.message_rows for chunk in _read_chunks(reading, lambda: waiting)]

    assert sizes(waiting=True) == [1_000] * 5 + [0]
    assert sizes(waiting=False) == [2_000, 2_000, 1_000]


def test_group_filter_imports_only_that_group(
    config_file: Path, database_url: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "import",
        str(files["bom"]),
        "--group",
        "cidOTHER",
        "--format",
        "csv",
        "-c",
        str(config_file),
    )
    assert code == 0
    assert "imported 0, duplicated 0, rejected 1, skipped 3" in out
    assert count_messages(database_url) == 0


def test_unknown_format_and_missing_columns_are_usage_errors(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = run(capsys, "import", str(odd), "-c", str(config_file))
    assert code == 2
    assert "cannot tell the format" in err
    assert "--format" in err
    code, _, err = run(capsys, "import", str(odd), "--format", "csv", "-c", str(config_file))
    assert code == 2
    assert "missing column(s) platform, chat_id, sender_id, sent_at" in err


async def test_a_message_seen_live_and_imported_is_stored_once(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.doubles.wecom import WeComAiBotDouble

    double = WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)
    response = await double.deliver(double.group_text("live-1", "wrLIVE", "alice", "你好"))
    assert response.status_code == 200, response.text
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    history = tmp_path / "live.jsonl"
    history.write_text(
        json.dumps(
            {
                "msgid": "live-1",
                "action": "send",
                "from": "alice",
                "tolist": ["x"],
                "roomid": "wrLIVE",
                "msgtime": now_ms,
                "msgtype": "text",
                "text": {"content": "@群脉 你好"},
            }
        )
        + "\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "import", str(history), "-c", str(server.config_file))
    assert code == 0, err
    assert "imported 0, duplicated 1" in out


def test_progress_on_a_terminal_and_plain_lines_otherwise(
    database_url: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.history_import import ImportRequest, run_import
    from storage.db import upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        request = ImportRequest(files["bom"], batch_size=1)
        summary = run_import(request, engine, SHANGHAI, tty=True)
        assert summary.imported == 3
        assert "rows/s" in capsys.readouterr().err  # the rich bar, on stderr
        summary = run_import(request, engine, SHANGHAI, tty=False)
        assert summary.duplicated == 3
    finally:
        engine.dispose()


def test_plain_progress_lines_say_rows_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.history_import import Progress

    progress = Progress("import big.csv", 1000, tty=False, every=0)
    progress.update(250, 500)
    progress.close()
    line = capsys.readouterr().err
    assert line.startswith("import big.csv: 250 rows (50%), ")
    assert "rows/s, ETA" in line
