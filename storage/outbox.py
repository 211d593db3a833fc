"""The durable outbox, job runs and the scheduler lease: the SQL side of "never twice".

Every state change is one conditional ``UPDATE`` (``... WHERE state = 'pending'``), so
two processes racing on the same row cannot both win, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update

from storage.models import JobRun, OutboxPost, SchedulerLease
from storage.upsert import insert_for

_OUTBOX = OutboxPost.__table__  # type: ignore[attr-defined]
_JOB_RUN = JobRun.__table__  # type: ignore[attr-defined]
_LEASE = SchedulerLease.__table__  # type: ignore[attr-defined]

STATES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class NewPost:
    """A post a job wants delivered once."""

    group_key: str
    job: str
    period_key: str
    platform: str
    target: str
    msg_type: str
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class PostRecord:
    id: int
    group_key: str
    job: str
    period_key: str
    platform: str
    target: str
    msg_type: str
    title: str
    body: str
    state: str
    attempts: int
    error: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None


def _record(row: object) -> PostRecord:
    return PostRecord(**{name: getattr(row, name) for name in PostRecord.__slots__})


class Outbox:
    """Repository of outbox posts."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, post: NewPost, now: datetime) -> int | None:
        """Queue ``post``; return its id, or ``None`` when its (group, job, period) exists."""
        return self.add_many([post], now)[0]

    def add_many(self, posts: Sequence[NewPost], now: datetime) -> builtins.list[int | None]:
        """Queue ``posts`` in one transaction; per post its id, or ``None`` as :meth:`add`."""
        ids: builtins.list[int | None] = []
        if not posts:
            return ids
        with self._engine.begin() as connection:
            statement = (
                insert_for(connection, _OUTBOX)
                .on_conflict_do_nothing(index_elements=["group_key", "job", "period_key"])
                .returning(_OUTBOX.c.id)
            )
            for post in posts:
                row = connection.execute(
                    statement,
                    {
                        "group_key": post.group_key,
                        "job": post.job,
                        "period_key": post.period_key,
                        "platform": post.platform,
                        "target": post.target,
                        "msg_type": post.msg_type,
                        "title": post.title,
                        "body": post.body,
                        "state": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "next_attempt_at": now,
                    },
                ).first()
                ids.append(None if row is None else int(row[0]))
        return ids

    def due(
        self, now: datetime, limit: int = 50, ids: Sequence[int] | None = None
    ) -> list[PostRecord]:
        """Pending posts whose next attempt is due, oldest first."""
        query = (
            select(_OUTBOX)
            .where(and_(_OUTBOX.c.state == "pending", _OUTBOX.c.next_attempt_at <= now))
            .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
            .limit(limit)
        )
        if ids is not None:
            query = query.where(_OUTBOX.c.id.in_(list(ids)))
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    def next_due_at(self, ids: Sequence[int] | None = None) -> datetime | None:
        """When the earliest pending post (of ``ids``) becomes due (``None``: none pending)."""
        query = select(func.min(_OUTBOX.c.next_attempt_at)).where(_OUTBOX.c.state == "pending")
        if ids is not None:
            query = query.where(_OUTBOX.c.id.in_(list(ids)))
        with self._engine.connect() as connection:
            value = connection.execute(query).scalar()
        if value is None:
            return None
        from storage.models import UTCDateTime

        return UTCDateTime().process_result_value(value, self._engine.dialect)

    def claim(self, post_ids: Sequence[int], runner: str) -> builtins.set[int]:
        """Take pending posts for sending, in one transaction; return the ids taken.

        A post that another sender took first (or that is no longer pending) is left out.
        """
        if not post_ids:
            return set()
        with self._engine.begin() as connection:
            rows = connection.execute(
                update(_OUTBOX)
                .where(and_(_OUTBOX.c.id.in_(list(post_ids)), _OUTBOX.c.state == "pending"))
                .values(state="sending", claimed_by=runner)
                .returning(_OUTBOX.c.id)
            )
            return {int(row[0]) for row in rows}

    def mark_sent(self, sent: Sequence[tuple[int, datetime]]) -> None:
        """Record claimed posts as sent, each ``(post id, when sent)``, in one transaction."""
        if not sent:
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == bindparam("post_id"))
                .values(
                    state="sent",
                    sent_at=bindparam("at", type_=_OUTBOX.c.sent_at.type),
                    error=None,
                    attempts=_OUTBOX.c.attempts + 1,
                ),
                [{"post_id": post_id, "at": at} for post_id, at in sent],
            )

    def release(self, post_ids: Sequence[int], runner: str) -> None:
        """Put posts ``runner`` claimed and never tried back as pending (it stopped)."""
        if not post_ids:
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(_OUTBOX)
                .where(
                    _OUTBOX.c.id.in_(list(post_ids)),
                    _OUTBOX.c.state == "sending",
                    _OUTBOX.c.claimed_by == runner,
                )
                .values(state="pending", claimed_by=None)
            )

    def mark_failed(self, post_id: int, error: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == post_id)
                .values(state="failed", error=error[:2000], attempts=_OUTBOX.c.attempts + 1)
            )

    def retry_later(self, post_id: int, error: str, at: datetime) -> None:
        """Put a claimed post back as pending, due at ``at``, counting the attempt."""
        with self._engine.begin() as connection:
            connection.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == post_id)
                .values(
                    state="pending",
                    attempts=_OUTBOX.c.attempts + 1,
                    error=error[:2000],
                    next_attempt_at=at,
                    claimed_by=None,
                )
            )

    def abandon_interrupted(self, runner_prefix: str | None = None) -> int:
        """Mark posts left in ``sending`` by a dead process as failed; return how many.

        A post in ``sending`` may or may not have reached the platform: the process died
        while it held the post (a sender claims a page of due posts together, posts them
        and records them as sent in batches). Webhooks take no idempotency key,
        so sending it again could post twice; we choose at most once and say so in the error.
        """
        condition = _OUTBOX.c.state == "sending"
        if runner_prefix is not None:
            condition = and_(condition, _OUTBOX.c.claimed_by.like(f"{runner_prefix}%"))
        with self._engine.begin() as connection:
            result = connection.execute(
                update(_OUTBOX)
                .where(condition)
                .values(
                    state="failed",
                    error="outcome unknown: the sender stopped while it held the post; "
                    "not sent again so that the group never sees it twice",
                )
            )
        return int(result.rowcount)

    def list(self, state: str | None = None, limit: int = 200) -> builtins.list[PostRecord]:
        """Posts, newest first, optionally only those in ``state``."""
        query = select(_OUTBOX).order_by(_OUTBOX.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(_OUTBOX.c.state == state)
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    def find(self, ids: Sequence[int]) -> builtins.list[PostRecord]:
        """The posts with these ids, in the order given (ids not found are left out)."""
        found: dict[int, PostRecord] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(ids), 1000):  # within every database's bind limit
                query = select(_OUTBOX).where(_OUTBOX.c.id.in_(ids[start : start + 1000]))
                found.update((row.id, _record(row)) for row in connection.execute(query))
        return [found[post_id] for post_id in ids if post_id in found]

    def failed_since(
        self, since: datetime, group_key: str | None = None
    ) -> builtins.list[PostRecord]:
        """Posts that failed since ``since`` (by creation), for the operators' digest."""
        query = (
            select(_OUTBOX)
            .where(and_(_OUTBOX.c.state == "failed", _OUTBOX.c.created_at >= since))
            .order_by(_OUTBOX.c.id)
        )
        if group_key is not None:
            query = query.where(_OUTBOX.c.group_key == group_key)
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    def counts(self) -> dict[str, int]:
        """How many posts are in each state."""
        query = select(_OUTBOX.c.state, func.count()).group_by(_OUTBOX.c.state)
        with self._engine.connect() as connection:
            found = {str(state): int(count) for state, count in connection.execute(query)}
        return {state: found.get(state, 0) for state in STATES}


