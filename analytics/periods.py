"""Reporting periods: half-open ``[start, end)`` ranges of local days in a time zone.

Pure: the anchor date and the zone are arguments; nothing here reads a clock.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAYS = re.compile(r"^(\d{1,4})d$")
PERIOD_HELP = "day, yesterday, week, last-week, month, last-month or Nd (e.g. 7d)"


class PeriodError(ValueError):
    """A period could not be understood."""


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``first`` .. ``last`` (inclusive) in ``zone``; ``kind`` names the shape."""

    kind: str
    first: date
    last: date
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def start(self) -> datetime:
        """The first instant of the period (aware, in the zone)."""
        return datetime.combine(self.first, time(), self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the period (aware, in the zone)."""
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone)

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same shape just before this one."""
        if self.kind == "month":
            last = self.first - timedelta(days=1)
            return Period("month", last.replace(day=1), last, self.zone)
        length = timedelta(days=self.days)
        return Period(self.kind, self.first - length, self.last - length, self.zone)

    def dates(self) -> list[date]:
        """Every local day of the period, in order."""
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


def resolve_period(spec: str, anchor: date, zone: ZoneInfo) -> Period:
    """Turn a period word into local days around ``anchor``.

    Args:
        spec: ``day``, ``yesterday``, ``week`` (Monday start), ``last-week``, ``month``,
            ``last-month`` or ``Nd`` (the N days ending with ``anchor``).
        anchor: the local date the period is about ("today" unless ``--date`` says else).
        zone: the time zone the days are counted in.

    Raises:
        PeriodError: ``spec`` is none of these; the message lists what is accepted.
    """
    word = spec.strip().lower()
    if word in ("day", "today"):
        return Period("day", anchor, anchor, zone)
    if word == "yesterday":
        day = anchor - timedelta(days=1)
        return Period("day", day, day, zone)
    if word in ("week", "last-week"):
        monday = anchor - timedelta(days=anchor.weekday())
        if word == "last-week":
            monday -= timedelta(days=7)
        return Period("week", monday, monday + timedelta(days=6), zone)
    if word in ("month", "last-month"):
        first = anchor.replace(day=1)
        if word == "last-month":
            first = (first - timedelta(days=1)).replace(day=1)
        next_first = (first + timedelta(days=32)).replace(day=1)
        return Period("month", first, next_first - timedelta(days=1), zone)
    match = _DAYS.match(word)
    if match:
        count = int(match.group(1))
        if count < 1:
            raise PeriodError(f"period {spec!r}: N must be at least 1")
        return Period(f"{count}d", anchor - timedelta(days=count - 1), anchor, zone)
    raise PeriodError(f"unknown period {spec!r}; use {PERIOD_HELP}")


def explicit_period(first: date, last: date, zone: ZoneInfo) -> Period:
    """The local days ``first`` .. ``last``, both included (``--from`` / ``--to``)."""
    return Period("range", first, last, zone)


@dataclass(frozen=True, slots=True)
class OffsetSegment:
    """From ``since`` (UTC, None = the beginning) on, local time is UTC + ``seconds``."""

    since: datetime | None
    seconds: int


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[OffsetSegment]:
    """Describe the zone's UTC offset over ``[start, end)`` as constant segments.

    The database turns stored UTC times into local ones with these, so that a period
    crossing a daylight-saving change buckets every message into its true local hour.
    Answers are remembered: a report asks for the same ranges many times, and the daily
    jobs ask again for every group.
    """
    return list(_offset_segments(zone, start.astimezone(UTC), end.astimezone(UTC)))


@functools.lru_cache(maxsize=1024)
def _offset_segments(
    zone: ZoneInfo, start_utc: datetime, end_utc: datetime
) -> tuple[OffsetSegment, ...]:
    def offset_at(instant: datetime) -> int:
        delta = instant.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    segments = [OffsetSegment(None, offset_at(start_utc))]
    cursor = start_utc
    step = timedelta(hours=1)
    while cursor < end_utc:
        following = min(cursor + step, end_utc)
        if offset_at(following) != segments[-1].seconds:
            low, high = cursor, following  # bisect the change to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset_at(middle) == segments[-1].seconds:
                    low = middle
                else:
                    high = middle
            segments.append(OffsetSegment(high.replace(microsecond=0), offset_at(high)))
        cursor = following
    return tuple(segments)
