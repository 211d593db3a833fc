"""Alert texts and keyword matching: pure functions (no database, no clock, no network).

Keywords match as raw substrings after NFKC normalisation and case folding, so ``投诉``
matches in ``我要投诉`` and ``Refund`` in ``REFUND!!``. Every jieba token of a text is a
substring of it, so matching jieba tokens as well could never find more; the alert path
therefore does not load jieba (half a second and 100 MB) at all.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from analytics.labels import Locale

#: Each quoted text is cut here, so that a burst of ten stays far inside 4096 bytes.
MAX_QUOTE_CHARS = 200
#: A burst alert lists at most this many messages.
MAX_BURST_LINES = 10
#: WeCom and DingTalk take at most 4096 bytes of markdown.
MAX_BYTES = 4096

_WORDS: dict[str, dict[Locale, str]] = {
    "negative": {"zh_CN": "负面消息", "en": "Negative message"},
    "keyword": {"zh_CN": "关键词告警", "en": "Alert keyword"},
    "burst": {"zh_CN": "负面消息集中出现", "en": "Burst of negative messages"},
    "spike_messages": {"zh_CN": "消息量异常", "en": "Message volume spike"},
    "spike_negative": {"zh_CN": "负面消息量异常", "en": "Negative messages spike"},
    "spike_leaves": {"zh_CN": "退群人数异常", "en": "Leaves spike"},
    "title": {"zh_CN": "群脉告警", "en": "qunpulse alert"},
    "sender": {"zh_CN": "发送人", "en": "Sender"},
    "time": {"zh_CN": "时间", "en": "Time"},
    "score": {"zh_CN": "情感分", "en": "Sentiment score"},
    "threshold": {"zh_CN": "阈值", "en": "threshold"},
    "keywords": {"zh_CN": "关键词", "en": "Keywords"},
    "burst_line": {
        "zh_CN": "{n} 条负面消息出现在 {minutes} 分钟内(触发条件:{count} 条)",
        "en": "{n} negative messages within {minutes} minutes (alerts at {count})",
    },
    "more": {"zh_CN": "…另有 {n} 条未列出", "en": "…and {n} more"},
    "spike_line": {
        "zh_CN": "{hour} 这一小时:{value},过去 {weeks} 周同一时段平均 {mean}(σ {sigma})",
        "en": "hour {hour}: {value}; the same hour over the last {weeks} weeks: mean {mean} "
        "(σ {sigma})",
    },
    "private_note": {
        "zh_CN": "仅发送给本群运营者,不会发到群里。",
        "en": "Sent to the group's operators only, never into the group.",
    },
}


def _w(key: str, locale: Locale) -> str:
    return _WORDS[key][locale]


def kind_label(kind: str, locale: Locale) -> str:
    """A human name of an alert kind."""
    return _WORDS.get(kind, {}).get(locale, kind)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def matched_keywords(text: str, keywords: Sequence[str]) -> list[str]:
    """The configured keywords found in ``text``, in config order."""
    folded = _fold(text)
    return [k for k in keywords if k.strip() and _fold(k.strip()) in folded]


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > MAX_QUOTE_CHARS:
        flat = flat[: MAX_QUOTE_CHARS - 1] + "…"
    return flat


def _fit(lines: list[str]) -> str:
    """Join ``lines``, dropping whole lines from the end until it fits in MAX_BYTES."""
    body = "\n".join(lines)
    while len(body.encode()) > MAX_BYTES and len(lines) > 1:
        lines = lines[:-1]
        body = "\n".join(lines)
    return body


@dataclass(frozen=True, slots=True)
class QuotedMessage:
    """A message as an alert quotes it (local time already)."""

    sender_name: str | None
    sender_id: str
    at: datetime
    text: str
    score: float | None


def _who(name: str | None, user_id: str) -> str:
    return f"{name} ({user_id})" if name and name != user_id else user_id


def render_message_alert(
    *,
    kind: str,
    group: str,
    message: QuotedMessage,
    keywords: Sequence[str],
    threshold: float,
    locale: Locale,
) -> tuple[str, str]:
    """Title and markdown body of a single-message alert (negative or keyword)."""
    title = f"{_w('title', locale)} · {group}"
    lines = [
        f"**{kind_label(kind, locale)}** · {group}",
        f"> {_quote(message.text)}",
        "",
        f"- {_w('sender', locale)}: {_who(message.sender_name, message.sender_id)}",
        f"- {_w('time', locale)}: {message.at:%Y-%m-%d %H:%M:%S}",
    ]
    if message.score is not None:
        lines.append(
            f"- {_w('score', locale)}: {message.score:.2f} "
            f"({_w('threshold', locale)} ≤ {threshold:g})"
        )
    if keywords:
        lines.append(f"- {_w('keywords', locale)}: {', '.join(keywords)}")
    lines += ["", _w("private_note", locale)]
    return title, _fit(lines)


def render_burst_alert(
    *,
    group: str,
    messages: Sequence[QuotedMessage],
    window_minutes: int,
    burst_count: int,
    locale: Locale,
) -> tuple[str, str]:
    """Title and markdown body of a burst alert: the negative messages of the window."""
    title = f"{_w('title', locale)} · {group}"
    lines = [
        f"**{kind_label('burst', locale)}** · {group}",
        _w("burst_line", locale).format(n=len(messages), minutes=window_minutes, count=burst_count),
        "",
    ]
    shown = messages[-MAX_BURST_LINES:]
    for m in shown:
        score = f" ({m.score:.2f})" if m.score is not None else ""
        lines.append(f"- {m.at:%H:%M} {_who(m.sender_name, m.sender_id)}{score}: {_quote(m.text)}")
    if len(messages) > len(shown):
        lines.append(_w("more", locale).format(n=len(messages) - len(shown)))
    lines += ["", _w("private_note", locale)]
    return title, _fit(lines)


def render_spike_alert(
    *, kind: str, group: str, anomaly: dict[str, object], weeks: int, locale: Locale
) -> tuple[str, str]:
    """Title and markdown body of a spike found by the hourly anomalies scan."""
    title = f"{_w('title', locale)} · {group}"
    lines = [
        f"**{kind_label(kind, locale)}** · {group}",
        _w("spike_line", locale).format(
            hour=str(anomaly["hour"]).replace("T", " "),
            value=anomaly["value"],
            weeks=weeks,
            mean=anomaly["mean"],
            sigma=anomaly["sigma"],
        ),
        "",
        _w("private_note", locale),
    ]
    return title, _fit(lines)