class JobRuns:
    """Repository of job runs: one row per (job, scheduled time)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start(self, job: str, scheduled_for: datetime, runner: str, now: datetime) -> int | None:
        """Record that ``job`` runs for ``scheduled_for``; ``None`` if it already did."""
        with self._engine.begin() as connection:
            row = connection.execute(
                insert_for(connection, _JOB_RUN)
                .values(
                    job=job,
                    scheduled_for=scheduled_for,
                    started_at=now,
                    status="running",
                    runner=runner,
                )
                .on_conflict_do_nothing(index_elements=["job", "scheduled_for"])
                .returning(_JOB_RUN.c.id)
            ).first()
        return None if row is None else int(row[0])

    def finish(self, run_id: int, status: str, now: datetime, detail: str | None = None) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(_JOB_RUN)
                .where(_JOB_RUN.c.id == run_id)
                .values(status=status, finished_at=now, detail=detail)
            )

    def exists(self, job: str, scheduled_for: datetime) -> bool:
        query = select(func.count()).where(
            and_(_JOB_RUN.c.job == job, _JOB_RUN.c.scheduled_for == scheduled_for)
        )
        with self._engine.connect() as connection:
            return bool(connection.execute(query).scalar())

    def count(self, job: str | None = None) -> int:
        query = select(func.count()).select_from(_JOB_RUN)
        if job is not None:
            query = query.where(_JOB_RUN.c.job == job)
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)


class Leases:
    """A lease row with an expiry: whoever holds it runs the scheduled jobs."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease; ``True`` when ``holder`` holds it until ``now + ttl``.

        One conditional UPDATE (free or expired or already ours), else an INSERT that a
        unique primary key lets only one process win.
        """
        expires = now + ttl
        with self._engine.begin() as connection:
            result = connection.execute(
                update(_LEASE)
                .where(
                    and_(
                        _LEASE.c.name == name,
                        or_(_LEASE.c.holder == holder, _LEASE.c.expires_at < now),
                    )
                )
                .values(holder=holder, expires_at=expires)
            )
            if result.rowcount == 1:
                return True
            inserted = connection.execute(
                insert_for(connection, _LEASE)
                .values(name=name, holder=holder, expires_at=expires)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(_LEASE.c.name)
            ).first()
        return inserted is not None

    def release(self, name: str, holder: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                _LEASE.delete().where(and_(_LEASE.c.name == name, _LEASE.c.holder == holder))
            )
