"""Alerts: stored first (with their outbox posts, in one transaction), then sent.

Three guards keep operators from hearing the same thing twice, all in the database so
that a second process or a restart cannot repeat an alert:

- ``alert.dedupe_key`` is unique: a message alerts once however often it is scored;
- ``alert_cooldown`` holds, per (group, kind, subject), the time before which that
  alert may not be raised again; it is claimed with one conditional UPDATE (or one
  INSERT the primary key lets only one process win) in the same transaction;
- the outbox's unique (group, job, period) key, with the alert id as the period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from storage.models import Alert, AlertCooldown, ChatGroup, Member, Message, OutboxPost
from storage.upsert import insert_for

_ALERT = Alert.__table__  # type: ignore[attr-defined]
_COOLDOWN = AlertCooldown.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxPost.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP = ChatGroup.__table__  # type: ignore[attr-defined]

#: Outbox jobs that carry alerts: private messages, and the operators' group webhook.
ALERT_JOBS = ("alert", "alert_webhook")
STATES = ("pending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox post of an alert: where it goes (an outbox target name)."""

    job: str
    platform: str
    target: str
    #: Distinguishes several posts of one job (one per Feishu recipient).
    part: str = ""


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to store, with what keeps it from repeating."""

    group_id: int
    group_key: str
    kind: str
    dedupe_key: str
    #: ``""`` for group-wide kinds (burst, spikes), the sender's member id otherwise.
    cooldown_subject: str
    title: str
    summary: str
    member_id: int | None = None
    message_id: int | None = None
    member_ids: tuple[int, ...] = ()
    sender_user_id: str | None = None
    sender_name: str | None = None
    text: str | None = None
    score: float | None = None
    keyword: str | None = None
    message_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Raised:
    """What :meth:`AlertStore.raise_alert` did."""

    alert_id: int | None
    #: ``None`` when stored; ``duplicate`` or ``cooldown`` when nothing was stored.
    skipped: str | None = None
    outbox_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MessageContext:
    """A scored message with its group and sender, as an alert shows them."""

    message_id: int
    group_id: int
    platform: str
    chat_id: str
    group_name: str | None
    member_id: int
    user_id: str
    display_name: str | None
    is_bot: bool
    text: str
    sentiment: float | None
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    group_id: int
    platform: str
    chat_id: str
    kind: str
    sender_user_id: str | None
    sender_name: str | None
    text: str | None
    score: float | None
    keyword: str | None
    summary: str
    message_at: datetime | None
    raised_at: datetime
    state: str
    error: str | None


def _context_query() -> Select[Any]:
    return (
        select(
            _MESSAGE.c.id,
            _MESSAGE.c.group_id,
            _GROUP.c.platform,
            _GROUP.c.chat_id,
            _GROUP.c.name,
            _MESSAGE.c.member_id,
            _MEMBER.c.user_id,
            _MEMBER.c.display_name,
            _MEMBER.c.is_bot,
            _MESSAGE.c.text,
            _MESSAGE.c.sentiment,
            _MESSAGE.c.sent_at,
        )
        .join(_GROUP, _GROUP.c.id == _MESSAGE.c.group_id)
        .join(_MEMBER, _MEMBER.c.id == _MESSAGE.c.member_id)
    )


def _context(row: object) -> MessageContext:
    return MessageContext(*row)  # type: ignore[misc]


class AlertStore:
    """Repository of alerts and their cooldowns."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def contexts(self, message_ids: Sequence[int]) -> dict[int, MessageContext]:
        """Group and sender of each message (recalled ones are left out)."""
        if not message_ids:
            return {}
        query = _context_query().where(
            _MESSAGE.c.id.in_(list(message_ids)), _MESSAGE.c.recalled_at.is_(None)
        )
        with self._engine.connect() as connection:
            return {row[0]: _context(row) for row in connection.execute(query)}

    def negatives_up_to(
        self, group_id: int, since: datetime, message: MessageContext, threshold: float
    ) -> list[MessageContext]:
        """Negative conversation messages of the group from ``since`` up to ``message``.

        Only messages stored no later than ``message`` count (its id bounds them), so a
        batch gives the same answer whether its messages are scored together or apart.
        """
        query = (
            _context_query()
            .where(
                _MESSAGE.c.group_id == group_id,
                _MESSAGE.c.sent_at >= since,
                _MESSAGE.c.sent_at <= message.sent_at,
                _MESSAGE.c.id <= message.message_id,
                _MESSAGE.c.sentiment <= threshold,
                _MESSAGE.c.is_command.is_(False),
                _MESSAGE.c.recalled_at.is_(None),
                _MEMBER.c.is_bot.is_(False),
            )
            .order_by(_MESSAGE.c.sent_at, _MESSAGE.c.id)
        )
        with self._engine.connect() as connection:
            return [_context(row) for row in connection.execute(query)]

    def raise_alert(
        self,
        alert: NewAlert,
        deliveries: Sequence[Delivery],
        now: datetime,
        cooldown: timedelta,
        *,
        undeliverable: str | None = None,
    ) -> Raised:
        """Store ``alert`` and queue its posts, unless it is a duplicate or cooling down.

        Everything happens in one transaction: the alert, the cooldown claim and the
        outbox posts are all stored, or none is.

        Args:
            undeliverable: why the alert cannot be sent (no operator configured); it is
                stored ``failed`` with this reason when ``deliveries`` is empty.
        """
        with self._engine.connect() as connection, connection.begin() as transaction:
            state = "pending" if deliveries else "failed"
            row = connection.execute(
                insert_for(connection, _ALERT)
                .values(
                    group_id=alert.group_id,
                    kind=alert.kind,
                    dedupe_key=alert.dedupe_key,
                    member_id=alert.member_id,
                    message_id=alert.message_id,
                    member_ids="".join(f",{m}" for m in alert.member_ids) + ","
                    if alert.member_ids
                    else "",
                    sender_user_id=alert.sender_user_id,
                    sender_name=alert.sender_name,
                    text=alert.text,
                    score=alert.score,
                    keyword=alert.keyword,
                    summary=alert.summary,
                    message_at=alert.message_at,
                    raised_at=now,
                    state=state,
                    error=None if deliveries else undeliverable,
                )
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(_ALERT.c.id)
            ).first()
            if row is None:
                transaction.rollback()
                return Raised(None, "duplicate")
            if not _claim_cooldown(connection, alert, now, now + cooldown):
                transaction.rollback()
                return Raised(None, "cooldown")
            alert_id = int(row[0])
            outbox_ids = []
            for delivery in deliveries:
                period = f"{alert_id}:{delivery.part}" if delivery.part else str(alert_id)
                outbox_ids.append(
                    int(
                        connection.execute(
                            _OUTBOX.insert()
                            .values(
                                group_key=alert.group_key,
                                job=delivery.job,
                                period_key=period,
                                platform=delivery.platform,
                                target=delivery.target,
                                msg_type="markdown",
                                title=alert.title[:256],
                                body=alert.summary,
                                state="pending",
                                attempts=0,
                                created_at=now,
                                next_attempt_at=now,
                            )
                            .returning(_OUTBOX.c.id)
                        ).scalar_one()
                    )
                )
        return Raised(alert_id, None, outbox_ids)

    def settle(self, alert_id: int) -> str:
        """Set the alert's state from its posts: failed if one failed, sent when all are."""
        with self._engine.begin() as connection:
            states = [
                str(s)
                for s in connection.execute(
                    select(_OUTBOX.c.state).where(_alert_posts(alert_id))
                ).scalars()
            ]
            errors = [
                str(e)
                for e in connection.execute(
                    select(_OUTBOX.c.error).where(
                        _alert_posts(alert_id), _OUTBOX.c.state == "failed"
                    )
                ).scalars()
                if e
            ]
            if not states:
                return "failed"
            if any(s in ("pending", "sending") for s in states):
                state = "pending"
            elif "failed" in states:
                state = "failed"
            else:
                state = "sent"
            connection.execute(
                update(_ALERT)
                .where(_ALERT.c.id == alert_id)
                .values(state=state, error="; ".join(errors)[:2000] if errors else None)
            )
        return state

    def settle_pending(self) -> int:
        """Settle every pending alert whose posts all finished (e.g. failed by a restart)."""
        with self._engine.connect() as connection:
            pending = [
                int(i)
                for i in connection.execute(
                    select(_ALERT.c.id).where(_ALERT.c.state == "pending")
                ).scalars()
            ]
        return sum(1 for alert_id in pending if self.settle(alert_id) != "pending")

    def list(
        self, *, group_id: int | None = None, since: datetime | None = None, limit: int = 500
    ) -> list[AlertRecord]:
        """Alerts, newest first."""
        query = (
            select(
                _ALERT.c.id,
                _ALERT.c.group_id,
                _GROUP.c.platform,
                _GROUP.c.chat_id,
                _ALERT.c.kind,
                _ALERT.c.sender_user_id,
                _ALERT.c.sender_name,
                _ALERT.c.text,
                _ALERT.c.score,
                _ALERT.c.keyword,
                _ALERT.c.summary,
                _ALERT.c.message_at,
                _ALERT.c.raised_at,
                _ALERT.c.state,
                _ALERT.c.error,
            )
            .join(_GROUP, _GROUP.c.id == _ALERT.c.group_id)
            .order_by(_ALERT.c.raised_at.desc(), _ALERT.c.id.desc())
            .limit(limit)
        )
        if group_id is not None:
            query = query.where(_ALERT.c.group_id == group_id)
        if since is not None:
            query = query.where(_ALERT.c.raised_at >= since)
        with self._engine.connect() as connection:
            return [AlertRecord(**dict(row._mapping)) for row in connection.execute(query)]

    def counts(self) -> dict[tuple[str, str], int]:
        """Stored alerts by (kind, state)."""
        query = select(_ALERT.c.kind, _ALERT.c.state, func.count()).group_by(
            _ALERT.c.kind, _ALERT.c.state
        )
        with self._engine.connect() as connection:
            return {(str(k), str(s)): int(n) for k, s, n in connection.execute(query)}


