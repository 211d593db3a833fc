"""The scheduler: jobs on their cron in ``timezone``, made up after downtime, run by one process.

- APScheduler 3 (``AsyncIOScheduler``, ``CronTrigger.from_crontab`` in the settings' zone)
  fires the jobs of ``[schedule]``.
- Every fire is recorded in ``job_run`` under a unique (job, scheduled time) key before the
  job runs, so a fire happens once even if two processes both think they lead.
- On becoming the leader, the most recent fire of each job that is at most
  ``schedule.grace_hours`` old and not in ``job_run`` is made up, once.
- Leadership is a lease row (``scheduler_lease``) renewed every third of
  ``schedule.lease_seconds``; when the holder dies, another process takes the expired
  lease at its next renewal, well within a minute. The same code serves SQLite (one
  process) and PostgreSQL (many).
- Its database calls run on worker threads: a lease renewal that waits for a lock (an
  import holding SQLite's write lock) must not stop the server answering callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.platforms.base import Clock
from bot.telemetry import Telemetry
from config import Settings
from config.settings import JOBS
from storage.outbox import JobRuns, Leases

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"

#: Runs one job for the local date of its scheduled fire.
JobRunner = Callable[[str, date], Awaitable[None]]


def runner_id() -> str:
    """A name for this process in lease and job-run rows: host, pid and a random tail."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def triggers(settings: Settings) -> dict[str, CronTrigger]:
    zone = settings.zone
    return {
        job: CronTrigger.from_crontab(getattr(settings.schedule, job), timezone=zone)
        for job in JOBS
    }


def last_fire(trigger: CronTrigger, now: datetime, since: datetime) -> datetime | None:
    """The latest fire time of ``trigger`` in ``(since, now]``, or ``None``."""
    latest = None
    fire = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return latest


class JobScheduler:
    """Leader election, catch-up and the APScheduler wiring for the jobs."""

    def __init__(
        self,
        settings: Settings,
        job_runs: JobRuns,
        leases: Leases,
        run_job: JobRunner,
        telemetry: Telemetry,
        clock: Clock,
        *,
        holder: str | None = None,
        on_lead: Callable[[], Awaitable[None]] | None = None,
        on_lose: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._zone: ZoneInfo = settings.zone
        self._job_runs = job_runs
        self._leases = leases
        self._run_job = run_job
        self._telemetry = telemetry
        self._clock = clock
        self.holder = holder or runner_id()
        self._on_lead = on_lead
        self._on_lose = on_lose
        self._ttl = timedelta(seconds=settings.schedule.lease_seconds)
        self._triggers = triggers(settings)
        self._aps: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        #: Set by :meth:`stop`: the lease loop ends after the tick it is in, if any.
        self._stopping = asyncio.Event()
        self.leading = False

    async def tick(self, *, use_apscheduler: bool = False) -> bool:
        """Take or renew the lease; on becoming leader make up missed runs.

        Returns whether this process leads now.
        """
        try:
            holds = await asyncio.to_thread(
                self._leases.acquire, LEASE_NAME, self.holder, self._clock(), self._ttl
            )
        except Exception:
            log.exception("scheduler: cannot reach the lease row; stepping down")
            holds = False
        if holds and not self.leading:
            self.leading = True
            log.info("scheduler: this process (%s) runs the scheduled jobs", self.holder)
            if self._on_lead is not None:
                await self._on_lead()
            await self.catch_up()
            if use_apscheduler:
                self._start_apscheduler()
        elif not holds and self.leading:
            self.leading = False
            log.warning("scheduler: lease lost to another process; pausing jobs")
            self._stop_apscheduler()
            if self._on_lose is not None:
                await self._on_lose()
        return self.leading

    async def catch_up(self) -> list[tuple[str, datetime]]:
        """Run, once, each job's latest fire within the grace that nobody ran."""
        now = self._clock().astimezone(self._zone)
        since = now - timedelta(hours=self._settings.schedule.grace_hours)
        made_up = []
        for job, trigger in self._triggers.items():
            fire = last_fire(trigger, now, since)
            if fire is None or await asyncio.to_thread(self._job_runs.exists, job, fire):
                continue
            log.info("scheduler: making up %s of %s", job, fire.isoformat())
            if await self.run_once(job, fire):
                made_up.append((job, fire))
        return made_up

    async def fire(self, job: str) -> None:
        """APScheduler's entry point: run ``job`` for its latest scheduled time."""
        if not self.leading:
            return
        now = self._clock().astimezone(self._zone)
        scheduled = last_fire(self._triggers[job], now, now - timedelta(hours=1))
        await self.run_once(job, scheduled or now.replace(second=0, microsecond=0))

    async def run_once(self, job: str, scheduled_for: datetime) -> bool:
        """Run ``job`` for ``scheduled_for`` unless a run of it is recorded already."""
        run_id = await asyncio.to_thread(
            self._job_runs.start, job, scheduled_for, self.holder, self._clock()
        )
        if run_id is None:
            return False
        try:
            await self._run_job(job, scheduled_for.astimezone(self._zone).date())
        except Exception as error:
            log.exception("scheduler: job %s of %s failed", job, scheduled_for.isoformat())
            await asyncio.to_thread(
                self._job_runs.finish, run_id, "failed", self._clock(), type(error).__name__
            )
            self._telemetry.job_runs.labels(job, "failed").inc()
            return False
        await asyncio.to_thread(self._job_runs.finish, run_id, "done", self._clock())
        self._telemetry.job_runs.labels(job, "done").inc()
        return True

    async def start(self) -> None:
        """Start the lease loop (and, while leading, APScheduler) in the background."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._lease_loop(), name="scheduler-lease")

    async def stop(self) -> None:
        """Stop after the tick in progress: not cancelled in the middle, since a lease taken
        or a job run recorded on a worker thread must be known here (a run recorded but
        never run would never be made up), and a renewal must not follow the release."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await task
        self._stop_apscheduler()
        if self.leading:
            self.leading = False
            if self._on_lose is not None:
                await self._on_lose()
            try:
                await asyncio.to_thread(self._leases.release, LEASE_NAME, self.holder)
            except Exception:
                log.exception("scheduler: could not release the lease; it expires by itself")

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick(use_apscheduler=True)
            except Exception:  # a database hiccup must not end leadership checks for good
                log.exception("scheduler: lease renewal or catch-up failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._ttl.total_seconds() / 3)

    def _start_apscheduler(self) -> None:
        if self._aps is not None:
            return
        scheduler = AsyncIOScheduler(timezone=self._zone)
        for job, trigger in self._triggers.items():
            scheduler.add_job(
                self.fire,
                trigger,
                args=[job],
                id=job,
                # The catch-up above (and job_run's unique key) handle misses; one at a time.
                max_instances=1,
                coalesce=True,
                misfire_grace_time=300,
            )
        scheduler.start()
        self._aps = scheduler

    def _stop_apscheduler(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    def next_runs(self) -> dict[str, datetime | None]:
        """When each job fires next, for logs and tests (``None``: not scheduled here)."""
        if self._aps is None:
            return {}
        return {job.id: job.next_run_time for job in self._aps.get_jobs()}
