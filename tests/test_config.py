"""Configuration: every mistake names its key, secrets never show, the example is complete."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from config import ConfigError, Settings, load_settings
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN

EXAMPLE = Path(__file__).parents[1] / "config" / "qunpulse.example.toml"


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_port_exits_non_zero_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nport = "abc"\n', encoding="utf-8")
    result = run_cli("stats", "--group", "g", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert 'config error: server.port: expected an integer, got "abc"' in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "qunpulse.toml"
    config.write_text("[server]\nport = 8080\n", encoding="utf-8")
    settings = load_settings(config, env={"QUNPULSE_SERVER__PORT": "9191", "QUNPULSE_LOCALE": "en"})
    assert settings.server.port == 9191
    assert settings.locale == "en"


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"server\.port: expected an integer, got \"x\""):
        load_settings(env={"QUNPULSE_SERVER__PORT": "x"})


def test_config_file_found_through_qunpulse_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./qunpulse.toml here
    config = tmp_path / "elsewhere.toml"
    config.write_text('timezone = "Europe/Berlin"\n', encoding="utf-8")
    assert load_settings(env={"QUNPULSE_CONFIG": str(config)}).timezone == "Europe/Berlin"


def test_no_config_at_all_means_sqlite_and_no_bots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.storage.url == "sqlite:///qunpulse.db"
    assert settings.bots == ()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            f'[[bots]]\nid = "w"\nkind = "wecom_aibot"\ntoken = "t"\nencoding_aes_key = "{WECOM_AES_KEY[:42]}"\n',
            "bots[0].encoding_aes_key: must be 43 characters, got 42",
        ),
        ('[[bots]]\nid = "w"\nkind = "wechat"\n', "bots[0]"),
        (
            '[[bots]]\nid = "w"\nkind = "dingtalk_robot"\napp_key = "k"\n',
            "bots[0].app_secret: is required",
        ),
        ("[servr]\nport = 1\n", "servr: is not a known key"),
        ('timezone = "Mars/Olympus"\n', "timezone: unknown time zone"),
        ('[storage]\nurl = "mysql://x"\n', "storage.url: expected"),
        ("[alerts]\nnegative_threshold = 2\n", "alerts.negative_threshold"),
        (
            '[[bots]]\nid = "a"\nkind = "dingtalk_robot"\napp_key = "k"\napp_secret = "s"\n'
            '[[bots]]\nid = "a"\nkind = "dingtalk_robot"\napp_key = "k"\napp_secret = "s"\n',
            "bots[1].id: 'a' is already used by bots[0]",
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert message in str(caught.value)


def test_secrets_do_not_appear_in_repr_or_errors(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[bots]]\nid = "w"\nkind = "wecom_aibot"\ntoken = "{WECOM_TOKEN}"\n'
        f'encoding_aes_key = "{WECOM_AES_KEY}"\n'
        '[[groups]]\nplatform = "wecom"\nchat_id = "c"\n'
        'webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY123"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    shown = repr(settings) + str(settings)
    for secret in (WECOM_TOKEN, WECOM_AES_KEY, "SECRETKEY123"):
        assert secret not in shown
    config.write_text(
        f'[[bots]]\nid = "w"\nkind = "wecom_aibot"\ntoken = 5\nencoding_aes_key = "{WECOM_AES_KEY}"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert "not shown" in str(caught.value)


def _keys(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _keys(annotation)
    return names


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    tomllib.loads(text)  # it parses
    from config import settings as module

    bot_models = [
        module.WecomAibotSettings,
        module.WecomAppSettings,
        module.DingtalkRobotSettings,
        module.DingtalkEventsSettings,
        module.FeishuSettings,
        module.GroupSettings,
    ]
    keys = _keys(Settings) | {k for m in bot_models for k in _keys(m)}
    missing = sorted(key for key in keys if key not in text)
    assert missing == []
