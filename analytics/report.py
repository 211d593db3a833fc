"""Turn metrics into text people read: numbers formatted, rows labelled, per locale."""

from __future__ import annotations

from collections.abc import Mapping

from analytics.labels import Locale, metric_name
from analytics.metrics import Change

#: Metrics that are fractions and read best as percentages.
RATES = frozenset(
    {
        "activity_rate",
        "leave_rate",
        "participation_rate",
        "conversion_rate",
        "profit_margin",
        "retention_d1",
        "retention_d7",
        "retention_d30",
    }
)
#: Money in yuan: always two decimals.
MONEY = frozenset({"gmv", "profit", "aov"})


def format_value(metric_id: str, value: float | int | None) -> str:
    """Format one metric value for people: ``12.5%``, ``1.2万``, ``3.4``, or ``–``."""
    if value is None:
        return "–"
    if metric_id in RATES:
        return f"{value * 100:.1f}%"
    if metric_id in MONEY:
        return f"{value:,.2f}"
    if isinstance(value, int) or float(value).is_integer():
        return format_count(int(value))
    return f"{value:.2f}"


def format_count(count: int) -> str:
    if abs(count) >= 10_000:
        return f"{count / 10_000:.1f}万"
    return str(count)


def format_delta(metric_id: str, change: Change) -> str:
    """``+3``, ``−2``, ``+1.5pp`` for rates; ``–`` when there is nothing to compare."""
    delta = change.delta
    if delta is None:
        return "–"
    if metric_id in RATES:
        points = delta * 100
        return "0" if points == 0 else f"{'+' if points > 0 else '−'}{abs(points):.1f}pp"
    if delta == 0:
        return "0"
    sign = "+" if delta > 0 else "−"
    shown = format_value(metric_id, abs(delta))
    return f"{sign}{shown}"


def metric_rows(metrics: Mapping[str, Change], locale: Locale) -> list[tuple[str, str, str, str]]:
    """Rows of (name, value, previous, change) for a metrics table."""
    return [
        (
            metric_name(metric_id, locale),
            format_value(metric_id, change.value),
            format_value(metric_id, change.previous),
            format_delta(metric_id, change),
        )
        for metric_id, change in metrics.items()
    ]
