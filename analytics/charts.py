"""Pictures for posts: the weekly chart of messages and active members per day.

Pure: numbers in, PNG bytes out (matplotlib's Agg backend, no display, no files). The
labels are ASCII so that no CJK font is needed on the server; WeCom robots take PNG up
to 2 MB, and this chart is some tens of kilobytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

#: WeCom robot ``image``: JPG / PNG up to 2 MB.
MAX_IMAGE_BYTES = 2 * 1024 * 1024


class ChartTooLarge(ValueError):
    """The rendered picture is over the platform's limit."""


def render_weekly_chart(
    days: Sequence[date], messages: Sequence[int], active: Sequence[int]
) -> bytes:
    """A PNG: bars of messages per day and a line of active members per day.

    Raises:
        ValueError: the three sequences differ in length.
        ChartTooLarge: the PNG is over :data:`MAX_IMAGE_BYTES` (never seen in practice).
    """
    if not len(days) == len(messages) == len(active):
        raise ValueError("days, messages and active must have the same length")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    axes = figure.subplots()
    labels = [day.strftime("%m-%d %a") for day in days]
    axes.bar(labels, messages, color="#4e79a7", label="messages")
    axes.set_ylabel("messages")
    second = axes.twinx()
    second.plot(labels, active, color="#f28e2b", marker="o", label="active members")
    second.set_ylabel("active members")
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

    Raises:
        ValueError: ``words`` has no word with a positive count.
        ChartTooLarge: the PNG is over :data:`MAX_IMAGE_BYTES`.
    """
    frequencies = {word: count for word, count in words.items() if count > 0}
    if not frequencies:
        raise ValueError("a word cloud needs at least one word with a positive count")
    from wordcloud import WordCloud

    cloud = WordCloud(
        font_path=cjk_font_path(),
        width=width,
        height=height,
        background_color="white",
        max_words=100,
        random_state=7,  # the same words give the same picture
        prefer_horizontal=0.9,
    ).generate_from_frequencies(frequencies)
    buffer = io.BytesIO()
    cloud.to_image().save(buffer, format="PNG", optimize=True)
    data = buffer.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise ChartTooLarge(f"word cloud is {len(data)} bytes, over the 2 MB limit")
    return data


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
