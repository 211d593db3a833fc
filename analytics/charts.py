"""Pictures for posts: the weekly chart of messages and active members per day.

Pure: numbers in, PNG bytes out (matplotlib's Agg backend, no display, no files). Labels
are in the configured locale, drawn with the CJK font the install brings (no system font
needed); WeCom robots take PNG up to 2 MB, and this chart is some tens of kilobytes.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from analytics.labels import METRIC_NAMES, PART_NAMES, Locale

#: WeCom robot ``image``: JPG / PNG up to 2 MB.
MAX_IMAGE_BYTES = 2 * 1024 * 1024


class ChartTooLarge(ValueError):
    """The rendered picture is over the platform's limit."""


def render_weekly_chart(
    days: Sequence[date],
    messages: Sequence[int],
    active: Sequence[int],
    locale: Locale = "zh_CN",
) -> bytes:
    """A PNG: bars of messages per day and a line of active members per day.

    Raises:
        ValueError: the three sequences differ in length.
        ChartTooLarge: the PNG is over :data:`MAX_IMAGE_BYTES` (never seen in practice).
    """
    if not len(days) == len(messages) == len(active):
        raise ValueError("days, messages and active must have the same length")
    from matplotlib.figure import Figure

    labels = [_day_label(day, locale) for day in days]
    messages_name = METRIC_NAMES["messages"][locale]
    active_name = METRIC_NAMES["active_members"][locale]
    with _cjk_rc_context():
        figure = Figure(figsize=(8, 4), dpi=100)
        axes = figure.subplots()
        axes.bar(labels, messages, color="#4e79a7", label=messages_name)
        axes.set_ylabel(messages_name)
        second = axes.twinx()
        second.plot(labels, active, color="#f28e2b", marker="o", label=active_name)
        second.set_ylabel(active_name)
        second.set_ylim(bottom=0)
        axes.set_ylim(bottom=0)
        axes.set_title(f"{days[0].isoformat()} .. {days[-1].isoformat()}" if days else "")
        handles = axes.get_legend_handles_labels()[0] + second.get_legend_handles_labels()[0]
        axes.legend(handles=handles, loc="upper left", frameon=False)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    data = buffer.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise ChartTooLarge(f"chart is {len(data)} bytes, over the 2 MB limit")
    return data


def _day_label(day: date, locale: Locale) -> str:
    """``11-18 周三`` or ``11-18 Wed``."""
    if locale == "zh_CN":
        return f"{day:%m-%d} 周{PART_NAMES['weekdays']['zh_CN'][day.weekday()]}"
    return f"{day:%m-%d} {_WEEKDAYS_EN[day.weekday()]}"


_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _cjk_rc_context() -> Any:
    """matplotlib settings for one figure: the Agg backend and the bundled CJK font."""
    import matplotlib
    from matplotlib import font_manager

    matplotlib.use("Agg")
    _register_cjk_font(font_manager)
    return matplotlib.rc_context({"font.family": "Noto Sans CJK SC", "axes.unicode_minus": False})


@functools.cache
def _register_cjk_font(font_manager: Any) -> None:
    """Tell matplotlib about :func:`cjk_font_path` (a collection; it lists every face)."""
    font_manager.fontManager.addfont(cjk_font_path())


def cjk_font_path() -> str:
    """The CJK font the install brings (package ``noto-cjk-sans-otc``): no system font assumed.

    The file is a collection; Pillow (and so wordcloud) opens its first face, Noto Sans
    CJK JP, which holds every simplified Chinese glyph too (in Japanese forms where the
    regions differ).
    """
    import noto_cjk_sans_otc

    return str(noto_cjk_sans_otc.FONT_PATH)


