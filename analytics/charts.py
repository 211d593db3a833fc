"""Pictures for posts: the weekly chart of messages and active members per day.

Pure: numbers in, PNG bytes out (matplotlib's Agg backend, no display, no files). The
labels are ASCII so that no CJK font is needed on the server; WeCom robots take PNG up
to 2 MB, and this chart is some tens of kilobytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
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
