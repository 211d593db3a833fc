"""Sentiment off the request path, and the words that never become words."""

from __future__ import annotations

import asyncio
import json
import marshal
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from analytics import text as text_module
from analytics.sentiment import NEUTRAL, bucket, score
from analytics.text import TextConfig, count_words, keywords, segmenter, top_words
from bot.cli import main
from bot.sentiment import Scored
from config import Settings
from storage.db import make_engine
from storage.privacy import forget_member
from tests.conftest import WECOM_AES_KEY, WECOM_TOKEN, RunningServer
from tests.doubles.wecom import WeComAiBotDouble

GROUP = "wrkSFfCgAAsent"


@pytest.mark.parametrize(
    "text",
    [
        "好的",
        "ok thanks, great product",
        "[微笑][微笑][强]",
        "@张三 收到",
        "https://example.com/很好很好很好",
    ],
)
def test_short_emoji_only_and_english_texts_are_neutral(text: str) -> None:
    assert score(text) == NEUTRAL


def test_clear_chinese_opinions_are_scored() -> None:
    assert score("产品很好用，非常满意") >= 0.7
    assert score("太差了，我要投诉退款") <= 0.3
    assert bucket(0.7, 0.7, 0.3) == "positive"
    assert bucket(0.3, 0.7, 0.3) == "negative"
    assert bucket(0.5, 0.7, 0.3) == "neutral"


def test_words_drop_emoji_codes_links_mentions_numbers_and_stop_words() -> None:
    config = TextConfig(stop_words=("直播间",))
    texts = [
        "@张三 [流泪][流泪] 我们的直播间 https://t.cn/abc 2026 12.5% 直播很精彩",
        "直播 回放 www.example.com 的 了 the and",
    ]
    words = top_words(count_words(config, [(t, None) for t in texts]), 10)
    assert dict(words) == {"直播": 2, "精彩": 1, "回放": 1}
    # Stored cuts keep the stop words (config may change); counting takes them out.
    seg = segmenter(config)
    assert "直播间" in seg.stored(texts[0]).split()
    assert count_words(config, [("", seg.stored(t)) for t in texts]) == dict(words)


def test_segmenter_is_built_once_per_configuration() -> None:
    assert segmenter(TextConfig()) is segmenter(TextConfig())


def test_topics_read_the_idf_table_once_then_from_a_cache_that_follows_jieba(
    tmp_path: Path,
) -> None:
    texts = ["直播回放什么时候有", "直播回放在群公告", "优惠券怎么用"]
    counts = count_words(TextConfig(), [(t, None) for t in texts])
    expected = keywords(counts, 3)
    assert [w for w, _ in expected] == ["直播", "优惠券", "回放"]
    text_module._IDF.clear()
    assert keywords(counts, 3, str(tmp_path)) == expected
    cache = tmp_path / "qunpulse-idf.cache"
    assert cache.stat().st_size > 1_000_000  # the whole table, as marshal
    # A cache written for another idf.txt (or damaged) is not used, but rebuilt.
    stamp, table = marshal.loads(cache.read_bytes())  # noqa: S302 - our own file
    cache.write_bytes(marshal.dumps(((0, 0), ({"直播": 99.0}, 1.0))))
    text_module._IDF.clear()
    assert keywords(counts, 3, str(tmp_path)) == expected
    assert marshal.loads(cache.read_bytes()) == (stamp, table)  # noqa: S302
    cache.write_bytes(b"not marshal")
    text_module._IDF.clear()
    assert keywords(counts, 3, str(tmp_path)) == expected


async def test_worker_scores_new_messages_in_the_background_and_tells_listeners(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    double = WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)
    seen: list[Scored] = []
    done = asyncio.Event()

    async def listener(scored: list[Scored]) -> None:
        seen.extend(scored)
        if len(seen) >= 3:
            done.set()

    server.service.sentiment.listeners.append(listener)
    script = [
        ("s1", "alice", "产品很好用，非常满意"),
        ("s2", "bob", "太差了，我要投诉退款"),
        ("s3", "carol", "好的"),
        ("s4", "dave", "/stats"),
    ]
    for msgid, user, text in script:
        response = await double.deliver(double.group_text(msgid, GROUP, user, text))
        assert response.status_code == 200
    server.service.sentiment.wake()
    await asyncio.wait_for(done.wait(), timeout=30)

    assert sorted(s.text for s in seen) == sorted(t for _, _, t in script[:3])
    assert [s.sentiment for s in seen if s.text == "好的"] == [NEUTRAL]

    capsys.readouterr()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    code = main(
        [
            "stats",
            "-c",
            str(server.config_file),
            "--group",
            GROUP,
            "--date",
            today,
            "--json",
            "--metrics",
            "sentiment_split",
        ]
    )
    assert code == 0
    split = json.loads(capsys.readouterr().out)["sentiment_split"]
    assert split["counts"] == {"positive": 1, "neutral": 1, "negative": 1, "unscored": 0}


async def test_rescore_command_scores_stored_messages(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    double = WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)
    for msgid, text in (("r1", "服务态度很好，很满意"), ("r2", "/help")):
        assert (
            await double.deliver(double.group_text(msgid, GROUP, "erin", text))
        ).status_code == 200
    capsys.readouterr()
    assert main(["sentiment", "rescore", "-c", str(server.config_file), "--group", GROUP]) == 0
    assert capsys.readouterr().out.strip() == "scored 1 messages"


