"""No secret in any log line or output; no personal data on /healthz or /metrics.

A realistic flow runs against the real server with logging captured at DEBUG: URL
checks, callbacks from both platforms (good, redelivered, forged), `stats`, `export`,
the retention job and `member forget`. Then every captured log record, everything the
commands printed and both monitoring endpoints are searched for every secret of the
config (tokens, AES keys, app secrets, webhook keys, signing secrets) and, on the
endpoints, for every user id, name and message text.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from bot.retention import run_retention
from tests.conftest import (
    DINGTALK_APP_SECRET,
    WECOM_AES_KEY,
    WECOM_TOKEN,
    RunningServer,
    write_config,
)
from tests.doubles.dingtalk import DingTalkRobotDouble
from tests.doubles.wecom import WeComAiBotDouble

WEBHOOK_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_ACCESS_TOKEN = "f1c3e9a0b2d4webhooktoken7788"
DING_SIGNING_SECRET = "SEC0a1b2c3d4e5f6signing99"
ALERT_WEBHOOK_KEY = "alerts-webhook-key-5d6e7f"
DB_PASSWORD = "Pw-s3cret-db-42"

SECRETS = (
    WECOM_TOKEN,
    WECOM_AES_KEY,
    DINGTALK_APP_SECRET,
    WEBHOOK_KEY,
    DING_ACCESS_TOKEN,
    DING_SIGNING_SECRET,
    ALERT_WEBHOOK_KEY,
)

GROUPS = f"""
[[groups]]
platform = "wecom"
chat_id = "wrkSecretsGroup"
webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WEBHOOK_KEY}"
operators = ["alice"]

[[groups]]
platform = "dingtalk"
chat_id = "cidSecrets"
webhook = "https://oapi.dingtalk.com/robot/send?access_token={DING_ACCESS_TOKEN}"
secret = "{DING_SIGNING_SECRET}"

[alerts]
webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ALERT_WEBHOOK_KEY}"
"""

PEOPLE = ("alice_uid", "bob_uid", "staff77", "张三丰", "李四光")
TEXTS = ("秘密的产品计划", "我的手机号是一二三", "周末团建去哪里")


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path / "qunpulse.toml", database_url, GROUPS)


@pytest.fixture(autouse=True)
def debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:4]}…) appeared in {where}"


async def test_a_full_flow_logs_no_secret_and_monitoring_shows_no_person(
    server: RunningServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    config = str(server.config_file)
    wecom = WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)
    ding = DingTalkRobotDouble(server.callback_url("ding-bot"), DINGTALK_APP_SECRET)
    assert (await wecom.url_check()).status_code == 200
    for msgid, user, text in (
        ("s1", "alice_uid", TEXTS[0]),
        ("s2", "bob_uid", TEXTS[1]),
        ("s3", "alice_uid", "/stats"),
    ):
        body = wecom.group_text(msgid, "wrkSecretsGroup", user, text)
        assert (await wecom.deliver(body)).status_code == 200
    assert (await wecom.deliver(body)).status_code == 200  # redelivery
    assert (await wecom.deliver(body, bad_signature=True)).status_code == 401
    ding_body = ding.group_text("d1", "cidSecrets", "staff77", "张三丰", TEXTS[2])
    assert (await ding.deliver(ding_body)).status_code == 200
    assert (await ding.deliver(ding_body, sign="Zm9yZ2Vk")).status_code == 401
    ding_li = ding.group_text("d2", "cidSecrets", "staff78", "李四光", "好的")
    assert (await ding.deliver(ding_li)).status_code == 200

    capsys.readouterr()
    assert main(["stats", "-c", config, "--group", "wrkSecretsGroup", "--json"]) == 0
    assert main(["stats", "-c", config, "--group", "cidSecrets"]) == 0
    assert main(["export", "-c", config, "--group", "wrkSecretsGroup",
                 "-o", str(tmp_path / "x.xlsx")]) == 0  # fmt: skip
    assert main(["retention", "run", "-c", config]) == 0
    assert main(["member", "forget", "wecom", "bob_uid", "--yes", "-c", config]) == 0
    assert main(["audit", "list", "-c", config]) == 0
    # The scheduler runs the retention job inside serve, counting into /metrics.
    service = server.service
    run_retention(service.engine, service.settings, datetime.now(UTC), service.telemetry)
    printed = capsys.readouterr()

    async with httpx.AsyncClient(timeout=5) as client:
        health = await client.get(f"{server.base_url}/healthz")
        metrics = await client.get(f"{server.base_url}/metrics")
    assert health.status_code == 200
    assert "qunpulse_events_received_total" in metrics.text
    assert "qunpulse_retention_runs_total 1.0" in metrics.text

    log_lines = [record.getMessage() for record in caplog.records]
    assert len(log_lines) > 10  # the flow did log, at DEBUG too
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for line in log_lines:
        assert_no_secret(line, "a log line")
    assert_no_secret(caplog.text, "the formatted log")
    assert_no_secret(printed.out, "stdout")
    assert_no_secret(printed.err, "stderr")
    for endpoint, text in (("/healthz", health.text), ("/metrics", metrics.text)):
        assert_no_secret(text, endpoint)
        for personal in (*PEOPLE, *TEXTS):
            assert personal not in text, f"{endpoint} shows personal data: {personal}"
    assert "秘密的产品计划" in printed.out or "alice_uid" in printed.out  # the flow was real


def test_the_database_password_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+psycopg://qp:{DB_PASSWORD}@127.0.0.1:1/qp?connect_timeout=2"
    config = str(write_config(tmp_path / "qunpulse.toml", url))
    results = [
        main(["stats", "-c", config, "--group", "g"]),
        main(["export", "-c", config, "--group", "g"]),
        main(["member", "optout", "wecom", "alice", "-c", config]),
        main(["retention", "run", "-c", config]),
        main(["audit", "list", "-c", config]),
    ]
    printed = capsys.readouterr()
    assert results == [2] * 5
    assert "storage.url" in printed.err
    for where, text in (("stdout", printed.out), ("stderr", printed.err), ("log", caplog.text)):
        assert DB_PASSWORD not in text, f"the database password appeared in {where}"