def _alert_posts(alert_id: int) -> ColumnElement[bool]:
    return and_(
        _OUTBOX.c.job.in_(ALERT_JOBS),
        or_(_OUTBOX.c.period_key == str(alert_id), _OUTBOX.c.period_key.like(f"{alert_id}:%")),
    )


def _claim_cooldown(
    connection: Connection, alert: NewAlert, now: datetime, until: datetime
) -> bool:
    key = and_(
        _COOLDOWN.c.group_id == alert.group_id,
        _COOLDOWN.c.kind == alert.kind,
        _COOLDOWN.c.subject == alert.cooldown_subject,
    )
    claimed = connection.execute(
        update(_COOLDOWN).where(key, _COOLDOWN.c.until <= now).values(until=until)
    ).rowcount
    if claimed == 1:
        return True
    inserted = connection.execute(
        insert_for(connection, _COOLDOWN)
        .values(
            group_id=alert.group_id, kind=alert.kind, subject=alert.cooldown_subject, until=until
        )
        .on_conflict_do_nothing(index_elements=["group_id", "kind", "subject"])
        .returning(_COOLDOWN.c.group_id)
    ).first()
    return inserted is not None


def _delete_with_posts(connection: Connection, ids: Iterable[int]) -> int:
    """Delete alerts and their outbox posts (which quote the same text)."""
    found = list(ids)
    for alert_id in found:
        connection.execute(delete(_OUTBOX).where(_alert_posts(alert_id)))
    if found:
        connection.execute(delete(_ALERT).where(_ALERT.c.id.in_(found)))
    return len(found)