async def test_the_scorer_stores_each_texts_words_and_stats_counts_them_without_jieba(
    server: RunningServer, settings: Settings
) -> None:
    double = WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)
    script = [
        ("w1", "alice", "直播回放什么时候有"),
        ("w2", "bob", "直播回放在群公告"),
        ("w3", "carol", "优惠券怎么用"),
    ]
    for msgid, user, text in script:
        assert (
            await double.deliver(double.group_text(msgid, GROUP, user, text))
        ).status_code == 200
    done = asyncio.Event()

    async def listener(scored: list[Scored]) -> None:
        done.set()

    server.service.sentiment.listeners.append(listener)
    server.service.sentiment.wake()
    await asyncio.wait_for(done.wait(), timeout=30)

    engine = make_engine(settings.storage.url)
    try:
        with engine.connect() as connection:
            stored = dict(connection.execute(sa.text("SELECT text, words FROM message")).all())
        assert stored["直播回放在群公告"] == "直播 放在 公告"  # 回 and 群 are one character

        def top_words_in_a_fresh_process() -> tuple[list[dict[str, object]], bool]:
            today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
            args = ["stats", "-c", str(server.config_file), "--group", GROUP, "--date", today]
            program = (
                "import json, sys\n"
                "from bot.cli import main\n"
                f"assert main({[*args, '--json', '--metrics', 'top_words']!r}) == 0\n"
                "print(json.dumps('jieba' in sys.modules))\n"
            )
            done = subprocess.run(  # noqa: S603 - our own program, our interpreter
                [sys.executable, "-c", program], capture_output=True, text=True, check=True
            )
            document, _, jieba_loaded = done.stdout.strip().rpartition("\n")
            return json.loads(document)["top_words"], json.loads(jieba_loaded)

        words, jieba_loaded = top_words_in_a_fresh_process()
        assert words[0] == {"word": "直播", "count": 2}
        assert not jieba_loaded
        # A message stored before the scorer kept words (or not yet seen by it) is cut
        # on the fly, with the same result. The background scorer leaves such old rows
        # alone (a long history must not hold up new messages' scores and alerts);
        # `sentiment rescore --unscored` cuts them, without scoring them again.
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE message SET words = NULL, sentiment = 0.5"))
        assert top_words_in_a_fresh_process() == (words, True)
        done.clear()
        assert await server.service.sentiment.run_once() == []
        assert not done.is_set()
        assert main(["sentiment", "rescore", "-c", str(server.config_file), "--unscored"]) == 0
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT sentiment, words FROM message")).all()
        assert {score for score, _ in rows} == {0.5}
        assert all(words is not None for _, words in rows)
        assert top_words_in_a_fresh_process() == (words, False)
        # A forgotten member's words go with their texts.
        forget_member(engine, "wecom", "bob", purge=False)
        with engine.connect() as connection:
            left = dict(connection.execute(sa.text("SELECT text, words FROM message")).all())
        assert left.pop(None) is None
        assert all(words for words in left.values())
    finally:
        engine.dispose()


def _scoring_processes() -> list[int]:
    return [child.pid for child in multiprocessing.active_children() if child.pid is not None]


async def test_scoring_runs_in_its_own_process_and_survives_its_death(
    server: RunningServer,
) -> None:
    """SnowNLP never runs under the server's GIL; a killed scorer is replaced."""
    double = WeComAiBotDouble(server.callback_url("wecom-bot"), WECOM_TOKEN, WECOM_AES_KEY)
    seen: list[Scored] = []

    async def listener(scored: list[Scored]) -> None:
        seen.extend(scored)

    async def scored(text: str) -> None:
        deadline = time.monotonic() + 60
        while not any(s.text == text for s in seen):
            assert time.monotonic() < deadline, f"{text!r} was never scored"
            server.service.sentiment.wake()
            await asyncio.sleep(0.1)

    server.service.sentiment.listeners.append(listener)
    first = "产品很好用，非常满意"
    assert (await double.deliver(double.group_text("p1", GROUP, "amy", first))).status_code == 200
    await scored(first)
    [pid] = _scoring_processes()
    assert pid != os.getpid()

    os.kill(pid, signal.SIGKILL)
    second = "太差了，我要投诉退款"
    assert (await double.deliver(double.group_text("p2", GROUP, "ben", second))).status_code == 200
    await scored(second)
    assert [s.sentiment <= 0.3 for s in seen] == [False, True]
    assert _scoring_processes() != [pid]


def test_the_scoring_process_leaves_when_its_server_is_killed(tmp_path: Path) -> None:
    script = (
        "import multiprocessing, os, signal, sys\n"
        "from bot.sentiment import preload_scorer\n"
        "preload_scorer()\n"
        "[child] = multiprocessing.active_children()\n"
        "print(child.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(  # noqa: S603 - our own module, a fixed script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    pid = int(result.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(pid):
        assert time.monotonic() < deadline, "the scoring process outlived its server"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent (gone) could reap it
