"""Rendering posts: byte limits, clean cuts, numbers for people, extra metrics by key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from analytics.posts import (
    MAX_BYTES,
    TargetCheck,
    format_change,
    format_rank_change,
    render_digest,
    render_leaderboard,
)


def document(rank: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "group": {"platform": "wecom", "chat_id": "g", "name": "VIP 用户群", "source": "full"},
        "period": {"kind": "day", "from": "2026-11-24", "to": "2026-11-24"},
        "messages": {"value": 12345, "previous": 10000, "delta": 2345, "delta_pct": 0.2345},
        "active_members": {"value": 30, "previous": 32, "delta": -2, "delta_pct": -0.0625},
        "activity_rate": {"value": 0.125, "previous": 0.1, "delta": 0.025, "delta_pct": 0.25},
        "message_rank": rank,
        **extra,
    }


@pytest.mark.parametrize("flavour", ["wecom", "dingtalk", "feishu"])
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_two_hundred_long_names_stay_within_4096_bytes_and_end_with_and_n_more(
    flavour: Any, locale: Any
) -> None:
    rank = [
        {
            "position": n,
            "member": f"u{n}",
            "name": "超长的群昵称🎉" * 6 + str(n),
            "messages": 500 - n,
        }
        for n in range(1, 201)
    ]
    post = render_leaderboard(document(rank), [], locale=locale, flavour=flavour, top_n=200)
    body = post.body
    assert len(body.encode("utf-8")) <= MAX_BYTES
    body.encode("utf-8").decode("utf-8")  # whole characters only
    last = body.splitlines()[-1]
    pattern = r"…另有 (\d+) 人未列出" if locale == "zh_CN" else r"…and (\d+) more"
    match = re.fullmatch(pattern, last)
    assert match, last
    listed = sum(1 for line in body.splitlines() if re.match(r"(🥇|🥈|🥉|\d+\.) ", line))
    assert 0 < listed < 200
    assert int(match.group(1)) == 200 - listed


def test_opted_out_members_are_left_out_and_positions_close_up() -> None:
    rank = [
        {"position": 1, "member": "x", "name": "Hidden", "messages": 9, "opted_out": True},
        {"position": 2, "member": "a", "name": "Alice", "messages": 5},
        {"position": 3, "member": "b", "name": "Bob", "messages": 3},
    ]
    yesterday = [
        {"position": 1, "member": "b", "name": "Bob", "messages": 4},
        {"position": 2, "member": "a", "name": "Alice", "messages": 2},
    ]
    body = render_leaderboard(document(rank), yesterday, locale="en", flavour="wecom").body
    assert "Hidden" not in body
    assert "🥇 Alice 5 msgs" in body
    assert '<font color="info">↑1</font>' in body
    assert "🥈 Bob 3 msgs" in body
    assert '<font color="warning">↓1</font>' in body
    assert "12,345 messages from 2 people today, ↑23.4% on yesterday" in body


def test_numbers_for_people() -> None:
    assert format_rank_change(1, 4, "zh_CN") == "↑3"
    assert format_rank_change(5, 3, "zh_CN") == "↓2"
    assert format_rank_change(2, 2, "zh_CN") == "–"
    assert format_rank_change(2, None, "zh_CN") == "新"
    assert format_change("messages", {"delta": 2345, "delta_pct": 0.125}) == "↑12.5%"
    assert format_change("activity_rate", {"delta": -0.015, "delta_pct": -0.1}) == "↓1.5pp"
    post = render_leaderboard(document([]), [], locale="zh_CN", flavour="dingtalk")
    assert "1.2万 条消息" in post.body
    assert "较昨日 ↑23.4%" in post.body


def test_digest_shows_known_and_extra_metrics_targets_and_failures() -> None:
    doc = document(
        [{"position": 1, "member": "a", "name": "Alice", "messages": 5}],
        retention_d7={"value": 0.31, "previous": 0.2, "delta": 0.11, "delta_pct": 0.55},
        top_words=[{"word": "活动", "count": 12}, ["优惠", 7]],
        sentiment_split={"positive": 0.6, "neutral": 0.3, "negative": 0.1},
        anomalies=[{"description": "18:00–20:00 负面消息激增"}],
        segments={"silent": {"count": 4}, "churn_warning": 2},
    )
    post = render_digest(
        doc,
        kind="daily",
        locale="zh_CN",
        flavour="wecom",
        targets=[TargetCheck("activity_rate", 0.15)],
        failures=["leaderboard 2026-11-23: errcode 93000"],
    )
    body = post.body
    assert post.title == "VIP 用户群 社群日报"
    assert "消息总量: **1.2万**" in body
    assert "社群活跃度: **12.5%**" in body
    assert "7日留存" in body  # an extra countable metric, shown under its name
    assert "活动(12) · 优惠(7)" in body
    assert "正面 60.0% · 中性 30.0% · 负面 10.0%" in body
    assert "18:00–20:00 负面消息激增" in body
    assert "沉默 4 · 流失预警 2" in body
    assert "实际 12.5% / 目标 15.0%" in body
    assert "✗" in body
    assert "errcode 93000" in body
    assert len(body.encode()) <= MAX_BYTES


def test_a_digest_with_many_failures_is_cut_cleanly() -> None:
    failures = [f"leaderboard 2026-11-{n:02}: errcode 93000 机器人已被移除" * 3 for n in range(80)]
    body = render_digest(
        document([]), kind="weekly", locale="en", flavour="dingtalk", failures=failures
    ).body
    assert len(body.encode()) <= MAX_BYTES
    assert re.fullmatch(r"…and \d+ more", body.splitlines()[-1])


def test_word_cloud_draws_chinese_with_the_installed_font() -> None:
    from io import BytesIO

    from PIL import Image

    from analytics.charts import MAX_IMAGE_BYTES, render_word_cloud, top_words_counts

    words = top_words_counts([{"word": "活动", "count": 30}, ["优惠", 12], ["退款", 5]])
    assert words == {"活动": 30, "优惠": 12, "退款": 5}
    png = render_word_cloud(words)
    assert png.startswith(b"\x89PNG")
    assert len(png) <= MAX_IMAGE_BYTES
    image = Image.open(BytesIO(png)).convert("L")
    histogram = image.histogram()
    dark = sum(histogram[:200])
    assert dark > 1000  # glyphs were drawn, not an empty picture


def test_weekly_chart_is_a_small_png() -> None:
    from datetime import date, timedelta

    from analytics.charts import render_weekly_chart

    days = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]
    png = render_weekly_chart(days, [5, 9, 0, 12, 3, 40, 7], [2, 3, 0, 5, 1, 9, 3])
    assert png.startswith(b"\x89PNG")
    assert 1_000 < len(png) < 300_000


def test_weekly_chart_speaks_the_locale_with_every_glyph_drawn() -> None:
    import warnings
    from datetime import date, timedelta

    from analytics.charts import render_weekly_chart

    days = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]
    figures = ([5, 9, 0, 12, 3, 40, 7], [2, 3, 0, 5, 1, 9, 3])
    with warnings.catch_warnings():
        # matplotlib warns "Glyph ... missing from font" when it draws an empty box.
        warnings.simplefilter("error")
        chinese = render_weekly_chart(days, *figures, "zh_CN")
        english = render_weekly_chart(days, *figures, "en")
    assert chinese != english
