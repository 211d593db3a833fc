"""`qunpulse archive pull` against a stand-in of the WeCom finance SDK, at its C boundary.

The stand-in (``tests/fake_finance_sdk/fake_sdk.c``) is compiled with gcc and loaded by
our real ctypes binding. The test scripts its records the way WeCom builds them: a random
key RSA-encrypted (PKCS#1 v1.5) with the public key of ``publickey_ver``, and the message
encrypted for the stand-in's ``DecryptData`` (hex of XOR with the key; the real algorithm
is not public, and qunpulse treats ``encrypt_chat_msg`` as opaque).

Hand count (room ``wrROOM``, 2026-11-20 Shanghai): seq 1 alice, 2 bob (key version 2),
3 a private chat (skipped), 4 alice, 5 a switch record (skipped), 6 recall of seq 4
-> 3 stored, 1 recalled, messages = 2. Later seq 7 carol, 8 bob -> messages = 4.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import json
import os
import secrets
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select, update

from bot.cli import main
from storage.db import make_engine
from storage.models import ArchiveCursor, Message
from tests.conftest import IN_CI, WECOM_AES_KEY, WECOM_TOKEN, write_config

SOURCE = Path(__file__).parent / "fake_finance_sdk" / "fake_sdk.c"
SHANGHAI = ZoneInfo("Asia/Shanghai")
CORP = "wwcorp0001"
ARCHIVE_SECRET = "archive-secret-Qx9"


@pytest.fixture(scope="session")
def fake_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in library, built once per session."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        reason = "no C compiler (gcc) to build the stand-in libWeWorkFinanceSdk_C.so"
        if IN_CI:
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    target = tmp_path_factory.mktemp("sdk") / "libWeWorkFinanceSdk_C.so"
    subprocess.run(  # noqa: S603 - a fixed compiler command on our own source
        [compiler, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(target), str(SOURCE)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture
def keys(tmp_path: Path) -> dict[int, rsa.RSAPrivateKey]:
    """Two key versions, as after a key rotation; PEM files beside the config."""
    generated = {}
    for version in (1, 2):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmp_path / f"key{version}.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        generated[version] = key
    return generated


class Script:
    """The records the stand-in serves, encrypted as WeCom would."""

    def __init__(self, path: Path, keys: dict[int, rsa.RSAPrivateKey]) -> None:
        self.path = path
        self.keys = keys
        path.write_text("", encoding="utf-8")

    def add(self, seq: int, message: dict[str, object], version: int = 1) -> None:
        random_key = secrets.token_hex(16).encode()  # printable, as the real keys are
        encrypted_key = self.keys[version].public_key().encrypt(random_key, padding.PKCS1v15())
        plain = json.dumps(message, ensure_ascii=False).encode()
        cipher = bytes(b ^ random_key[i % len(random_key)] for i, b in enumerate(plain)).hex()
        chatdata = {
            "seq": seq,
            "msgid": str(message.get("msgid", f"seq{seq}")),
            "publickey_ver": version,
            "encrypt_random_key": base64.b64encode(encrypted_key).decode(),
            "encrypt_chat_msg": cipher,
        }
        with self.path.open("a", encoding="utf-8") as script:
            script.write(f"{seq}\t{json.dumps(chatdata)}\n")


def ms(hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 11, 20, hour, minute, tzinfo=SHANGHAI).timestamp() * 1000)


def text(msgid: str, sender: str, at: int, content: str, room: str = "wrROOM") -> dict[str, object]:
    return {
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": ["bob"],
        "roomid": room,
        "msgtime": at,
        "msgtype": "text",
        "text": {"content": content},
    }


@pytest.fixture
def archive_config(
    tmp_path: Path,
    database_url: str,
    fake_sdk: Path,
    keys: dict[int, rsa.RSAPrivateKey],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, Script]:
    script = Script(tmp_path / "script.tsv", keys)
    monkeypatch.setenv("QP_FAKE_SDK_SCRIPT", str(script.path))
    monkeypatch.setenv("QP_FAKE_SDK_SECRET", ARCHIVE_SECRET)
    extra = f"""
[[bots]]
id = "wecom-app"
kind = "wecom_app"
corp_id = "{CORP}"
agent_id = 1000002
secret = "app-secret"
token = "{WECOM_TOKEN}"
encoding_aes_key = "{WECOM_AES_KEY}"

