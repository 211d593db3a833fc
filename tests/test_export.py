"""`qunpulse export`: the workbook opens with openpyxl and its numbers equal `stats --json`.

The data: a week (Mon 2026-11-16 .. Sun 11-22, Shanghai) of group ``g1`` with joins, a
leave, messages on two days, a command, and the week before for the comparison.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from bot.cli import main
from storage.alerts import AlertStore, NewAlert
from storage.db import make_engine, upgrade
from storage.ingest import EventStore
from storage.models import Message
from tests.conftest import write_config
from tests.test_privacy import membership, message

MONDAY = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    EventStore(engine).store(
        [
            [membership("j0", "join", ["alice", "bob"], MONDAY - timedelta(days=6))],
            [message("p1", "alice", MONDAY - timedelta(days=5), "上周的消息")],
            [membership("j1", "join", ["carol", "dave"], MONDAY)],
            [message("m1", "alice", MONDAY + timedelta(minutes=5), "早上好")],
            [message("m2", "carol", MONDAY + timedelta(minutes=6), "大家好")],
            [message("m3", "bob", MONDAY + timedelta(minutes=7), "/stats")],
            [membership("l1", "leave", ["dave"], MONDAY + timedelta(days=1))],
            # 23:30 on Wednesday in Shanghai is Wednesday 15:30 UTC: the local day counts.
            [message("m4", "alice", datetime(2026, 11, 18, 15, 30, tzinfo=UTC), "晚安")],
            [message("m5", "carol", datetime(2026, 11, 18, 16, 30, tzinfo=UTC), "早")],
        ]
    )
    yield engine
    engine.dispose()


def _store_alert(engine: Engine, platform_msg_id: str, at: datetime) -> None:
    """An alert on one stored message, as the scorer's listener stores it."""
    with engine.connect() as connection:
        message_id = connection.execute(
            select(Message.id).where(Message.platform_msg_id == platform_msg_id)  # type: ignore[call-overload]
        ).scalar_one()
    context = AlertStore(engine).contexts([message_id])[message_id]
    AlertStore(engine).raise_alert(
        NewAlert(
            group_id=context.group_id,
            group_key="wecom:g1",
            kind="negative",
            dedupe_key=f"message:{message_id}",
            cooldown_subject=str(context.member_id),
            title="群脉告警",
            summary=context.text,
            member_id=context.member_id,
            message_id=message_id,
            member_ids=(context.member_id,),
            sender_user_id=context.user_id,
            sender_name=context.display_name,
            text=context.text,
            score=0.05,
            message_at=context.sent_at,
        ),
        [],
        at,
        timedelta(minutes=60),
        undeliverable="no operators",
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def table(sheet: object, header_first: str) -> tuple[list[str], list[tuple]]:
    rows = list(sheet.iter_rows(values_only=True))  # type: ignore[attr-defined]
    start = next(i for i, row in enumerate(rows) if row and row[0] == header_first)
    return list(rows[start]), [row for row in rows[start + 1 :]]


def test_xlsx_numbers_equal_stats_json(
    engine: Engine, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path / "qunpulse.toml", database_url))
    assert main(["member", "optout", "wecom", "carol", "-c", config]) == 0
    _store_alert(engine, "m1", MONDAY + timedelta(minutes=6))
    _store_alert(engine, "p1", MONDAY - timedelta(days=5))  # the week before: not exported
    common = ["-c", config, "--group", "g1", "--period", "week", "--date", "2026-11-18"]
    expected = json.loads(run(capsys, "stats", *common, "--json"))
    target = tmp_path / "out" / "g1.xlsx"

    printed = run(capsys, "export", *common, "-o", str(target))

    assert printed.strip() == str(target)
    workbook = load_workbook(target)
    assert workbook.sheetnames == ["汇总", "消息量排名", "成员", "每日", "告警"]

    headers, rows = table(workbook["汇总"], "指标ID")
    assert headers == ["指标ID", "指标", "本期", "上期", "变化", "变化率"]
    summary = {row[0]: row for row in rows}
    # The summary sheet holds every countable metric: those with a value beside the
    # previous period's (lists and breakdowns have sheets or columns of their own).
    metric_ids = [
        k for k, v in expected.items() if isinstance(v, dict) and {"value", "previous"} <= set(v)
    ]
    assert sorted(summary) == sorted(metric_ids)
    for metric_id in metric_ids:
        _, name, value, previous, delta, delta_pct = summary[metric_id]
        figure = expected[metric_id]
        # Excel keeps 15 significant digits: fractions agree to that, counts exactly.
        for cell, key in (
            (value, "value"),
            (previous, "previous"),
            (delta, "delta"),
            (delta_pct, "delta_pct"),
        ):
            assert cell == (None if figure[key] is None else pytest.approx(figure[key], rel=1e-14))
        assert name != metric_id  # a Chinese name
    assert summary["messages"][2] == 5
    assert summary["activity_rate"][2] == pytest.approx(2 / 3)

    headers, rank = table(workbook["消息量排名"], "名次")
    assert [(r[0], r[1], r[3]) for r in rank] == [
        (e["position"], e["member"], e["messages"]) for e in expected["message_rank"]
    ]
    assert [r[4] for r in rank] == [
        "已退出排行" if e.get("opted_out") else None for e in expected["message_rank"]
    ]

    headers, members = table(workbook["成员"], "成员ID")
    by_user = {r[0]: r for r in members}
    assert sorted(by_user) == ["alice", "bob", "carol", "dave"]
    assert by_user["carol"][7] == "已退出排行"
    assert by_user["dave"][6] == "已退群"
    assert by_user["alice"][5] == 2
    assert isinstance(by_user["carol"][3], datetime)
    assert by_user["carol"][3] == datetime(2026, 11, 16, 10, 0)  # noqa: DTZ001 - Excel: local wall time

    headers, daily = table(workbook["每日"], "日期")
    assert headers == ["日期", "消息总量", "活跃用户数", "新增人数", "退群人数", "被移出人数"]
    assert [r[0].date() for r in daily] == [date(2026, 11, 16) + timedelta(n) for n in range(7)]
    assert sum(r[1] for r in daily) == expected["messages"]["value"]
    assert sum(r[3] for r in daily) == expected["joins"]["value"]
    assert sum(r[4] for r in daily) == expected["leaves"]["value"]
    assert daily[0][1:] == (3, 2, 2, 0, 0)  # alice, carol; bob's command is not activity
    assert daily[2][1:3] == (1, 1)  # Wednesday 23:30 local
    assert daily[3][1:3] == (1, 1)  # Thursday 00:30 local

    headers, alerts = table(workbook["告警"], "时间")
    assert headers == ["时间", "成员", "类型", "内容", "情感分"]
    assert alerts == [
        (datetime(2026, 11, 16, 10, 5), "Alice 名字", "负面消息", "早上好", 0.05)  # noqa: DTZ001
    ]

    audit = run(capsys, "audit", "list", "-c", config, "--action", "export")
    assert "wecom:g1" in audit


