"""Pure parts of the dashboard: SVG charts and signed tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from analytics import svg_charts as charts
from handlers import signin

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
KEY = "k" * 40


def _parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 - our own output, checked to be XML


def test_line_chart_draws_one_point_per_value_and_escapes_names() -> None:
    svg = charts.line_chart(
        ["11-24", "11-25"],
        [charts.Series("<b>消息</b>", (3, 5)), charts.Series("活跃", (1, 2), charts.PALETTE[1])],
        title="每日 & 活跃",
    )
    root = _parse(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 2
    assert len(root.findall(f"{ns}circle")) == 4
    assert "<b>" not in svg
    assert "&lt;b&gt;消息&lt;/b&gt;" in svg
    assert "style=" not in svg  # CSP: no inline styles


def test_line_chart_scales_the_highest_value_to_the_top_of_the_axis() -> None:
    svg = charts.line_chart(["a", "b"], [charts.Series("x", (0, 10))], title="t", height=240)
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert ys == [196.0, 12.0]  # zero on the axis, 10 at the top (axis maximum 10)


def test_heatmap_shades_the_busiest_cell_darkest() -> None:
    values = [[0.0] * 24 for _ in range(7)]
    values[2][20] = 9.0
    values[0][8] = 3.0
    svg = charts.heatmap(list("一二三四五六日"), [str(h) for h in range(24)], values, title="h")
    assert svg.count('class="cell"') == 7 * 24
    assert "hsl(205,70%,30%)" in svg  # the peak
    assert svg.count("hsl(205,70%,97%)") == 7 * 24 - 2


def test_word_cloud_sizes_words_by_count_and_wraps_lines() -> None:
    words = [(f"词{i}", 50 - i) for i in range(30)]
    svg = charts.word_cloud(words, title="w", width=300)
    sizes = [
        int(s) for s in re.findall(r'class="word" x="[\d.]+" y="[\d.]+" font-size="(\d+)"', svg)
    ]
    assert len(sizes) == 30
    assert sizes[0] == 36
    assert sizes[-1] == 13
    assert len(set(re.findall(r'class="word" x="[\d.]+" y="([\d.]+)"', svg))) > 1


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (7, 10), (230, 250), (0.3, 0.5), (12, 20)])
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == ceiling


def test_link_token_round_trip_and_expiry() -> None:
    viewer = signin.Viewer("dingtalk", "staff_ops", groups=(3,))
    token = signin.make_link_token(KEY, viewer, NOW, timedelta(minutes=10))
    link = signin.read_link_token(KEY, token, NOW + timedelta(minutes=9))
    assert link.viewer == viewer
    assert link.expires_at == NOW + timedelta(minutes=10)
    with pytest.raises(signin.BadToken) as expired:
        signin.read_link_token(KEY, token, NOW + timedelta(minutes=10))
    assert expired.value.reason == "expired"


def test_a_tampered_or_foreign_token_is_refused() -> None:
    token = signin.make_link_token(KEY, signin.Viewer("wecom", "bob"), NOW, timedelta(minutes=10))
    body, mac = token.split(".")
    admin_body = signin._b64(b'{"p":null,"u":null,"a":true,"g":[],"n":"x","e":9999999999}')
    for forged, reason in [
        (f"{admin_body}.{mac}", "signature"),
        (token.replace(".", ""), "malformed"),
        ("", "malformed"),
    ]:
        with pytest.raises(signin.BadToken) as error:
            signin.read_link_token(KEY, forged, NOW)
        assert error.value.reason == reason
    with pytest.raises(signin.BadToken) as other_key:
        signin.read_link_token("another key" * 4, token, NOW)
    assert other_key.value.reason == "signature"
    assert body


def test_a_session_cookie_is_not_a_link_and_a_link_is_not_a_session() -> None:
    viewer = signin.Viewer(None, None, admin=True)
    session = signin.make_session(KEY, viewer, NOW, timedelta(hours=12))
    assert signin.read_session(KEY, session, NOW) == viewer
    with pytest.raises(signin.BadToken) as error:
        signin.read_link_token(KEY, session, NOW)
    assert error.value.reason == "purpose"
    link = signin.make_link_token(KEY, viewer, NOW, timedelta(minutes=1))
    with pytest.raises(signin.BadToken):
        signin.read_session(KEY, link, NOW)


def test_catalogue_sections_light_up_when_the_stats_document_has_them() -> None:
    """The shapes of the catalogue metrics (issue 5) render; absent keys say so."""
    from bot.dashboard import pages

    grid = [[0] * 24 for _ in range(7)]
    grid[4][21] = 12
    document = {
        "heatmap": {"counts": grid, "weekday_totals": [0, 0, 0, 0, 12, 0, 0], "peak_weekday": 4},
        "top_words": [["直播", 9], ["报名", 4]],
        "segments": {
            "high_active": {"count": 1, "members": ["alice"], "action": "VIP 权益"},
            "churn_warning": {"count": 0, "members": [], "action": "私聊关怀"},
            "silent": {"count": 2, "members": ["bob", "carol"], "action": "个性化唤醒"},
        },
        "retention_d7": {
            "value": 0.5,
            "previous": 0.25,
            "delta": 0.25,
            "delta_pct": 1.0,
            "eligible": 2,
            "retained": 1,
            "cohorts": [{"day": "2026-11-10", "joined": 2, "retained": 1, "rate": 0.5}],
        },
        "targets": {"activity_rate": {"target": 0.15, "actual": 0.2, "met": True}},
    }
    heat = pages._heatmap(document, "zh_CN")
    assert heat.svg is not None
    assert "hsl(205,70%,30%)" in heat.svg
    assert "五 21: 12" in heat.svg
    words = pages._words(document, "zh_CN")
    assert words.svg is not None
    assert "直播" in words.svg
    segments = pages._segments(document, "zh_CN")
    assert segments.table == [
        ["高活跃", "1", "alice", "VIP 权益"],
        ["流失预警", "0", "", "私聊关怀"],
        ["沉默", "2", "bob、carol", "个性化唤醒"],
    ]
    retention = pages._retention(document, "zh_CN")
    assert retention.table == [["2026-11-10", "2", "1", "50.0%"]]
    assert retention.note is not None
    assert retention.note.endswith(" 50.0%")
    targets = pages._targets(document, "en")
    assert targets.table == [["Activity rate", "15.0%", "20.0%", "yes"]]
    for section in (pages._heatmap({}, "zh_CN"), pages._words({}, "zh_CN")):
        assert not section.available
    assert pages._segments({}, "en").table is None


def test_segments_show_names_from_the_rank_and_empty_targets_say_how_to_set_them() -> None:
    from bot.dashboard import pages

    document = {
        "message_rank": [{"position": 1, "member": "u1", "name": "张三", "messages": 3}],
        "segments": {"silent": {"count": 2, "members": ["u1", "u2"], "action": "唤醒"}},
        "targets": {},
    }
    assert pages._segments(document, "zh_CN").table == [["沉默", "2", "张三、u2", "唤醒"]]
    targets = pages._targets(document, "zh_CN")
    assert targets.table == []
    assert targets.note is not None
    assert "[targets]" in targets.note


def test_axis_labels_keep_their_fractions() -> None:
    svg = charts.bar_chart(["a"], [charts.Series("x", (3,))], title="t")
    assert ">1.25</text>" in svg
    assert ">3.75</text>" in svg