[bots.archive]
secret = "{ARCHIVE_SECRET}"
private_keys = {{ "1" = "{tmp_path / "key1.pem"}", "2" = "{tmp_path / "key2.pem"}" }}
sdk_path = "{fake_sdk}"
batch_limit = 2
"""
    return write_config(tmp_path / "qunpulse.toml", database_url, extra), script


def sdk_counters(library: Path) -> tuple[int, int, int]:
    lib = ctypes.CDLL(str(library))  # the same handle our binding loaded
    lib.FakeLastSeq.restype = ctypes.c_ulonglong
    return lib.FakeLiveSlices(), lib.FakeLiveSdks(), lib.FakeLastSeq()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def messages_value(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str]:
    code, out, err = run(
        capsys, "stats", "-c", str(config), "--group", "wrROOM", "--from", "2026-11-20",
        "--to", "2026-11-20", "--json",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    return document["messages"]["value"], document["group"]["source"]


def test_archive_pull_stores_group_messages_and_resumes_from_the_stored_seq(
    archive_config: tuple[Path, Script],
    fake_sdk: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, script = archive_config
    script.add(1, text("a1", "alice", ms(9), "早"))
    script.add(2, text("a2", "bob", ms(9, 1), "早上好"), version=2)
    script.add(3, text("a3", "alice", ms(9, 2), "私聊内容", room=""))
    script.add(4, text("a4", "alice", ms(9, 3), "发错"))
    script.add(5, {"msgid": "a5", "action": "switch", "time": ms(9, 4), "user": "alice"})
    script.add(
        6,
        {
            "msgid": "a6",
            "action": "recall",
            "from": "alice",
            "tolist": ["bob"],
            "roomid": "wrROOM",
            "msgtime": ms(9, 5),
            "msgtype": "revoke",
            "revoke": {"pre_msgid": "a4"},
        },
    )

    code, out, err = run(capsys, "archive", "pull", "-c", str(config))
    assert code == 0, err
    assert (
        "archive wecom-app: seq 0 -> 6: 6 records, 3 messages stored, 0 duplicated, "
        "1 recalls applied, 2 skipped" in out
    )
    assert messages_value(capsys, config) == (2, "full")
    assert sdk_counters(fake_sdk)[:2] == (0, 0)  # every slice freed, the SDK destroyed

    # A restart: a new process asks from the stored seq and finds nothing new.
    code, out, err = run(capsys, "archive", "pull", "-c", str(config))
    assert code == 0, err
    assert "seq 6 -> 6: 0 records" in out
    assert sdk_counters(fake_sdk)[2] == 6

    script.add(7, text("a7", "carol", ms(10), "我来了"))
    script.add(8, text("a8", "bob", ms(10, 1), "欢迎"))
    code, out, err = run(capsys, "archive", "pull", "-c", str(config))
    assert code == 0, err
    assert "seq 6 -> 8: 2 records, 2 messages stored, 0 duplicated" in out
    assert messages_value(capsys, config) == (4, "full")

    # A crash after storing but before the cursor moved: the batch comes again, once.
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(ArchiveCursor).values(seq=2))
        code, out, err = run(capsys, "archive", "pull", "-c", str(config))
        assert code == 0, err
        assert "seq 2 -> 8: 6 records, 0 messages stored, 3 duplicated, 0 recalls applied" in out
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(Message)).scalar_one()
            cursor = connection.execute(select(ArchiveCursor.seq)).scalar_one()  # type: ignore[call-overload]
    finally:
        engine.dispose()
    assert stored == 5  # a1 a2 a4(recalled) a7 a8, each once
    assert cursor == 8
    assert messages_value(capsys, config) == (4, "full")
    assert sdk_counters(fake_sdk)[:2] == (0, 0)


def test_archive_pull_without_the_key_version_stops_and_keeps_the_cursor(
    archive_config: tuple[Path, Script], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, script = archive_config
    script.add(1, text("b1", "alice", ms(9), "早"))
    script.keys[3] = script.keys[1]
    script.add(2, text("b2", "bob", ms(9, 1), "key 3"), version=3)
    code, _, err = run(capsys, "archive", "pull", "-c", str(config))
    assert code == 2
    assert "archive.private_keys: no key for publickey_ver 3 (record seq 2)" in err
    assert "Traceback" not in err


def test_archive_pull_with_a_wrong_secret_names_the_key(
    archive_config: tuple[Path, Script],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = archive_config
    monkeypatch.setenv("QP_FAKE_SDK_SECRET", "another-secret")
    code, _, err = run(capsys, "archive", "pull", "-c", str(config))
    assert code == 2
    assert "Init failed with SDK error 10000" in err
    assert "archive.secret" in err
    assert ARCHIVE_SECRET not in err


def test_archive_pull_without_an_archive_says_how_to_configure_it(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "archive", "pull", "-c", str(config_file))
    assert code == 2
    assert "[bots.archive]" in err


def test_missing_sdk_library_names_sdk_path(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    extra = f"""
[[bots]]
id = "wecom-app"
kind = "wecom_app"
corp_id = "{CORP}"
agent_id = 1
secret = "s"
token = "t"
encoding_aes_key = "{WECOM_AES_KEY}"
[bots.archive]
secret = "x"
private_keys = {{ "1" = "{tmp_path / "k.pem"}" }}
sdk_path = "{tmp_path / "nowhere.so"}"
"""
    config = write_config(tmp_path / "c.toml", database_url, extra)
    code, _, err = run(capsys, "archive", "pull", "-c", str(config))
    assert code == 2
    assert "archive.sdk_path: cannot load" in err
    assert os.fspath(tmp_path / "nowhere.so") in err


async def test_the_serve_hook_pulls_at_start_and_on_notice(
    archive_config: tuple[Path, Script], database_url: str
) -> None:
    """The periodic job pulls once at start; ``pull_async`` (msgaudit_notify) pulls again."""
    from aiohttp import web

    from bot.archive import archive_lifecycle, archive_pullers
    from config import load_settings
    from storage.db import upgrade

    config, script = archive_config
    script.add(1, text("c1", "alice", ms(9), "早"))
    settings = load_settings(config, env={})
    engine = make_engine(database_url)
    upgrade(engine)
    pullers = archive_pullers(settings, engine)
    puller = pullers["wecom-app"]
    app = web.Application()
    app.cleanup_ctx.append(archive_lifecycle(settings, pullers))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await asyncio.wait_for(puller.wait_for_pulls(1), 30)
        assert puller.last_summary is not None
        assert puller.last_summary.stored == 1
        script.add(2, text("c2", "bob", ms(9, 1), "好"))
        first, second = await asyncio.gather(puller.pull_async(), puller.pull_async())
        assert second is None  # the running pull goes round again instead
        assert first is not None
        assert first.to_seq == 2
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(Message)).scalar_one()
        assert stored == 2
    finally:
        await runner.cleanup()
        engine.dispose()
