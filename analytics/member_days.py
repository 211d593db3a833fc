"""Per-member day facts: the active streak /me shows."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta


def activity_streak(active_days: Collection[date], today: date) -> int:
    """Consecutive local days with a message, ending today (or yesterday).

    A streak is still alive in the morning before the member has spoken: if today has
    no message yet, it is counted up to yesterday.

    >>> from datetime import date
    >>> activity_streak({date(2026, 11, 23), date(2026, 11, 24)}, date(2026, 11, 25))
    2
    """
    day = today if today in active_days else today - timedelta(days=1)
    streak = 0
    while day in active_days:
        streak += 1
        day -= timedelta(days=1)
    return streak
