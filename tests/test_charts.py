"""The word cloud: full-size picture, same words give the same picture, on any thread."""

from __future__ import annotations

import threading
from io import BytesIO

import pytest
from PIL import Image

from analytics.charts import render_word_cloud

WORDS = {
    word: 90 - 3 * rank
    for rank, word in enumerate(
        [
            "今天",
            "打卡",
            "群里",
            "大家",
            "活动",
            "分享",
            "学习",
            "老师",
            "课程",
            "作业",
            "问题",
            "谢谢",
            "早上",
            "晚上",
            "时间",
        ]
    )
}


def test_word_cloud_is_the_asked_size_and_repeats_exactly() -> None:
    first = render_word_cloud(WORDS)
    assert Image.open(BytesIO(first)).size == (800, 400)
    assert render_word_cloud(WORDS) == first
    assert Image.open(BytesIO(render_word_cloud(WORDS, width=600, height=300))).size == (600, 300)


def test_word_cloud_from_another_thread_draws_the_same_picture() -> None:
    # Font objects are cached per thread: a worker thread gets its own, same result.
    here = render_word_cloud(WORDS)
    there: list[bytes] = []
    worker = threading.Thread(target=lambda: there.append(render_word_cloud(WORDS)))
    worker.start()
    worker.join(timeout=60)
    assert there == [here]


def test_remembered_fonts_and_boxes_draw_what_plain_wordcloud_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import wordcloud.wordcloud as module
    from PIL import ImageFont

    others = {word: count // 2 + rank for rank, (word, count) in enumerate(WORDS.items())}
    others["新词"] = 7
    # The second cloud measures many of the first one's words again: from memory.
    remembered = [render_word_cloud(WORDS), render_word_cloud(others)]
    monkeypatch.setattr(module, "ImageFont", ImageFont)  # wordcloud as it comes
    assert [render_word_cloud(WORDS), render_word_cloud(others)] == remembered
