"""``sentiment``: scores per second, the fast scorer against ``SnowNLP(text).sentiments``."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class SentimentRun:
    fast_rate: float
    baseline_rate: float
    distinct_ratio: float
    max_difference: float
    texts: int
    distinct: int


def bench_sentiment(count: int, baseline_count: int) -> SentimentRun:
    """Score ``count`` generated texts both ways; SnowNLP scores the first ``baseline_count``."""
    from snownlp import SnowNLP

    from analytics.snowfast import FastSentiment
    from bench.corpus import chat_texts

    texts = chat_texts(count)
    SnowNLP("预热").sentiments  # noqa: B018 - load both models before timing
    scorer = FastSentiment()
    started = time.perf_counter()
    fast = [scorer(t) for t in texts]
    fast_seconds = time.perf_counter() - started
    sample = texts[:baseline_count]
    started = time.perf_counter()
    slow = [SnowNLP(t).sentiments for t in sample]
    slow_seconds = time.perf_counter() - started
    # Without the text cache: every distinct text once, each from a cold scorer state.
    distinct = list(dict.fromkeys(sample))
    cold = FastSentiment()
    started = time.perf_counter()
    for text in distinct:
        cold(text)
    distinct_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for text in distinct:
        SnowNLP(text).sentiments  # noqa: B018 - timing only
    slow_distinct = time.perf_counter() - started
    return SentimentRun(
        fast_rate=len(texts) / fast_seconds,
        baseline_rate=len(sample) / slow_seconds,
        distinct_ratio=slow_distinct / distinct_seconds,
        max_difference=max(abs(a - b) for a, b in zip(fast, slow, strict=False)),
        texts=len(texts),
        distinct=len(set(texts)),
    )
