"""Periods are half-open local days; weeks start on Monday."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from analytics.periods import PeriodError, explicit_period, offset_segments, resolve_period

SHANGHAI = ZoneInfo("Asia/Shanghai")
ANCHOR = date(2026, 11, 25)  # a Wednesday


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("day", date(2026, 11, 25), date(2026, 11, 25)),
        ("yesterday", date(2026, 11, 24), date(2026, 11, 24)),
        ("week", date(2026, 11, 23), date(2026, 11, 29)),
        ("last-week", date(2026, 11, 16), date(2026, 11, 22)),
        ("month", date(2026, 11, 1), date(2026, 11, 30)),
        ("last-month", date(2026, 10, 1), date(2026, 10, 31)),
        ("7d", date(2026, 11, 19), date(2026, 11, 25)),
        ("1d", date(2026, 11, 25), date(2026, 11, 25)),
    ],
)
def test_period_words(spec: str, first: date, last: date) -> None:
    period = resolve_period(spec, ANCHOR, SHANGHAI)
    assert (period.first, period.last) == (first, last)


def test_shanghai_day_starts_at_16_utc() -> None:
    period = resolve_period("day", ANCHOR, SHANGHAI)
    assert period.start_utc == datetime(2026, 11, 24, 16, tzinfo=UTC)
    assert period.end_utc == datetime(2026, 11, 25, 16, tzinfo=UTC)


def test_previous_periods() -> None:
    month = resolve_period("month", date(2026, 3, 10), SHANGHAI).previous()
    assert (month.first, month.last) == (date(2026, 2, 1), date(2026, 2, 28))
    week = resolve_period("week", ANCHOR, SHANGHAI).previous()
    assert (week.first, week.last) == (date(2026, 11, 16), date(2026, 11, 22))
    span = explicit_period(date(2026, 11, 1), date(2026, 11, 10), SHANGHAI).previous()
    assert (span.first, span.last) == (date(2026, 10, 22), date(2026, 10, 31))


def test_dst_week_is_one_hour_longer_and_has_two_offsets() -> None:
    zone = ZoneInfo("America/New_York")
    week = resolve_period("week", date(2026, 11, 1), zone)
    assert (week.end_utc - week.start_utc).total_seconds() == 7 * 24 * 3600 + 3600
    segments = offset_segments(zone, week.start_utc, week.end_utc)
    assert segments[1].since == datetime(2026, 11, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize("spec", ["fortnight", "0d", "-3d", ""])
def test_bad_period_words_are_refused(spec: str) -> None:
    with pytest.raises(PeriodError):
        resolve_period(spec, ANCHOR, SHANGHAI)
