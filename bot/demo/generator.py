"""A deterministic sample community: three groups on three platforms, realistic enough
that every metric, post and alert has something to show.

The generator behaves like a platform: it yields the same platform-neutral events
(:mod:`bot.events`) that real callbacks produce, in time order, so everything downstream
runs unchanged. The same seed always gives the same community. ``bench/`` uses it with a
larger size to build its datasets.

Shape of the data:
- activity follows a power law (Zipf weights: a few members write most messages);
- each group has its own rhythm: customers chat in the evening, staff in office hours
  and not at weekends, runners in the early morning and at weekends;
- members join over time; an announcement on one day is followed by a spike of leaves;
- check-ins (打卡), product names, links and emoji codes exercise the text filters;
- a few angry customers write messages that should raise alerts;
- paying customers have orders (:class:`SampleOrder`) for the business metrics.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.demo import words
from bot.events import (
    Chat,
    ChatId,
    Event,
    MembershipEvent,
    MessageEvent,
    Person,
    PlatformName,
    Source,
    UserId,
)


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """One sample group and its character."""

    platform: PlatformName
    chat_id: str
    name: str
    theme: str
    source: Source
    #: Relative message volume by local hour 0..23.
    hours: tuple[float, ...]
    #: Relative volume Monday..Sunday.
    weekdays: tuple[float, ...]


_EVENING = (1, 0.5, 0.2, 0.1, 0.1, 0.2, 0.5, 1, 2, 3, 3, 3, 4, 3, 3, 3, 3, 4, 5, 6, 8, 9, 7, 3)
_OFFICE = (0, 0, 0, 0, 0, 0, 0.2, 0.5, 3, 8, 9, 8, 3, 4, 8, 9, 8, 6, 3, 1, 0.5, 0.3, 0.1, 0)
_MORNING = (0.2, 0, 0, 0, 0.5, 3, 8, 7, 4, 2, 1, 1, 2, 1, 1, 1, 1, 2, 3, 5, 6, 4, 2, 1)

GROUPS = (
    GroupPlan(
        "wecom",
        "wrkDemoVIPGroup",
        "VIP 用户群",
        "customer",
        "full",
        _EVENING,
        (1, 1, 1, 1, 1.2, 1.4, 1.3),
    ),
    GroupPlan(
        "dingtalk",
        "cidDemoStaffGroup==",
        "产品研发群",
        "staff",
        "at_mentions_only",
        _OFFICE,
        (1.1, 1, 1, 1, 0.9, 0.1, 0.05),
    ),
    GroupPlan(
        "feishu",
        "oc_demo_runners",
        "跑步爱好者",
        "interest",
        "full",
        _MORNING,
        (0.8, 0.7, 0.8, 0.7, 0.8, 1.6, 1.8),
    ),
)


@dataclass(frozen=True, slots=True)
class SampleOrder:
    """A paid order of a sample customer (amounts in fen)."""

    platform: PlatformName
    order_id: str
    user_id: str
    amount_fen: int
    cost_fen: int
    status: str
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class SampleMember:
    platform: PlatformName
    user_id: str
    name: str
    weight: float
    joined_at: datetime
    #: An angry customer writes some negative messages.
    angry: bool = False


@dataclass
class Community:
    """What was generated: groups, members per group, and the orders."""

    groups: tuple[GroupPlan, ...]
    members: dict[str, list[SampleMember]] = field(default_factory=dict)
    orders: list[SampleOrder] = field(default_factory=list)
    operators: dict[str, list[str]] = field(default_factory=dict)
    announcement_day: date | None = None


@dataclass(frozen=True, slots=True)
class DemoSize:
    """How big a community to make."""

    groups: int = 3
    members: int = 300
    days: int = 30
    #: Average messages per member per day in a group (the power law spreads them).
    messages_per_member_day: float = 0.6


def generate(
    seed: int, size: DemoSize, last_day: date, zone: ZoneInfo
) -> tuple[Community, Iterator[Event]]:
    """Make a community whose history ends with ``last_day`` (local), deterministically.

    Returns the community's description and an iterator over its events in time order
    (messages and membership changes), which the caller stores like callbacks.
    """
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    plans = tuple(_plan(index) for index in range(size.groups))
    first_day = last_day - timedelta(days=size.days - 1)
    community = Community(plans, announcement_day=first_day + timedelta(days=(2 * size.days) // 3))
    streams = []
    for plan in plans:
        members = _members(rng, plan, size, first_day, zone)
        community.members[plan.chat_id] = members
        community.operators[plan.chat_id] = [members[0].user_id]
        if plan.theme == "customer":
            community.orders.extend(_orders(rng, plan, members, first_day, last_day, zone))
        streams.append(
            _group_events(rng, plan, members, size, first_day, last_day, zone, community)
        )
    events = sorted(itertools.chain.from_iterable(streams), key=_event_time)
    return community, iter(events)


def _event_time(event: Event) -> datetime:
    return event.sent_at if isinstance(event, MessageEvent) else event.occurred_at


def _plan(index: int) -> GroupPlan:
    base = GROUPS[index % len(GROUPS)]
    if index < len(GROUPS):
        return base
    number = index // len(GROUPS) + 1
    return GroupPlan(
        base.platform,
        f"{base.chat_id}{number}",
        f"{base.name} {number}",
        base.theme,
        base.source,
        base.hours,
        base.weekdays,
    )


def _name(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(words.NICKNAMES) + str(rng.randint(1, 99))
    given = rng.choice(words.GIVEN) + (rng.choice(words.GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(words.SURNAMES) + given


def _members(
    rng: random.Random, plan: GroupPlan, size: DemoSize, first_day: date, zone: ZoneInfo
) -> list[SampleMember]:
    members = []
    start = datetime.combine(first_day, time(9), zone)
    for rank in range(1, size.members + 1):
        # 70% were there before the window; the rest join during it.
        joined = (
            start - timedelta(days=rng.randint(1, 90))
            if rng.random() < 0.7
            else start + timedelta(days=rng.uniform(0, size.days - 1), hours=rng.uniform(0, 12))
        )
        members.append(
            SampleMember(
                plan.platform,
                f"{plan.platform[:2]}{plan.chat_id[-4:]}u{rank:05d}",
                _name(rng),
                weight=1.0 / rank**1.1,  # Zipf: a few members write most messages
                joined_at=joined.astimezone(UTC),
                angry=plan.theme == "customer" and rank in (7, 23, 41),
            )
        )
    return members


def _group_events(
    rng: random.Random,
    plan: GroupPlan,
    members: list[SampleMember],
    size: DemoSize,
    first_day: date,
    last_day: date,
    zone: ZoneInfo,
    community: Community,
) -> Iterator[Event]:
    chat = Chat(ChatId(plan.chat_id), "group", plan.name)
    bot_id = f"demo-{plan.platform}"
    counter = itertools.count(1)
    left: dict[str, datetime] = {}
    for member in members:
        yield _membership(plan, bot_id, chat, member, "join", member.joined_at)
    announcement = community.announcement_day
    if plan.theme == "customer" and announcement is not None:
        # After the price announcement a wave of members leaves, a few are removed.
        at = datetime.combine(announcement, time(20, 5), zone).astimezone(UTC)
        yield _message(
            plan, bot_id, chat, members[0], next(counter), at, _fill(rng, words.ANNOUNCEMENT)
        )
        leavers = rng.sample(members[len(members) // 3 :], k=max(3, len(members) // 25))
        for index, member in enumerate(leavers):
            when = at + timedelta(minutes=rng.uniform(5, 36 * 60))
            change = "removed" if index % 5 == 4 else "leave"
            if change == "leave" and rng.random() < 0.5:
                grumble = rng.choice(words.LEAVE_GRUMBLE)
                yield _message(plan, bot_id, chat, member, next(counter), when, grumble)
                when += timedelta(minutes=1)
            left[member.user_id] = when
            yield _membership(plan, bot_id, chat, member, change, when)
    weights = [m.weight for m in members]
    daily = size.messages_per_member_day * len(members)
    for offset in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=offset)
        volume = int(daily * plan.weekdays[day.weekday()] * rng.uniform(0.8, 1.2))
        hours = rng.choices(range(24), weights=plan.hours, k=volume)
        senders = rng.choices(members, weights=weights, k=volume)
        for hour, member in zip(sorted(hours), senders, strict=True):
            at = datetime.combine(day, time(hour), zone) + timedelta(seconds=rng.randrange(3600))
            at_utc = at.astimezone(UTC)
            if at_utc < member.joined_at or at_utc >= left.get(member.user_id, _FAR_FUTURE):
                continue
            yield _message(
                plan, bot_id, chat, member, next(counter), at_utc, _text(rng, plan, member)
            )


_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def _text(rng: random.Random, plan: GroupPlan, member: SampleMember) -> str:
    if member.angry and rng.random() < 0.35:
        return _fill(rng, rng.choice(words.ANGRY))
    if plan.theme == "interest" and rng.random() < 0.25:
        return _fill(rng, rng.choice(words.CHECKIN))
    return _fill(rng, rng.choice(words.CHATTER[plan.theme]))


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        p=rng.choice(words.PRODUCTS),
        e=rng.choice(words.EMOJI_CODES) if rng.random() < 0.6 else "",
        link=rng.choice(words.LINKS),
        n=rng.randint(1, 60),
        k=rng.choice((3, 5, 8, 10, 21)),
    )


def _message(
    plan: GroupPlan,
    bot_id: str,
    chat: Chat,
    member: SampleMember,
    number: int,
    at: datetime,
    text: str,
) -> MessageEvent:
    return MessageEvent(
        platform=plan.platform,
        bot_id=bot_id,
        message_id=f"demo-{plan.chat_id}-{number}",
        chat=chat,
        sender=Person(UserId(member.user_id), member.name),
        msg_type="text",
        text=text,
        sent_at=at,
        source=plan.source,
    )


def _membership(
    plan: GroupPlan, bot_id: str, chat: Chat, member: SampleMember, change: str, at: datetime
) -> MembershipEvent:
    return MembershipEvent(
        platform=plan.platform,
        bot_id=bot_id,
        event_id=f"demo-{plan.chat_id}-{change}-{member.user_id}-{int(at.timestamp())}",
        chat=chat,
        change=change,  # type: ignore[arg-type]
        members=(Person(UserId(member.user_id), member.name),),
        occurred_at=at,
    )


def _orders(
    rng: random.Random,
    plan: GroupPlan,
    members: list[SampleMember],
    first_day: date,
    last_day: date,
    zone: ZoneInfo,
) -> Iterator[SampleOrder]:
    buyers = [m for m in members if rng.random() < 0.12]
    days = (last_day - first_day).days + 1
    for number, member in enumerate(buyers, start=1):
        for repeat in range(1 + (rng.random() < 0.3)):
            day = first_day + timedelta(days=rng.randrange(days))
            paid = datetime.combine(day, time(rng.randint(9, 22), rng.randrange(60)), zone)
            amount = rng.choice((9900, 19900, 29900, 59900, 129900))
            yield SampleOrder(
                plan.platform,
                f"DEMO{plan.chat_id[-4:]}{number:05d}{repeat}",
                member.user_id,
                amount_fen=amount,
                cost_fen=int(amount * rng.uniform(0.4, 0.7)),
                status="completed" if rng.random() < 0.9 else "refunded",
                paid_at=paid.astimezone(UTC),
            )
