"""A plain word count for ``/words``, used until the ``top_words`` metric is in the catalogue.

jieba segmentation; tokens of one character, numbers, URLs and common function words
are dropped. Pure: texts in, ranked (word, count) pairs out.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\S+")
_WORDLIKE = re.compile(r"^[\w\u4e00-\u9fff]+$")
_NUMBER = re.compile(r"^[\d.,%]+$")
#: Frequent words that say nothing about a topic.
_STOP_LIST = """
我们 你们 他们 她们 它们 这个 那个 这些 那些 什么 怎么 怎么样 为什么 可以 没有 还是
就是 不是 一个 一下 一些 已经 因为 所以 但是 如果 然后 还有 现在 时候 自己 大家 这样
那样 知道 觉得 应该 可能 哈哈 哈哈哈 谢谢 好的 收到 嗯嗯 的话 的是 一直 非常 比较
the and for you are with this that have not but was were will can just what about
"""
STOP_WORDS = frozenset(_STOP_LIST.split())


def count_words(texts: Iterable[str], limit: int) -> list[tuple[str, int]]:
    """The ``limit`` most frequent words of ``texts``, ties in first-seen order."""
    import jieba  # imported here: loading its dictionary takes a second

    jieba.setLogLevel(logging.WARNING)
    counts: Counter[str] = Counter()
    for message in texts:
        cleaned = _MENTION.sub(" ", _URL.sub(" ", message))
        for token in jieba.lcut(cleaned):
            word = token.strip().lower()
            if (
                len(word) < 2
                or word in STOP_WORDS
                or _NUMBER.match(word)
                or not _WORDLIKE.match(word)
            ):
                continue
            counts[word] += 1
    return counts.most_common(limit)
