"""Plain records that storage fills and analytics reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class MemberActivity:
    """One member's messages in a period (commands to the bot excluded)."""

    member_id: int
    user_id: str
    name: str | None
    opted_out: bool
    messages: int
    #: When the member sent their last message of the period, i.e. reached the count.
    last_at: datetime
    #: Distinct local days with a message (0 when not counted).
    active_days: int


@dataclass(frozen=True, slots=True)
class PeriodFacts:
    """What the database knows about one group in one period."""

    messages: int
    activity: tuple[MemberActivity, ...]
    joins: int
    leaves: int
    removed: int
    members_at_start: int
    members_at_end: int
    #: Member ids in the group at the end; when given, only they can be active members.
    member_ids_at_end: frozenset[int] | None = None
