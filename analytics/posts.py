"""Render the scheduled posts (leaderboard, digests) as text each platform shows well.

Pure functions: the figures (the ``GroupStats.to_json()`` document), the locale and the
platform's flavour in, a :class:`RenderedPost` out. No database, no clock, no network.

Every body stays within :data:`MAX_BYTES` UTF-8 bytes (WeCom and DingTalk markdown limit):
long lists are cut at a whole line and end with an "…and N more" line, so no character is
ever split. Digests render whatever metrics the document carries: the known ones in a
fixed order, then any other ``{"value", "previous"}`` metric by its id, and the richer
sections (``top_words``, ``sentiment_split``, ``anomalies``, ``segments``) when present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from analytics.labels import Locale, metric_name
from analytics.metrics import COUNTABLE
from analytics.report import RATES, format_count, format_value

MAX_BYTES = 4096
#: Names longer than this are shortened with "…" (a long name must not push others out).
MAX_NAME_CHARS = 24

Flavour = Literal["wecom", "dingtalk", "feishu"]

#: Countable metrics in the order a digest shows them (the others follow by name).
DIGEST_ORDER = COUNTABLE
#: Keys of the stats document that are not countable metrics.
NOT_METRICS = frozenset(
    {"group", "period", "message_rank", "top_words", "sentiment_split", "anomalies", "segments"}
)
#: Parts of the stats document a digest never shows: neither countable (no value and
#: previous) nor a section of its own. Jobs do not compute them for digests.
DIGEST_OMITS = frozenset(
    {
        "stickiness",
        "behaviours",
        "hour_histogram",
        "heatmap",
        "funnel",
        "churn_profile",
        "operator_score",
    }
)
#: Countable metrics where a fall is good news (coloured as such).
LOWER_IS_BETTER = frozenset({"leaves", "removed", "leave_rate"})
SEGMENT_NAMES: dict[str, dict[str, str]] = {
    "high_active": {"zh_CN": "高活跃", "en": "highly active"},
    "silent": {"zh_CN": "沉默", "en": "silent"},
    "churn_warning": {"zh_CN": "流失预警", "en": "churn warning"},
}
ANOMALY_MEASURES: dict[str, dict[str, str]] = {
    "messages": {"zh_CN": "消息量", "en": "messages"},
    "negative": {"zh_CN": "负面消息", "en": "negative messages"},
    "leaves": {"zh_CN": "退群", "en": "leaves"},
}

TEXT: dict[str, dict[str, str]] = {
    "leaderboard_title": {"zh_CN": "{group} 今日发言排行", "en": "{group}: today's top talkers"},
    "daily_title": {"zh_CN": "{group} 社群日报", "en": "{group}: daily digest"},
    "weekly_title": {"zh_CN": "{group} 社群周报", "en": "{group}: weekly digest"},
    "unit_messages": {"zh_CN": "{n} 条", "en": "{n} msgs"},
    "unit_message": {"zh_CN": "{n} 条", "en": "{n} msg"},
    "more": {"zh_CN": "…另有 {n} 人未列出", "en": "…and {n} more"},
    "more_lines": {"zh_CN": "…另有 {n} 项未列出", "en": "…and {n} more"},
    "summary": {
        "zh_CN": "今日共 {messages} 条消息,{speakers} 人发言,{change}",
        "en": "{messages} messages from {speakers} people today, {change}",
    },
    "vs_yesterday": {"zh_CN": "较昨日 {delta}", "en": "{delta} on yesterday"},
    "no_previous": {"zh_CN": "昨日无数据", "en": "no figures for yesterday"},
    "new": {"zh_CN": "新", "en": "new"},
    "key_metrics": {"zh_CN": "核心指标", "en": "Key figures"},
    "top_words": {"zh_CN": "高频词", "en": "Top words"},
    "sentiment": {"zh_CN": "情绪分布", "en": "Sentiment"},
    "sentiment_line": {
        "zh_CN": "正面 {positive} · 中性 {neutral} · 负面 {negative}",
        "en": "positive {positive} · neutral {neutral} · negative {negative}",
    },
    "anomalies": {"zh_CN": "异常提醒", "en": "Anomalies"},
    "segments": {"zh_CN": "成员分层", "en": "Segments"},
    "topics": {"zh_CN": "热门话题", "en": "Hot topics"},
    "anomaly_line": {
        "zh_CN": "{hour} {measure} {value}(平时约 {mean})",
        "en": "{hour}: {measure} {value} (usually about {mean})",
    },
    "targets": {"zh_CN": "目标对比", "en": "Targets"},
    "target_line": {
        "zh_CN": "{name}: 实际 {actual} / 目标 {target} {mark}",
        "en": "{name}: actual {actual} / target {target} {mark}",
    },
    "failures": {"zh_CN": "投递失败(请检查配置)", "en": "Failed posts (check the config)"},
    "at_only": {
        "zh_CN": "注:此群数据仅来自 @机器人 的消息。",
        "en": "Note: counts only messages that @-mention the bot.",
    },
    "chart_note": {
        "zh_CN": "(此平台的机器人不能发图片:每日趋势见 `qunpulse stats --period last-week`)",
        "en": "(This platform's robot takes no images: see daily trends with "
        "`qunpulse stats --period last-week`.)",
    },
    "top_talkers": {"zh_CN": "发言前 {n}", "en": "Top {n} talkers"},
}


def text(key: str, locale: Locale, **values: object) -> str:
    return TEXT[key][locale].format(**values)


@dataclass(frozen=True, slots=True)
class RenderedPost:
    """A post ready for the outbox: ``title`` (DingTalk / Feishu show it) and ``body``."""

    title: str
    body: str


# --- numbers for people -------------------------------------------------------------


def format_percent(fraction: float) -> str:
    """``0.125`` → ``12.5%``."""
    return f"{fraction * 100:.1f}%"


def format_people_count(count: int, locale: Locale) -> str:
    """``12345`` → ``1.2万`` in Chinese, ``12,345`` in English."""
    return format_count(count) if locale == "zh_CN" else f"{count:,}"


def format_rank_change(today: int, yesterday: int | None, locale: Locale) -> str:
    """``↑3`` (moved up three places), ``↓2``, ``–`` (same place), or ``新`` / ``new``."""
    if yesterday is None:
        return text("new", locale)
    moved = yesterday - today
    if moved > 0:
        return f"↑{moved}"
    if moved < 0:
        return f"↓{-moved}"
    return "–"


def format_change(metric_id: str, change: Mapping[str, Any]) -> str:
    """``↑12.5%`` / ``↓3.0%`` against the previous period, ``+1.5pp`` for rates."""
    delta = change.get("delta")
    if delta is None:
        return "–"
    if metric_id in RATES:
        points = delta * 100
        if points == 0:
            return "±0"
        return f"{'↑' if points > 0 else '↓'}{abs(points):.1f}pp"
    pct = change.get("delta_pct")
    if delta == 0:
        return "±0"
    arrow = "↑" if delta > 0 else "↓"
    if pct is None:
        return f"{arrow}{format_value(metric_id, abs(delta))}"
    return f"{arrow}{format_percent(abs(pct))}"


# --- markup per platform ------------------------------------------------------------


def _colour(value: str, tone: Literal["good", "bad", "muted"], flavour: Flavour) -> str:
    """WeCom markdown colours with ``<font color="info|warning|comment">``; others plain."""
    if flavour != "wecom":
        return value
    colour = {"good": "info", "bad": "warning", "muted": "comment"}[tone]
    return f'<font color="{colour}">{value}</font>'


def _tone(change: str) -> Literal["good", "bad", "muted"]:
    if change.startswith("↑"):
        return "good"
    if change.startswith("↓"):
        return "bad"
    return "muted"


_ESCAPES = str.maketrans(
    {
        "<": "‹",
        ">": "›",
        "*": "＊",
        "_": "＿",
        "`": "'",
        "[": "［",
        "]": "］",
        "#": "＃",
        "\n": " ",
        "\r": " ",
    }
)


def clean_name(name: str | None, fallback: str) -> str:
    """A display name safe inside markdown, shortened to :data:`MAX_NAME_CHARS`."""
    shown = (name or fallback).translate(_ESCAPES).strip() or fallback
    if len(shown) > MAX_NAME_CHARS:
        shown = shown[: MAX_NAME_CHARS - 1] + "…"
    return shown


def _size(lines: Sequence[str]) -> int:
    return len("\n".join(lines).encode("utf-8"))


def fit(
    head: Sequence[str],
    items: Sequence[str],
    more: str,
    locale: Locale,
    limit: int = MAX_BYTES,
    hidden: int = 0,
) -> str:
    """Join ``head`` and as many ``items`` as fit within ``limit`` UTF-8 bytes.

    When items are left out (or ``hidden`` were never offered), the last line says how
    many (``more`` is a ``TEXT`` key such as ``"more"``). Lines are kept whole, so no
    character is ever split.
    """
    if not hidden and _size([*head, *items]) <= limit:
        return "\n".join([*head, *items])
    kept = len(items)
    while kept >= 0:
        candidate = [*head, *items[:kept], text(more, locale, n=len(items) - kept + hidden)]
        if _size(candidate) <= limit:
            return "\n".join(candidate)
        kept -= 1
    # Even the head alone is too long: shorten by whole characters.
    body = "\n".join([*head, text(more, locale, n=len(items) + hidden)])
    return body.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


# --- the leaderboard ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Talker:
    """One visible leaderboard row (members who opted out are already gone)."""

    position: int
    member: str
    name: str | None
    messages: int


def visible_rank(rank: Sequence[Mapping[str, Any]]) -> list[Talker]:
    """The public ranking: opted-out members removed and positions closed up."""
    shown = [entry for entry in rank if not entry.get("opted_out")]
    return [
        Talker(index, str(entry["member"]), entry.get("name"), int(entry["messages"]))
        for index, entry in enumerate(shown, start=1)
    ]


def render_leaderboard(
    today: Mapping[str, Any],
    yesterday_rank: Sequence[Mapping[str, Any]],
    *,
    locale: Locale,
    flavour: Flavour,
    top_n: int = 10,
    limit: int = MAX_BYTES,
) -> RenderedPost:
    """The day's top ``top_n`` talkers with counts and change of rank against yesterday.

    Args:
        today: the day's stats document (``GroupStats.to_json()``).
        yesterday_rank: the previous day's ``message_rank`` list.
        locale: ``zh_CN`` or ``en``.
        flavour: the platform whose markdown the body uses.
        top_n: how many members to list at most.
        limit: the byte limit of the body.
    """
    group = _group_name(today)
    title = text("leaderboard_title", locale, group=group)
    day = today["period"]["from"]
    talkers = visible_rank(today.get("message_rank", []))
    before = {t.member: t.position for t in visible_rank(yesterday_rank)}
    messages = today.get("messages", {})
    change = format_change("messages", messages)
    comparison = (
        text("no_previous", locale)
        if messages.get("previous") in (None, 0)
        else text("vs_yesterday", locale, delta=change)
    )
    summary = text(
        "summary",
        locale,
        messages=format_people_count(int(messages.get("value") or 0), locale),
        speakers=format_people_count(len(talkers), locale),
        change=comparison,
    )
    head = [f"**{title} · {day}**", f"> {summary}", ""]
    if today.get("group", {}).get("source") == "at_mentions_only":
        head.insert(2, _colour(text("at_only", locale), "muted", flavour))
    medals = {1: "🥇", 2: "🥈", 3: "🥉"}
    items = []
    for talker in talkers[:top_n]:
        moved = format_rank_change(talker.position, before.get(talker.member), locale)
        place = medals.get(talker.position, f"{talker.position}.")
        count = _unit(talker.messages, locale)
        name = clean_name(talker.name, talker.member)
        items.append(f"{place} {name} {count} {_colour(moved, _tone(moved), flavour)}")
    hidden = max(len(talkers) - top_n, 0)
    body = fit(head, items, "more", locale, limit, hidden)
    return RenderedPost(title, body)


# --- digests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetCheck:
    metric: str
    target: float


def render_digest(
    document: Mapping[str, Any],
    *,
    kind: Literal["daily", "weekly"],
    locale: Locale,
    flavour: Flavour,
    targets: Sequence[TargetCheck] = (),
    failures: Sequence[str] = (),
    top_talkers: int = 5,
    limit: int = MAX_BYTES,
    chart_note: bool = False,
) -> RenderedPost:
    """A daily or weekly digest: every metric in ``document`` with its change.

    Args:
        document: the period's stats document (``GroupStats.to_json()``), possibly with
            extra metrics; unknown countable ones are shown by id, unknown shapes skipped.
        kind: ``daily`` or ``weekly``.
        locale: ``zh_CN`` or ``en``.
        flavour: the platform whose markdown the body uses.
        targets: operator goals to show against the actual value.
        failures: one line per post that failed since the last digest (for operators).
        top_talkers: how many of the period's top talkers to show.
        limit: the byte limit of the body.
        chart_note: say that the chart is not attached (a platform that takes no images).
    """
    group = _group_name(document)
    title = text(f"{kind}_title", locale, group=group)
    period = document["period"]
    span = (
        period["from"] if period["from"] == period["to"] else f"{period['from']} ~ {period['to']}"
    )
    lines = [f"**{title} · {span}**"]
    if document.get("group", {}).get("source") == "at_mentions_only":
        lines.append(_colour(text("at_only", locale), "muted", flavour))
    lines += ["", f"**{text('key_metrics', locale)}**"]
    keys = [k for k in DIGEST_ORDER if k in document] + sorted(
        k
        for k, v in document.items()
        if k not in NOT_METRICS
        and k not in DIGEST_ORDER
        and isinstance(v, Mapping)
        and "value" in v
        and "previous" in v
    )
    for key in keys:
        change = document[key]
        if "note" in change or (change.get("value") is None and change.get("previous") is None):
            continue  # no data behind it (e.g. no orders imported): nothing to report
        moved = format_change(key, change)
        tone = _tone(moved)
        if key in LOWER_IS_BETTER and tone != "muted":
            tone = "good" if tone == "bad" else "bad"
        lines.append(
            f"- {metric_name(key, locale)}: **{format_value(key, change.get('value'))}** "
            f"{_colour(moved, tone, flavour)}"
        )
    talkers = visible_rank(document.get("message_rank", []))[:top_talkers]
    if talkers:
        lines += ["", f"**{text('top_talkers', locale, n=len(talkers))}**"]
        lines += [
            f"{t.position}. {clean_name(t.name, t.member)} {_unit(t.messages, locale)}"
            for t in talkers
        ]
    lines += _words_section(document.get("top_words"), locale)
    lines += _topics_section(document.get("topics"), locale)
    lines += _sentiment_section(document.get("sentiment_split"), locale)
    lines += _list_section("anomalies", document.get("anomalies"), locale, flavour)
    lines += _segments_section(document.get("segments"), locale)
    lines += _targets_section(document, targets, locale, flavour)
    if chart_note:
        lines += ["", _colour(text("chart_note", locale), "muted", flavour)]
    # Failures go last and are the part cut first when the post is too long.
    head, items = lines, []
    if failures:
        head = [*lines, "", f"**{_colour(text('failures', locale), 'bad', flavour)}**"]
        items = [f"- {clean_failure(line)}" for line in failures]
    body = fit(head, items, "more_lines", locale, limit)
    return RenderedPost(title, body)


def clean_failure(line: str) -> str:
    return line.translate(_ESCAPES)[:300]


def _words_section(value: object, locale: Locale) -> list[str]:
    words: list[str] = []
    if isinstance(value, Sequence) and not isinstance(value, str):
        for item in list(value)[:15]:
            if isinstance(item, Mapping) and "word" in item:
                words.append(f"{clean_name(str(item['word']), '?')}({item.get('count', '')})")
            elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) >= 2:
                words.append(f"{clean_name(str(item[0]), '?')}({item[1]})")
    if not words:
        return []
    return ["", f"**{text('top_words', locale)}**", " · ".join(words)]


def _sentiment_section(value: object, locale: Locale) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    shares = {}
    for key in ("positive", "neutral", "negative"):
        share = value.get(key)
        if isinstance(share, Mapping):  # a Change-like object
            share = share.get("value")
        if not isinstance(share, int | float):
            return []
        shares[key] = format_percent(float(share)) if share <= 1 else format_count(int(share))
    return ["", f"**{text('sentiment', locale)}**", text("sentiment_line", locale, **shares)]


def _list_section(key: str, value: object, locale: Locale, flavour: Flavour) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return []
    lines = []
    for item in list(value)[:10]:
        if isinstance(item, str):
            lines.append(f"- {clean_failure(item)}")
        elif isinstance(item, Mapping):
            words = item.get("description") or item.get("text") or item.get("summary")
            if not words and "measure" in item and "hour" in item:
                measure = str(item["measure"])
                words = text(
                    "anomaly_line",
                    locale,
                    hour=str(item["hour"]).replace("T", " "),
                    measure=ANOMALY_MEASURES.get(measure, {}).get(locale, measure),
                    value=item.get("value"),
                    mean=f"{float(item.get('mean') or 0):.1f}",
                )
            if words:
                lines.append(f"- {_colour(clean_failure(str(words)), 'bad', flavour)}")
    return ["", f"**{text(key, locale)}**", *lines] if lines else []


def _topics_section(value: object, locale: Locale) -> list[str]:
    """Configured topics with their message counts, or the automatic keywords."""
    if not isinstance(value, Mapping):
        return []
    if value.get("source") == "configured":
        items = [
            f"{clean_name(str(t.get('name')), '?')}({t.get('messages', 0)})"
            for t in value.get("topics") or []
            if isinstance(t, Mapping) and t.get("messages")
        ]
    else:
        items = [
            clean_name(str(k.get("keyword")), "?")
            for k in value.get("keywords") or []
            if isinstance(k, Mapping)
        ][:8]
    return ["", f"**{text('topics', locale)}**", " · ".join(items)] if items else []


def _segments_section(value: object, locale: Locale) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    parts = []
    for name, item in value.items():
        count = item.get("count") if isinstance(item, Mapping) else item
        if isinstance(count, int):
            label = SEGMENT_NAMES.get(str(name), {}).get(locale) or clean_name(str(name), "?")
            parts.append(f"{label} {format_count(count)}")
    return ["", f"**{text('segments', locale)}**", " · ".join(parts)] if parts else []


def _targets_section(
    document: Mapping[str, Any], targets: Sequence[TargetCheck], locale: Locale, flavour: Flavour
) -> list[str]:
    lines = []
    for check in targets:
        change = document.get(check.metric)
        if not isinstance(change, Mapping) or change.get("value") is None:
            continue
        actual = float(change["value"])
        met = actual >= check.target
        mark = _colour("✓" if met else "✗", "good" if met else "bad", flavour)
        lines.append(
            "- "
            + text(
                "target_line",
                locale,
                name=metric_name(check.metric, locale),
                actual=format_value(check.metric, actual),
                target=format_value(check.metric, check.target),
                mark=mark,
            )
        )
    return ["", f"**{text('targets', locale)}**", *lines] if lines else []


def _unit(count: int, locale: Locale) -> str:
    key = "unit_message" if count == 1 else "unit_messages"
    return text(key, locale, n=format_people_count(count, locale))


def _group_name(document: Mapping[str, Any]) -> str:
    group = document.get("group", {})
    return clean_name(group.get("name"), str(group.get("chat_id", "?")))
