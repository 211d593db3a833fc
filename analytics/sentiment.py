"""Sentiment of one text message: a SnowNLP score in [0, 1], or neutral where it is weak.

SnowNLP is a naive-Bayes model trained on Chinese product reviews. It guesses wildly on
very short texts, on texts made of emoji codes only, and on English, so those get the
neutral score 0.5 instead of a guess (README "Sentiment"):
- after removing URLs, emoji codes (``[流泪]``) and @-mentions, fewer than
  ``min_chinese_chars`` Chinese characters remain (default 4: ``好的``, ``ok``, ``[微笑]``).

Scores come from :mod:`analytics.snowfast`: SnowNLP's own model and algorithms without
its per-text overhead, identical numbers; identical texts are scored once per process,
since groups repeat themselves (``收到``, ``+1``, ``打卡``). SnowNLP is imported on first
use only.
"""

from __future__ import annotations

import re

from analytics.text import clean

NEUTRAL = 0.5
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def is_scoreable(text: str, min_chinese_chars: int) -> bool:
    """Whether SnowNLP's score means something for this text."""
    return len(_CHINESE.findall(clean(text))) >= min_chinese_chars


def score(text: str, min_chinese_chars: int = 4) -> float:
    """The sentiment of ``text``: 0 negative … 1 positive; 0.5 where SnowNLP is weak."""
    if not is_scoreable(text, min_chinese_chars):
        return NEUTRAL
    return _snownlp(clean(text).strip())


def _snownlp(text: str) -> float:
    # The same numbers as SnowNLP(text).sentiments, memoised and many times faster.
    from analytics.snowfast import sentiments

    value = float(sentiments(text))
    return min(1.0, max(0.0, value))


def bucket(value: float, positive: float, negative: float) -> str:
    """``positive`` at or above ``positive``, ``negative`` at or below ``negative``."""
    if value >= positive:
        return "positive"
    if value <= negative:
        return "negative"
    return "neutral"