def delete_alerts_naming(connection: Connection, member_id: int) -> int:
    """Delete every alert that names or quotes ``member_id``; return how many."""
    ids = connection.execute(
        select(_ALERT.c.id).where(
            or_(
                _ALERT.c.member_id == member_id,
                _ALERT.c.member_ids.like(f"%,{member_id},%"),
            )
        )
    ).scalars()
    return _delete_with_posts(connection, [int(i) for i in ids])


def delete_alerts_before(connection: Connection, before: datetime) -> int:
    """Delete alerts raised before ``before`` (with their posts); return how many."""
    ids = connection.execute(select(_ALERT.c.id).where(_ALERT.c.raised_at < before)).scalars()
    return _delete_with_posts(connection, [int(i) for i in ids])


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: int
    platform: str
    chat_id: str
    name: str | None


def recent_groups(engine: Engine, since: datetime) -> list[GroupRef]:
    """Groups with a message or a membership event since ``since`` (spikes need activity)."""
    from storage.models import MembershipEvent

    membership = MembershipEvent.__table__  # type: ignore[attr-defined]
    active = (
        select(_MESSAGE.c.group_id.label("gid"))
        .where(_MESSAGE.c.sent_at >= since)
        .union(select(membership.c.group_id).where(membership.c.occurred_at >= since))
        .subquery()
    )
    query = (
        select(_GROUP.c.id, _GROUP.c.platform, _GROUP.c.chat_id, _GROUP.c.name)
        .where(_GROUP.c.id.in_(select(active.c.gid)))
        .order_by(_GROUP.c.id)
    )
    with engine.connect() as connection:
        return [GroupRef(*row) for row in connection.execute(query)]
