"""Chinese text analysis: jieba segmentation, stop words, top words, topics.

jieba is heavy to start (it loads its prefix dictionary, about half a second), so the
background scorer cuts every text once, as it scores it, and stores the cut in
``message.words``; reports count stored words (:func:`count_words`) and load jieba, once
per process and lazily, only for texts that have not been cut yet. Its dictionary cache
goes to ``text.cache_dir`` or the system temp directory, which must be writable.

What never becomes a word: one-character tokens, pure numbers (also ``12.5``, ``30%``),
URLs, WeCom/WeChat emoji codes such as ``[流泪]``, @-mentions, and the stop words of the
shipped Chinese and English lists plus ``text.stop_words``.
"""

from __future__ import annotations

import functools
import logging
import marshal
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
#: WeCom / WeChat emoji codes are a bracketed word: [微笑], [流泪], [Smile], [捂脸].
EMOJI_CODE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,8}\]")
#: An @-mention runs to the next space (WeCom ends it with U+2005, others with a space).
MENTION = re.compile(r"@[^\s\u2005\u2006@]{1,32}")
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,:]\d+)*%?$")
_HAS_WORD_CHAR = re.compile(r"[\u4e00-\u9fffA-Za-z]")


def clean(text: str) -> str:
    """Remove URLs, emoji codes and @-mentions: they are never words."""
    for pattern in (_URL, EMOJI_CODE, MENTION):
        text = pattern.sub(" ", text)
    return text


@functools.cache
def shipped_stop_words() -> frozenset[str]:
    """The Chinese and English stop words shipped in ``analytics/data``."""
    words: set[str] = set()
    for name in ("stopwords_zh.txt", "stopwords_en.txt"):
        content = resources.files("analytics").joinpath("data", name).read_text(encoding="utf-8")
        words.update(
            line.strip().lower() for line in content.splitlines() if line and line[0] != "#"
        )
    words.discard("")
    return frozenset(words)


@dataclass(frozen=True, slots=True)
class TextConfig:
    """What the segmenter needs from settings (``[text]``)."""

    stop_words: tuple[str, ...] = ()
    user_dict: str | None = None
    cache_dir: str | None = None


class Segmenter:
    """jieba with our filters; build one per process with :func:`segmenter`."""

    def __init__(self, config: TextConfig) -> None:
        import jieba

        tokenizer = jieba.Tokenizer()
        cache_dir = Path(config.cache_dir or tempfile.gettempdir())
        tokenizer.tmp_dir = str(cache_dir)
        tokenizer.cache_file = "qunpulse-jieba.cache"
        # jieba logs its progress at DEBUG through its own logger; keep it quiet.
        jieba.setLogLevel(30)
        tokenizer.initialize()
        if config.user_dict:
            tokenizer.load_userdict(config.user_dict)
        self._tokenizer: Any = tokenizer
        self.stop_words = stop_words(config)

    def words(self, text: str) -> list[str]:
        """The countable words of one text, in order."""
        return [w for w in self.cut(text) if w.lower() not in self.stop_words]

    @functools.lru_cache(maxsize=50_000)  # noqa: B019 - one Segmenter per process, kept forever
    def cut(self, text: str) -> tuple[str, ...]:
        """The text's word-like tokens, stop words still in: what ``message.words`` keeps.

        Identical texts are segmented once.
        """
        return tuple(
            token
            for token in (t.strip() for t in self._tokenizer.cut(clean(text)))
            if keep(token, frozenset())
        )

    def stored(self, text: str) -> str:
        """:meth:`cut` as ``message.words`` stores it (tokens never hold whitespace)."""
        return " ".join(self.cut(text))


def stop_words(config: TextConfig) -> frozenset[str]:
    """The shipped stop words and ``text.stop_words``, lower-cased."""
    return shipped_stop_words() | {w.lower() for w in config.stop_words}


