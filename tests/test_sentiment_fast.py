"""The fast scorer gives SnowNLP's scores exactly, on generated chat and on odd strings."""

from __future__ import annotations

import random

from snownlp import SnowNLP

from analytics.snowfast import FastSentiment
from bench.corpus import chat_texts


def _odd_texts() -> list[str]:
    # (SnowNLP itself fails on an empty text, so none here.)
    # Random mixes of known and unknown characters, Latin words, spaces and punctuation:
    # the segmenter's unknown-character branch and Viterbi ties get exercised too.
    rng = random.Random(5)
    alphabet = "我你他好差很不是的了吗呢啊哈退款投诉满意质量服务快递龘靐 ok,。!？123"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(400)]


def test_fast_scores_equal_snownlp_on_a_generated_corpus() -> None:
    corpus = list(dict.fromkeys(chat_texts(10_000))) + _odd_texts()
    scorer = FastSentiment()
    for text in corpus + corpus:  # the second pass answers from the caches
        assert abs(scorer(text) - SnowNLP(text).sentiments) <= 1e-9, text