def test_csv_export_writes_one_bom_file_per_sheet_in_english(
    engine: Engine, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path / "qunpulse.toml", database_url, 'locale = "en"'))
    # `locale` must be at the top level of TOML: put it first.
    text = Path(config).read_text(encoding="utf-8").replace('locale = "en"', "")
    Path(config).write_text('locale = "en"\n' + text, encoding="utf-8")
    target = tmp_path / "g1.csv"

    printed = run(
        capsys, "export", "-c", config, "--group", "g1", "--from", "2026-11-16",
        "--to", "2026-11-22", "--format", "csv", "-o", str(target),
    )  # fmt: skip

    files = printed.split()
    assert files == [
        str(target),
        *(str(tmp_path / f"g1-{key}.csv") for key in ("rank", "members", "daily", "alerts")),
    ]
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
    header = rows.index(["Metric id", "Metric", "This period", "Previous", "Change", "Change %"])
    summary = {row[0]: row for row in rows[header + 1 :]}
    assert summary["messages"][2] == "5"
    daily = list(
        csv.reader((tmp_path / "g1-daily.csv").read_text(encoding="utf-8-sig").splitlines())
    )
    assert daily[0][0] == "Date"
    assert daily[1][0] == "2026-11-16"


def test_export_of_an_unknown_group_is_a_usage_error(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path / "qunpulse.toml", database_url))
    assert main(["export", "-c", config, "--group", "nope"]) == 2
    assert "no group 'nope'" in capsys.readouterr().err