def count_words(config: TextConfig, texts: Iterable[tuple[str, str | None]]) -> Counter[str]:
    """Count the words of ``(text, stored words or None)`` pairs.

    Stored words (``message.words``, cut by the background scorer) are only split and
    filtered by the stop words; jieba is loaded, and the text segmented, only for texts
    that have none yet. Either way a text yields the same words.
    """
    drop = stop_words(config)
    counts: Counter[str] = Counter()
    for text, stored in texts:
        tokens = stored.split() if stored is not None else segmenter(config).cut(text)
        counts.update(t for t in tokens if t.lower() not in drop)
    return counts


def keywords(
    counts: Counter[str], top: int, cache_dir: str | None = None
) -> list[tuple[str, float]]:
    """Automatic topic keywords: TF-IDF of the counted words (jieba's IDF table)."""
    total = sum(counts.values())
    if not total:
        return []
    idf, median = _idf_table(Path(cache_dir or tempfile.gettempdir()))
    weights = {w: n / total * idf.get(w, median) for w, n in counts.items()}
    ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:top]


IdfTable = tuple[dict[str, float], float]
_IDF: dict[Path, IdfTable] = {}


def _idf_table(cache_dir: Path) -> IdfTable:
    """jieba's IDF table (``jieba/analyse/idf.txt``) and its median, read once per process.

    Parsing the 270,000-line text costs about a quarter of a second; a marshal copy in
    ``cache_dir`` (rebuilt when jieba's file changes, as jieba does with its dictionary)
    loads several times faster, which ``qunpulse stats`` feels on every run.
    """
    found = _IDF.get(cache_dir)
    if found is not None:
        return found
    source = resources.files("jieba").joinpath("analyse", "idf.txt")
    with resources.as_file(source) as path:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        cache = cache_dir / "qunpulse-idf.cache"
        table = _cached_idf(cache, stamp)
        if table is None:
            table = _parse_idf(path.read_text("utf-8"))
            _write_cache(cache, marshal.dumps((stamp, table)))
    _IDF[cache_dir] = table
    return table


def _parse_idf(content: str) -> IdfTable:
    table: dict[str, float] = {}
    for line in content.splitlines():
        word, _, value = line.strip().partition(" ")
        if word and value:
            table[word] = float(value)
    values = sorted(table.values())
    return table, values[len(values) // 2] if values else 1.0


def _cached_idf(cache: Path, stamp: tuple[int, int]) -> IdfTable | None:
    try:
        # Our own cache file beside jieba's (which jieba also reads with marshal): data only.
        saved_stamp, table = marshal.loads(cache.read_bytes())  # noqa: S302
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return table if tuple(saved_stamp) == stamp else None


def _write_cache(cache: Path, data: bytes) -> None:
    """Write ``cache`` atomically; a cache that cannot be written only costs speed."""
    try:
        with tempfile.NamedTemporaryFile(dir=cache.parent, delete=False) as out:
            out.write(data)
        os.replace(out.name, cache)
    except OSError:
        log.debug("cannot write %s; the IDF table will be parsed again next time", cache)


def keep(token: str, stop_words: frozenset[str]) -> bool:
    """Whether a token counts as a word."""
    return (
        len(token) > 1
        and _NUMBER.match(token) is None
        and _HAS_WORD_CHAR.search(token) is not None
        and token.lower() not in stop_words
    )


_LOCK = threading.Lock()
_SEGMENTERS: dict[TextConfig, Segmenter] = {}


def segmenter(config: TextConfig) -> Segmenter:
    """The process's segmenter for ``config``, built on first use (thread-safe)."""
    with _LOCK:
        found = _SEGMENTERS.get(config)
        if found is None:
            found = _SEGMENTERS[config] = Segmenter(config)
        return found


def top_words(counts: Counter[str], top: int) -> list[tuple[str, int]]:
    """内容高频词: words by count, descending; ties alphabetical, so output is stable."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
