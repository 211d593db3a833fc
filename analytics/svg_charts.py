"""SVG charts drawn on the server for the dashboard: no JavaScript, no CDN, no inline script.

The dashboard shows these inline, so a page needs no JavaScript and nothing from the
internet, and the Content-Security-Policy can forbid scripts altogether. Colours and
sizes are SVG presentation attributes (never ``style=""``, which that policy blocks).
Every text is XML-escaped here: names and words come from chat members.

Pure functions: no database, no clock. Each chart scales to its container's width
through its ``viewBox``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

#: A palette that stays apart for the colour-blind (Okabe–Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")


@dataclass(frozen=True, slots=True)
class Series:
    """One line (or bar colour) of a chart."""

    name: str
    values: tuple[float, ...]
    colour: str = PALETTE[0]


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" aria-label={quoteattr(label)}>'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k not below ``value`` (an axis maximum)."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop above always returns


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _tick_labels(labels: Sequence[str], every: int) -> list[tuple[int, str]]:
    return [(i, label) for i, label in enumerate(labels) if i % every == 0]


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
) -> str:
    """Lines over days (or any ordered labels), with a y axis starting at zero.

    Args:
        labels: the x positions' names (``11-20``), one per value.
        series: the lines; each has one value per label.
        title: what the chart shows (the accessible name and the tooltip).
        width: the drawing's width in user units.
        height: its height.
    """
    left, right, top, bottom = 44, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max((v for s in series for v in s.values), default=0.0))
    count = max(len(labels), 1)
    step = plot_w / max(count - 1, 1)

    def x(i: int) -> float:
        return left + (i * step if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - (v / top_value) * plot_h

    body = _grid(left, top, plot_w, plot_h, top_value)
    for i, label in _tick_labels(labels, max(1, count // 8)):
        body.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="middle" fill="#555">{escape(label)}</text>'
        )
    for s in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        if len(s.values) > 1:
            body.append(
                f'<polyline class="series" points="{points}" fill="none" '
                f'stroke="{s.colour}" stroke-width="2" stroke-linejoin="round"/>'
            )
        for i, v in enumerate(s.values):
            body.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{s.colour}">'
                f"<title>{escape(labels[i] if i < len(labels) else '')} "
                f"{escape(s.name)}: {_number(v)}</title></circle>"
            )
    body += _legend(series, left, height - 10)
    return _svg(width, height, title, body)


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 640,
    height: int = 200,
) -> str:
    """Grouped vertical bars per label (joins and leaves per day)."""
    left, right, top, bottom = 44, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max((v for s in series for v in s.values), default=0.0))
    count = max(len(labels), 1)
    slot = plot_w / count
    bar = max(slot * 0.8 / max(len(series), 1), 1.0)
    body = _grid(left, top, plot_w, plot_h, top_value)
    for i, label in _tick_labels(labels, max(1, count // 8)):
        body.append(
            f'<text x="{left + slot * (i + 0.5):.1f}" y="{height - bottom + 16}" '
            f'font-size="11" text-anchor="middle" fill="#555">{escape(label)}</text>'
        )
    for k, s in enumerate(series):
        for i, v in enumerate(s.values):
            h = (v / top_value) * plot_h
            bx = left + slot * i + slot * 0.1 + bar * k
            body.append(
                f'<rect class="bar" x="{bx:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{s.colour}"><title>{escape(labels[i])} '
                f"{escape(s.name)}: {_number(v)}</title></rect>"
            )
    body += _legend(series, left, height - 10)
    return _svg(width, height, title, body)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float]],
    *,
    title: str,
    cell: int = 22,
) -> str:
    """A grid of cells shaded by value (weekday × hour of day).

    Args:
        rows: row names (Monday … Sunday).
        columns: column names (0 … 23).
        values: ``values[r][c]``; missing cells count as zero.
        title: what the chart shows.
        cell: the side of a cell in user units.
    """
    left, top = 40, 18
    width = left + cell * len(columns) + 4
    height = top + cell * len(rows) + 4
    peak = max((v for row in values for v in row), default=0.0) or 1.0
    body: list[str] = []
    for c, name in enumerate(columns):
        if c % 3 == 0:
            body.append(
                f'<text x="{left + cell * c + cell / 2:.1f}" y="{top - 5}" font-size="10" '
                f'text-anchor="middle" fill="#555">{escape(name)}</text>'
            )
    for r, name in enumerate(rows):
        body.append(
            f'<text x="{left - 6}" y="{top + cell * r + cell * 0.65:.1f}" font-size="11" '
            f'text-anchor="end" fill="#555">{escape(name)}</text>'
        )
        row = values[r] if r < len(values) else ()
        for c, col in enumerate(columns):
            v = float(row[c]) if c < len(row) else 0.0
            # Lightness from 97% (none) to 30% (the busiest cell).
            light = 97 - 67 * (v / peak)
            body.append(
                f'<rect class="cell" x="{left + cell * c}" y="{top + cell * r}" '
                f'width="{cell - 2}" height="{cell - 2}" rx="3" fill="hsl(205,70%,{light:.0f}%)">'
                f"<title>{escape(name)} {escape(col)}: {_number(v)}</title></rect>"
            )
    return _svg(width, height, title, body)


def horizontal_bars(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 480,
    colour: str = PALETTE[0],
) -> str:
    """One bar per named value, longest first as given (the message rank)."""
    row, left, right = 24, 120, 48
    height = max(row * len(items), row) + 8
    peak = max((v for _, v in items), default=0.0) or 1.0
    plot_w = width - left - right
    body: list[str] = []
    for i, (name, v) in enumerate(items):
        y = 4 + row * i
        w = max(plot_w * v / peak, 1.0)
        short = name if len(name) <= 12 else name[:11] + "…"
        body.append(
            f'<text x="{left - 6}" y="{y + 16}" font-size="12" text-anchor="end" '
            f'fill="#333">{escape(short)}</text>'
            f'<rect class="bar" x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
            f'rx="2" fill="{colour}"><title>{escape(name)}: {_number(v)}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + 16}" font-size="12" fill="#333">'
            f"{_number(v)}</text>"
        )
    return _svg(width, height, title, body)


def word_cloud(words: Sequence[tuple[str, int]], *, title: str, width: int = 480) -> str:
    """Words sized by count, laid out in lines (a deterministic word cloud).

    Widths are estimated (a CJK character is about one em, a Latin letter about 0.6 em),
    which is enough to keep words from overlapping without measuring fonts.
    """
    if not words:
        return _svg(width, 40, title, [])
    peak = max(n for _, n in words) or 1
    low = min(n for _, n in words)
    spread = max(peak - low, 1)
    x = 8.0
    lines: list[list[tuple[str, int, float, float]]] = [[]]
    for text, n in words:
        size = 13 + 23 * (n - low) / spread
        estimated = sum(size if ord(ch) > 0x2E80 else size * 0.6 for ch in text) + 12
        if x + estimated > width - 8 and lines[-1]:
            x = 8.0
            lines.append([])
        lines[-1].append((text, n, x, size))
        x += estimated
    placed: list[str] = []
    y = 0.0
    for line in lines:
        y += max(size for *_, size in line) + 6
        for text, n, wx, size in line:
            colour = PALETTE[len(placed) % 3]
            placed.append(
                f'<text class="word" x="{wx:.1f}" y="{y:.1f}" font-size="{size:.0f}" '
                f'fill="{colour}">{escape(text)}<title>{escape(text)}: {n}</title></text>'
            )
    return _svg(width, int(y + 10), title, placed)


def _grid(left: int, top: int, plot_w: int, plot_h: int, top_value: float) -> list[str]:
    parts: list[str] = []
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="#e3e3e3" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#555">{_tick(value)}</text>'
        )
    return parts


def _tick(value: float) -> str:
    """An axis label: ``1.25``, ``2.5``, ``5``, never rounded to a wrong ``1.2``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _legend(series: Sequence[Series], left: int, y: int) -> list[str]:
    parts: list[str] = []
    x = left
    for s in series:
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{s.colour}"/>'
            f'<text x="{x + 14}" y="{y}" font-size="11" fill="#333">{escape(s.name)}</text>'
        )
        x += 24 + int(sum(11 if ord(ch) > 0x2E80 else 7 for ch in s.name))
    return parts