def render_word_cloud(words: Mapping[str, int], *, width: int = 800, height: int = 400) -> bytes:
    """A PNG word cloud of ``words`` (word → count), Chinese included.

    The layout is searched on a canvas :data:`CLOUD_SCALE` times smaller and drawn at full
    size (wordcloud's ``scale``): far fewer pixels to search, the same crisp text. Font
    objects are loaded once per size and thread, and remember the text boxes they measured
    (:func:`_cached_fonts`); the PNG is compressed at a fast level: 10-40 ms a cloud
    instead of 330 ms, a few kilobytes larger.

    Raises:
        ValueError: ``words`` has no word with a positive count.
        ChartTooLarge: the PNG is over :data:`MAX_IMAGE_BYTES`.
    """
    frequencies = {word: count for word, count in words.items() if count > 0}
    if not frequencies:
        raise ValueError("a word cloud needs at least one word with a positive count")
    _cached_fonts()
    from wordcloud import WordCloud

    cloud = WordCloud(
        font_path=cjk_font_path(),
        width=max(1, width // CLOUD_SCALE),
        height=max(1, height // CLOUD_SCALE),
        scale=CLOUD_SCALE,
        background_color="white",
        max_words=100,
        random_state=7,  # the same words give the same picture
        prefer_horizontal=0.9,
        font_step=1,
        min_font_size=3,  # 12 px drawn: the smallest words stay legible
    ).generate_from_frequencies(frequencies)
    buffer = io.BytesIO()
    # A few dozen flat colours and their anti-aliased edges: 256 palette colours keep the
    # look, and a palette PNG is a third of the bytes and a fraction of the encoding time.
    image = cloud.to_image().quantize(colors=256, method=_fast_octree())
    image.save(buffer, format="PNG", compress_level=CLOUD_PNG_LEVEL)
    data = buffer.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise ChartTooLarge(f"word cloud is {len(data)} bytes, over the 2 MB limit")
    return data


#: The word cloud's layout canvas is this many times smaller than the picture.
CLOUD_SCALE = 4
#: zlib level of the word cloud's PNG: 1 is several times faster than ``optimize`` (9).
CLOUD_PNG_LEVEL = 1


class _FontCache:
    """Stands in for ``PIL.ImageFont`` inside wordcloud: one font object per (path, size).

    wordcloud opens the font file again for every word and every size it tries (about
    500 loads a cloud, most of its time). FreeType faces are not safe to share between
    threads, so each thread keeps its own.
    """

    def __init__(self, image_font: Any) -> None:
        self._image_font = image_font
        self._local = threading.local()

    def truetype(self, font: str, size: int = 10, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return self._image_font.truetype(font, size, *args, **kwargs)
        fonts = self._this_threads("fonts")
        key = (font, size)
        found = fonts.get(key)
        if found is None:
            # Chinese needs no shaping: the basic layout measures a third faster than raqm.
            found = fonts[key] = self._image_font.truetype(
                font, size, layout_engine=self._image_font.Layout.BASIC
            )
        return found

    def TransposedFont(self, font: Any, orientation: int | None = None) -> Any:
        """The font turned by ``orientation``, remembering the boxes it measured.

        wordcloud measures each word at each size it tries, cloud after cloud; a group's
        chat repeats its words, so most boxes were measured before. One per (font,
        orientation) and thread, like the fonts.
        """
        turned = self._this_threads("turned")
        key = (id(font), orientation)
        found = turned.get(key)
        if found is None:
            found = turned[key] = _measured(self._image_font)(font, orientation)
        return found

    def _this_threads(self, cache: str) -> dict[Any, Any]:
        """This thread's dictionary ``cache`` (made on first use)."""
        found: dict[Any, Any] | None = getattr(self._local, cache, None)
        if found is None:
            found = {}
            setattr(self._local, cache, found)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._image_font, name)


@functools.cache
def _measured(image_font: Any) -> Any:
    """A ``TransposedFont`` whose ``getbbox`` answers a repeated question from memory."""

    class MeasuredFont(image_font.TransposedFont):  # type: ignore[misc]
        def __init__(self, font: Any, orientation: int | None) -> None:
            super().__init__(font, orientation)
            self._boxes: dict[tuple[Any, ...], Any] = {}

        def getbbox(self, text: Any, *args: Any, **kwargs: Any) -> Any:
            key = (text, *args, *sorted(kwargs.items()))
            box = self._boxes.get(key)
            if box is None:
                box = self._boxes[key] = super().getbbox(text, *args, **kwargs)
            return box

    return MeasuredFont


def _fast_octree() -> Any:
    from PIL import Image

    return Image.Quantize.FASTOCTREE


@functools.cache
def _cached_fonts() -> None:
    """Give wordcloud's module the caching font loader (once per process)."""
    import wordcloud.wordcloud as module

    module.ImageFont = _FontCache(module.ImageFont)


def warm_word_cloud() -> None:
    """Import wordcloud and load the font sizes a typical cloud uses (on this thread)."""
    render_word_cloud({word: 60 - 2 * rank for rank, word in enumerate(_WARM_WORDS)})


_WARM_WORDS = (
    "今天",
    "大家",
    "活动",
    "老师",
    "课程",
    "打卡",
    "分享",
    "学习",
    "问题",
    "谢谢",
    "时间",
    "明天",
    "一起",
    "加油",
    "报名",
    "价格",
    "优惠",
    "团购",
    "发货",
    "快递",
    "质量",
    "推荐",
    "朋友",
    "孩子",
    "早上",
    "晚上",
    "作业",
    "链接",
    "红包",
    "群里",
)


def top_words_counts(value: object) -> dict[str, int]:
    """Read ``top_words`` from a stats document (``[{"word", "count"}]`` or pairs)."""
    counts: dict[str, int] = {}
    if isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            if isinstance(item, Mapping) and "word" in item:
                word, count = item["word"], item.get("count")
            elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) >= 2:
                word, count = item[0], item[1]
            else:
                continue
            if isinstance(word, str) and isinstance(count, int):
                counts[word] = count
    return counts
