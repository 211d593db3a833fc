"""SnowNLP's sentiment score, the same numbers, many times faster.

``SnowNLP(text).sentiments`` spends almost all its time in the character-based segmenter
(a trigram Viterbi over the tags b/m/e/s) recomputing the same interpolated log
probabilities from dictionaries again and again, plus a BM25 index it builds for every
text and never uses for sentiment. This module runs the *same* algorithms on SnowNLP's own
model data:

- the segmenter's ``log_prob(s1, s2, s3)`` is memoised (it is a pure function of the model);
- the Viterbi runs exactly as SnowNLP's (same order of states, same dictionary insertion
  order, so ties break the same way), only without the repeated look-ups;
- each run of Chinese characters is segmented once per process (chat repeats itself);
- the naive-Bayes classifier adds precomputed ``log(freq(word))`` per class in the same
  order as SnowNLP, so every floating-point operation and thus every score is identical
  (``tests/test_sentiment_fast.py`` checks a generated corpus against SnowNLP itself).

Pure: model data in, floats out; no database, network or clock. SnowNLP is imported on
first use only (it takes about two seconds).
"""

from __future__ import annotations

import math
import re
from typing import Any

_RE_ZH = re.compile("([\u4e00-\u9fa5]+)")  # the pattern snownlp.seg splits on
_CACHE_LIMIT = 200_000


class FastSentiment:
    """A drop-in for ``SnowNLP(text).sentiments`` built on SnowNLP's loaded models."""

    def __init__(self) -> None:
        from snownlp import normal, seg, sentiment

        self._model: Any = seg.segger.segger  # CharacterBasedGenerativeModel
        self._bayes: Any = sentiment.classifier.classifier  # Bayes
        self._stop: frozenset[str] = frozenset(normal.stop)
        self._status: tuple[str, ...] = tuple(self._model.status)
        self._log_prob: dict[tuple[Any, Any, Any], float] = {}
        self._known: dict[str, bool] = {}
        self._runs: dict[str, list[str]] = {}
        self._texts: dict[str, float] = {}
        self._classes: list[str] = list(self._bayes.d)
        self._prior = {
            k: math.log(self._bayes.d[k].getsum()) - math.log(self._bayes.total)
            for k in self._classes
        }
        self._word_log: dict[str, dict[str, float]] = {k: {} for k in self._classes}

    def __call__(self, text: str) -> float:
        """The score SnowNLP gives ``text`` (0 negative … 1 positive)."""
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        value = self._classify([w for w in self._segment(text) if w not in self._stop])
        if len(self._texts) >= _CACHE_LIMIT:
            self._texts.clear()  # bounded memory; the hot texts come back at once
        self._texts[text] = value
        return value

    # --- segmentation: snownlp.seg.seg -----------------------------------------------

    def _segment(self, sentence: str) -> list[str]:
        words: list[str] = []
        for part in _RE_ZH.split(sentence):
            part = part.strip()
            if not part:
                continue
            if _RE_ZH.match(part):
                words += self._run(part)
            else:
                words.extend(w for w in (x.strip() for x in part.split()) if w)
        return words

    def _run(self, run: str) -> list[str]:
        words = self._runs.get(run)
        if words is None:
            words = list(_join(zip(run, self._tags(run), strict=True)))
            if len(self._runs) >= _CACHE_LIMIT:
                self._runs.clear()
            self._runs[run] = words
        return words

    def _tags(self, data: str) -> list[str]:
        """``CharacterBasedGenerativeModel.tag`` with memoised probabilities."""
        status = self._status
        now: list[tuple[Any, float, list[str]]] = [((("", "BOS"), ("", "BOS")), 0.0, [])]
        for w in data:
            stage: dict[Any, tuple[float, list[str]]] = {}
            if not self._is_known(w):
                for s in status:
                    for pre in now:
                        stage[(pre[0][1], (w, s))] = (pre[1], pre[2] + [s])
                now = [(k, v[0], v[1]) for k, v in stage.items()]
                continue
            for s in status:
                ws = (w, s)
                for pre in now:
                    key = (pre[0][1], ws)
                    p = pre[1] + self._lp(pre[0][0], pre[0][1], ws)
                    held = stage.get(key)
                    if held is None or p > held[0]:
                        stage[key] = (p, pre[2] + [s])
            now = [(k, v[0], v[1]) for k, v in stage.items()]
        return max(now, key=lambda x: x[1])[2]

    def _is_known(self, w: str) -> bool:
        known = self._known.get(w)
        if known is None:
            uni = self._model.uni
            known = any(uni.freq((w, s)) != 0 for s in self._status)
            self._known[w] = known
        return known

    def _lp(self, s1: Any, s2: Any, s3: Any) -> float:
        key = (s1, s2, s3)
        value = self._log_prob.get(key)
        if value is None:
            value = self._model.log_prob(s1, s2, s3)
            if len(self._log_prob) >= 4 * _CACHE_LIMIT:
                self._log_prob.clear()
            self._log_prob[key] = value
        return value

    # --- classification: snownlp.classification.bayes.Bayes.classify ----------------

    def _classify(self, words: list[str]) -> float:
        tmp: dict[str, float] = {}
        for k in self._classes:
            logs = self._word_log[k]
            total = self._prior[k]
            for word in words:
                value = logs.get(word)
                if value is None:
                    value = math.log(self._bayes.d[k].freq(word))
                    logs[word] = value
                total += value
            tmp[k] = total
        ret, prob = "", 0.0
        for k in self._classes:
            now = 0.0
            try:
                for other in self._classes:
                    now += math.exp(tmp[other] - tmp[k])
                now = 1 / now
            except OverflowError:
                now = 0
            if now > prob:
                ret, prob = k, now
        return prob if ret == "pos" else 1 - prob


def _join(tagged: Any) -> Any:
    """``snownlp.seg.seg.Seg.seg``: characters with b/m/e/s tags → words."""
    tmp = ""
    for char, tag in tagged:
        if tag == "e":
            yield tmp + char
            tmp = ""
        elif tag in ("b", "s"):
            if tmp:
                yield tmp
            tmp = char
        else:
            tmp += char
    if tmp:
        yield tmp


_INSTANCE: FastSentiment | None = None


def sentiments(text: str) -> float:
    """``SnowNLP(text).sentiments``, from one shared :class:`FastSentiment`."""
    global _INSTANCE  # one model per process, loaded on first use
    if _INSTANCE is None:
        _INSTANCE = FastSentiment()
    return _INSTANCE(text)
