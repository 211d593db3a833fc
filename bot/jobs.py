"""The scheduled jobs: figures from storage, text from analytics, posts into the outbox.

A job never sends anything itself: it writes posts keyed by (group, job, period) to the
outbox, where a second run for the same key creates nothing, and tells its caller each
batch it saved (which wakes the sender).

Every job takes ``day``, a local date *inside the period the post is about*: the
leaderboard's day, the daily digest's day, a day of the weekly digest's week (as
``qunpulse stats --date`` does). The scheduler passes the day before a digest's run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Engine

from analytics.charts import (
    render_weekly_chart,
    render_word_cloud,
    top_words_counts,
    warm_word_cloud,
)
from analytics.periods import Period, offset_segments, resolve_period
from analytics.posts import (
    DIGEST_OMITS,
    RenderedPost,
    TargetCheck,
    render_digest,
    render_leaderboard,
)
from bot.platforms.base import Clock
from bot.retention import run_retention
from bot.roster_sync import pull_wecom_group_stats, sync_rosters
from bot.senders import Target
from bot.telemetry import Telemetry
from bot.workers import start_cloud_worker
from config import Settings
from config.settings import (
    JOBS,
    DingtalkRobotSettings,
    FeishuSettings,
    GroupSettings,
    WecomAppSettings,
)
from handlers.alerts import AlertMonitor, operators_for, private_bot
from handlers.stats import (
    ALL_METRICS,
    BATCH_GROUPS,
    GroupStats,
    StatsOptions,
    collect_stats,
    collect_stats_many,
    rank_json,
)
from storage.outbox import NewPost, Outbox
from storage.queries import GroupRecord, daily_series, find_groups

log = logging.getLogger(__name__)

#: What the leaderboard shows: counting these alone keeps 1,000 groups' runs cheap.
LEADERBOARD_METRICS = frozenset({"messages", "active_members", "members", "message_rank"})
#: What a digest shows (a tenth of a digest's figures are parts it never shows).
DIGEST_METRICS = frozenset(ALL_METRICS) - DIGEST_OMITS


ALERTS_TARGET = "alerts.webhook"


@dataclass
class JobResult:
    """What one run did: posts queued, posts that already existed, groups skipped."""

    job: str
    queued: list[int] = field(default_factory=list)
    existing: int = 0
    notes: list[str] = field(default_factory=list)
    #: Posts made but not yet written to the outbox (a batch writes them together).
    unsaved: list[NewPost] = field(default_factory=list, repr=False)
    #: Word clouds being drawn, queued after the run's other posts.
    clouds: list[_Cloud] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class _Cloud:
    group: GroupSettings
    job: str
    period: Period
    target: str
    platform: str
    title: str
    words: dict[str, int]
    png: Future[bytes]


#: A group, its record, and where its post goes (the outbox target and what it resolves to).
_Posting = tuple[GroupSettings, GroupRecord, str, Target]

#: A run that may draw at least this many word clouds draws them in one worker process,
#: beside the figures and posts of the other groups (a cloud is 10-40 ms of CPU).
CLOUD_PROCESS_MIN = 16
#: Seconds the word cloud worker waits for another run before it stops.
CLOUD_IDLE_SECONDS = 600.0


class CloudRenderer:
    """Draws word clouds: in the caller's thread, or in a worker process when many.

    The worker (one process, ``spawn``: the caller may have threads) starts when a run may
    draw :data:`CLOUD_PROCESS_MIN` clouds or more (or at :meth:`start`), before its
    figures, and then serves the runs that follow (starting it, importing wordcloud and
    loading fonts, costs about as much as drawing fifty clouds) until it has been idle
    for ``idle_seconds`` or :meth:`close`: it holds some 200 MB of its own, which `serve`
    should not keep from one day's digests to the next. A broken worker is not fatal: its
    clouds are drawn here instead, and the next run that needs it starts a new one.
    """

    def __init__(
        self, process_min: int = CLOUD_PROCESS_MIN, idle_seconds: float = CLOUD_IDLE_SECONDS
    ) -> None:
        self._process_min = process_min
        self._idle_seconds = idle_seconds
        self._pool: ProcessPoolExecutor | None = None
        #: Runs in several threads (``serve``) share the worker.
        self._lock = threading.Lock()
        #: Runs using the worker now (:meth:`in_use`), and the timer that stops it idle.
        self._users = 0
        self._idle: threading.Timer | None = None

    @contextlib.contextmanager
    def in_use(self) -> Iterator[CloudRenderer]:
        """Keep the worker (if any) for a run; once no run uses it, its idle time starts."""
        with self._lock:
            self._users += 1
            self._stop_idle_timer()
        try:
            yield self
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._pool is not None:
                    self._idle = threading.Timer(
                        self._idle_seconds, self._close_idle, args=(self._pool,)
                    )
                    self._idle.daemon = True
                    self._idle.start()

    def _stop_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _close_idle(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not pool or self._users:
                return  # replaced, or in use again since the timer started
            self._pool, self._idle = None, None
        log.info(
            "word clouds: the worker process was idle for %.0f s; stopping it", self._idle_seconds
        )
        pool.shutdown(wait=True, cancel_futures=True)

    def start(self) -> None:
        """Start the worker now and wait until it is ready to draw (its idle time starts)."""
        with self.in_use():
            self._started().submit(os.getpid).result()

    def expect(self, clouds: int) -> None:
        """Up to ``clouds`` clouds will be asked for: start the worker now if worth it."""
        if clouds >= self._process_min:
            self._started()

    def close(self) -> None:
        """Stop the worker (after the cloud it is drawing); a later run starts a new one."""
        with self._lock:
            self._stop_idle_timer()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            self._stop_idle_timer()
            if self._pool is not None:
                try:
                    self._pool.submit(os.getpid)  # refused if the worker died since
                except BrokenProcessPool:
                    log.warning("word cloud worker is gone; starting a new one")
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
            if self._pool is None:
                log.info("word clouds: starting a worker process")
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=start_cloud_worker,
                )
                self._pool.submit(os.getpid)  # the process starts with its first task
            return self._pool

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        """``pool`` broke: drop it (if still ours) so that the next run starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def render(self, words: dict[str, int]) -> Future[bytes]:
        """The PNG of ``words``, now or later."""
        pool = self._pool
        if pool is not None:
            try:
                return pool.submit(render_word_cloud, words)
            except (BrokenProcessPool, RuntimeError):
                log.warning("word cloud worker is gone; drawing the clouds here")
                self._forget(pool)
        done: Future[bytes] = Future()
        try:
            done.set_result(render_word_cloud(words))
        except Exception as error:  # raised again by result(), as a direct call would
            done.set_exception(error)
        return done

    def finish(self, pending: list[tuple[Future[bytes], dict[str, int]]]) -> list[bytes]:
        """Every PNG of ``pending`` (futures from :meth:`render` and their words), in order.

        While the worker draws from the front, this thread draws from the back the clouds
        it has not started, so both cores work until the last cloud.
        """
        drawn: dict[int, bytes] = {}
        for index in reversed(range(len(pending))):
            png, words = pending[index]
            if png.cancel():
                drawn[index] = render_word_cloud(words)
        return [
            drawn[index] if index in drawn else self.result(png, words)
            for index, (png, words) in enumerate(pending)
        ]

    def result(self, png: Future[bytes], words: dict[str, int]) -> bytes:
        """The PNG of :meth:`render`'s ``words``; drawn here if the worker broke meanwhile."""
        try:
            return png.result()
        except BrokenProcessPool:
            log.warning("word cloud worker broke; drawing the cloud here")
            return render_word_cloud(words)


def group_key(group: GroupSettings) -> str:
    return f"{group.platform}:{group.chat_id}"


def targets_from(settings: Settings) -> Callable[[str], Target | None]:
    """Resolve an outbox target name to where it goes, from the config of now.

    Names: ``group:PLATFORM:CHAT_ID`` (the group's robot webhook), ``alerts.webhook``,
    ``operators:PLATFORM:CHAT_ID`` (that group's operators, privately, through the
    platform's app or robot) and ``operator:feishu:USER`` (one Feishu user).
    """
    by_name: dict[str, Target] = {}
    for index, group in enumerate(settings.groups):
        if group.webhook is not None:
            by_name[f"group:{group_key(group)}"] = Target(
                group.platform,
                f"groups[{index}].webhook",
                group.webhook.get_secret_value(),
                group.secret.get_secret_value() if group.secret else None,
            )
    if settings.alerts.webhook is not None and settings.alerts.webhook.get_secret_value():
        url = settings.alerts.webhook.get_secret_value()
        platform = webhook_platform(url)
        if platform is not None:
            by_name[ALERTS_TARGET] = Target(platform, ALERTS_TARGET, url)

    def resolve(name: str) -> Target | None:
        found = by_name.get(name)
        return found if found is not None else private_target(settings, name)

    return resolve


def private_target(settings: Settings, name: str) -> Target | None:
    """The private target ``operators:PLATFORM:CHAT_ID`` or ``operator:feishu:USER``."""
    kind, _, rest = name.partition(":")
    platform, _, subject = rest.partition(":")
    if kind == "operators" and platform in ("wecom", "dingtalk"):
        recipients = operators_for(settings, platform, subject)
    elif kind == "operator" and platform == "feishu" and subject:
        recipients = (subject,)
    else:
        return None
    found = private_bot(settings, platform)
    if found is None or not recipients:
        return None
    index, bot = found
    key = f"bots[{index}]"
    if isinstance(bot, WecomAppSettings):
        return Target(
            "wecom",
            key,
            settings.platforms.wecom.api_base,
            bot.secret.get_secret_value(),
            "private",
            recipients,
            bot.corp_id,
            str(bot.agent_id),
        )
    if isinstance(bot, DingtalkRobotSettings):
        return Target(
            "dingtalk",
            key,
            settings.platforms.dingtalk.api_base,
            bot.app_secret.get_secret_value(),
            "private",
            recipients,
            bot.app_key,
            bot.robot_code,
        )
    if isinstance(bot, FeishuSettings):
        return Target(
            "feishu",
            key,
            settings.platforms.feishu.api_base,
            bot.app_secret.get_secret_value(),
            "private",
            recipients,
            bot.app_id,
        )
    return None


def webhook_platform(url: str) -> str | None:
    """Which platform a robot webhook URL belongs to, from its path."""
    path = urlsplit(url).path
    if path.endswith("/cgi-bin/webhook/send"):
        return "wecom"
    if path.endswith("/robot/send"):
        return "dingtalk"
    if "/open-apis/bot/v2/hook/" in path:
        return "feishu"
    return None


class Jobs:
    """Runs jobs against the database and the outbox."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        outbox: Outbox,
        clock: Clock,
        telemetry: Telemetry | None = None,
        *,
        cloud_process_min: int = CLOUD_PROCESS_MIN,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._engine = engine
        self._outbox = outbox
        self._clock = clock
        #: Kept from run to run (and started by :meth:`warm_up`) until :meth:`close`.
        self._clouds = CloudRenderer(cloud_process_min)
        self._cloud_process_min = cloud_process_min
        self._resolve = targets_from(settings)
        self._options = StatsOptions.from_settings(settings)
        #: Runs in worker threads right now: cancelling the awaiting task does not stop a
        #: thread, so ``serve`` waits for these before it closes the database.
        self.in_flight: set[asyncio.Future[JobResult]] = set()
        webhook = self._resolve(ALERTS_TARGET)
        #: Raises alerts; ``serve`` also hands it every batch of scored messages.
        self.alerts = AlertMonitor(
            settings,
            engine,
            clock,
            telemetry,
            webhook_platform=webhook.platform if webhook is not None else None,
        )

    def warm_up(self) -> None:
        """Load what the first digest would otherwise load while it runs (about 2 s).

        jieba's dictionary and IDF table, wordcloud with its fonts, the word cloud worker
        (when the configured WeCom groups are enough to start one) and the statements the
        figures need. A process that runs jobs for many groups pays this once; ``serve``
        can call it at start.
        """
        from collections import Counter

        from analytics.text import keywords, segmenter

        opts = self._options
        segmenter(opts.text_config())  # for texts the background scorer has not cut yet
        keywords(Counter({"活动": 1}), 1, opts.cache_dir)
        warm_word_cloud()
        wecom = sum(1 for group in self._settings.groups if group.platform == "wecom")
        if wecom >= self._cloud_process_min:
            self._clouds.start()
        self._first_figures()

    def _first_figures(self) -> None:
        """Yesterday's figures of one configured group, thrown away.

        The first figures a process makes cost several times the next ones (about 0.5 s
        more for a digest: SQLAlchemy builds and compiles each of some sixty statements once
        and then reuses them, whatever the groups and the period); one group pays it here.
        """
        found = find_groups(self._engine, [(g.platform, g.chat_id) for g in self._settings.groups])
        if not found:
            return
        record = next(iter(found.values()))
        zone = self._settings.zone
        period = resolve_period("day", self._clock().astimezone(zone).date(), zone).previous()
        for wanted in (LEADERBOARD_METRICS, DIGEST_METRICS):
            collect_stats_many(self._engine, [record], period, options=self._options, wanted=wanted)

    def close(self) -> None:
        """Stop the word cloud worker, if one was started (after any cloud it is drawing)."""
        self._clouds.close()

    def run(
        self,
        job: str,
        day: date,
        chat_id: str | None = None,
        *,
        on_saved: Callable[[list[int]], None] = lambda _: None,
    ) -> JobResult:
        """Run ``job`` for the period containing ``day`` (optionally one group only).

        ``on_saved`` gets the ids of each batch of new posts as soon as they are in the
        outbox (on this thread), so that they can go out while later batches are made.

        Raises:
            ValueError: ``job`` is not a known job name.
        """
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r}; jobs are {', '.join(JOBS)}")
        result = JobResult(job)
        if job == "alert_scan":
            result.queued += self.alerts.scan()
            result.notes.append(f"alert_scan: {len(result.queued)} post(s) queued")
            if result.queued:
                on_saved(list(result.queued))
            return result
        if job == "retention":
            expired = run_retention(self._engine, self._settings, self._clock(), self._telemetry)
            result.notes.append(f"retention: {expired}")
            return result
        if job == "roster_sync":
            # Jobs run on a worker thread: the platform calls get an event loop of their own.
            synced = asyncio.run(sync_rosters(self._settings, self._engine, self._clock))
            result.notes += [
                f"roster {o.platform} {o.chat_id}: {o.error or 'synced'}" for o in synced
            ]
            return result
        if job == "wecom_stats":
            pulled = asyncio.run(
                pull_wecom_group_stats(self._settings, self._engine, self._clock, days=2)
            )
            result.notes += [
                f"wecom-stats {o.bot_id} owner {o.owner}: {o.error or f'{o.days} days'}"
                for o in pulled
            ]
            return result
        groups = [g for g in self._settings.groups if chat_id in (None, g.chat_id)]
        if chat_id is not None and not groups:
            result.notes.append(f"no [[groups]] entry with chat_id {chat_id!r}")
        records = find_groups(self._engine, [(g.platform, g.chat_id) for g in groups])
        present: list[tuple[GroupSettings, GroupRecord]] = []
        for group in groups:
            record = records.get((group.platform, group.chat_id))
            if record is None:
                result.notes.append(f"{group_key(group)}: no data yet, skipped")
            else:
                present.append((group, record))
        # Where each group's post goes, decided once for the run (notes once per group).
        posting = [
            (group, record, *found)
            for group, record in present
            if (found := self._target(job, group, result)) is not None
        ]
        with self._clouds.in_use() as clouds:
            if job != "leaderboard":
                # Each WeCom digest may bring a word cloud: a worker process drawing them
                # starts now, so that it is ready when the first batch's figures are.
                clouds.expect(sum(1 for *_, resolved in posting if resolved.platform == "wecom"))
            # A batch's figures come from one pass of queries over all its groups.
            for start in range(0, len(posting), BATCH_GROUPS):
                batch = posting[start : start + BATCH_GROUPS]
                if job == "leaderboard":
                    self._leaderboards(batch, day, result)
                else:
                    self._digests(batch, day, job, result, clouds)
                    self._queue_clouds(result, clouds, every=False)
                self._save(result, on_saved)
            self._queue_clouds(result, clouds, every=True)
            self._save(result, on_saved)
        return result

    def _queue_clouds(self, result: JobResult, clouds: CloudRenderer, *, every: bool) -> None:
        """Queue the word clouds drawn by now, or (``every``) all of them once drawn.

        Clouds go out with the batches that follow theirs instead of all after the run. A
        cloud is queued with or after its digest, so it goes after it.
        """
        ready: list[_Cloud] = []
        waiting: list[_Cloud] = []
        for cloud in result.clouds:
            (ready if every or cloud.png.done() else waiting).append(cloud)
        result.clouds = waiting
        if every:
            pngs = clouds.finish([(cloud.png, cloud.words) for cloud in ready])
        else:
            pngs = [clouds.result(cloud.png, cloud.words) for cloud in ready]
        for cloud, png in zip(ready, pngs, strict=True):
            image = base64.b64encode(png).decode("ascii")
            self._queue(
                cloud.group,
                cloud.job,
                cloud.period,
                cloud.target,
                cloud.platform,
                RenderedPost(cloud.title, image),
                result,
                "image",
            )

    def leaderboard_post(
        self,
        group: GroupSettings,
        record: GroupRecord,
        day: date,
        platform: str,
        *,
        today: GroupStats | None = None,
    ) -> tuple[Period, RenderedPost] | None:
        """The leaderboard of ``day`` as ``platform`` shows it; ``None`` on a silent day.

        ``today`` lets a batch pass the stats it already has. Yesterday's rank (for the
        arrows) is today's ``previous_rank``: the day before is asked with today anyway.
        """
        if today is None:
            today = collect_stats(
                self._engine,
                record,
                resolve_period("day", day, self._settings.zone),
                options=self._options,
                wanted=LEADERBOARD_METRICS,
            )
        if not today.metrics["messages"].value:
            return None
        post = render_leaderboard(
            _named(today.to_json(), group),
            rank_json(today.previous_rank),
            locale=self._settings.locale,
            flavour=_flavour(platform),
            top_n=self._settings.posts.leaderboard_top_n,
        )
        return today.period, post

    def _leaderboards(self, batch: list[_Posting], day: date, result: JobResult) -> None:
        today = collect_stats_many(
            self._engine,
            [record for _, record, _, _ in batch],
            resolve_period("day", day, self._settings.zone),
            options=self._options,
            wanted=LEADERBOARD_METRICS,
        )
        for group, record, target, resolved in batch:
            made = self.leaderboard_post(
                group, record, day, resolved.platform, today=today[record.id]
            )
            if made is None:
                result.notes.append(f"{group_key(group)}: no messages on {day}, no leaderboard")
                continue
            period, post = made
            self._queue(group, "leaderboard", period, target, resolved.platform, post, result)

    def _target(
        self, job: str, group: GroupSettings, result: JobResult
    ) -> tuple[str, Target] | None:
        """Where ``group``'s post of ``job`` goes, or ``None`` (with a note) when nowhere."""
        if job != "leaderboard" and group.digest_to == "operators":
            return self._operators_target(group, result)
        target = f"group:{group_key(group)}"
        resolved = self._resolve(target)
        if resolved is None:
            result.notes.append(f"{group_key(group)}: no webhook configured, skipped")
            return None
        return target, resolved

    def _operators_target(
        self, group: GroupSettings, result: JobResult
    ) -> tuple[str, Target] | None:
        """Where a ``digest_to = "operators"`` digest goes, or ``None`` (with a note).

        Privately to the group's operators through the platform's app or robot (as alerts
        go), else into the operators' group at [alerts].webhook. Feishu takes one user per
        message, so its digests use the webhook.
        """
        target = f"operators:{group_key(group)}"
        resolved = self._resolve(target) if group.platform != "feishu" else None
        if resolved is None:
            target = ALERTS_TARGET
            resolved = self._resolve(target)
        if resolved is None:
            result.notes.append(
                f'{group_key(group)}: digest_to = "operators" needs a private channel '
                "(a wecom_app or dingtalk_robot bot and [operators] or the group's "
                "operators) or [alerts].webhook; skipped"
            )
            log.warning("%s", result.notes[-1])
            return None
        return target, resolved

    def _digests(
        self,
        batch: list[_Posting],
        day: date,
        job: str,
        result: JobResult,
        clouds: CloudRenderer,
    ) -> None:
        zone = self._settings.zone
        kind: Literal["daily", "weekly"] = "daily" if job == "daily_digest" else "weekly"
        period = resolve_period("day" if kind == "daily" else "week", day, zone)
        stats = collect_stats_many(
            self._engine,
            [record for _, record, _, _ in batch],
            period,
            options=self._options,
            wanted=DIGEST_METRICS,
        )
        failed = self._failures(period)
        for group, record, target, resolved in batch:
            post, figures = self.digest_post(
                group,
                record,
                period,
                kind,
                resolved.platform,
                stats=stats[record.id],
                failures=failed.get(group_key(group), []),
            )
            takes_images = resolved.platform == "wecom"
            self._queue(group, job, period, target, resolved.platform, post, result)
            words = top_words_counts(figures.get("top_words"))
            if takes_images and words:
                # Queued when the run's figures are done: meanwhile a worker may draw it.
                result.clouds.append(
                    _Cloud(
                        group,
                        f"{job}_words",
                        period,
                        target,
                        resolved.platform,
                        post.title,
                        words,
                        clouds.render(words),
                    )
                )
            if kind == "weekly" and takes_images:
                chart = self.weekly_chart(record, period)
                image = RenderedPost(post.title, base64.b64encode(chart).decode("ascii"))
                self._queue(
                    group, "weekly_chart", period, target, resolved.platform, image, result, "image"
                )

    def _failures(self, period: Period, group: str | None = None) -> dict[str, list[str]]:
        """Posts that failed since the day before ``period``, by group key (one query);
        of every group, or of the one with key ``group``."""
        failed: dict[str, list[str]] = {}
        for p in self._outbox.failed_since(period.start_utc - timedelta(days=1), group):
            failed.setdefault(p.group_key, []).append(f"{p.job} {p.period_key}: {p.error}")
        return failed

    def digest_post(
        self,
        group: GroupSettings,
        record: GroupRecord,
        period: Period,
        kind: Literal["daily", "weekly"],
        platform: str,
        *,
        stats: GroupStats | None = None,
        failures: list[str] | None = None,
    ) -> tuple[RenderedPost, dict[str, Any]]:
        """The digest of ``period`` as ``platform`` shows it, and the figures behind it.

        A batch passes the group's ``stats`` and ``failures`` it already has.
        """
        if stats is None:
            stats = collect_stats(
                self._engine, record, period, options=self._options, wanted=DIGEST_METRICS
            )
        if failures is None:
            key = group_key(group)
            failures = self._failures(period, key).get(key, [])
        targets = [
            TargetCheck(metric, value)
            for metric, value in self._settings.targets.model_dump().items()
            if value is not None
        ]
        figures = stats.to_json()
        post = render_digest(
            _named(figures, group),
            kind=kind,
            locale=self._settings.locale,
            flavour=_flavour(platform),
            targets=targets,
            failures=failures,
            chart_note=kind == "weekly" and platform != "wecom",
        )
        return post, figures

    def weekly_chart(self, record: GroupRecord, period: Period) -> bytes:
        """Messages and active members per day of ``period``, as a PNG."""
        days = period.dates()
        with self._engine.connect() as connection:
            per_day = daily_series(
                connection,
                record.id,
                period.start_utc,
                period.end_utc,
                offset_segments(period.zone, period.start_utc, period.end_utc),
                min_messages=self._settings.activity.min_messages,
            )
        return render_weekly_chart(
            days,
            [per_day[day].messages if day in per_day else 0 for day in days],
            [per_day[day].active_members if day in per_day else 0 for day in days],
            self._settings.locale,
        )

    def _queue(
        self,
        group: GroupSettings,
        job: str,
        period: Period,
        target: str,
        platform: str,
        post: RenderedPost,
        result: JobResult,
        msg_type: str = "markdown",
    ) -> None:
        key = period.first.isoformat()
        if period.last != period.first:
            key = f"{key}~{period.last.isoformat()}"
        result.unsaved.append(
            NewPost(
                group_key=group_key(group),
                job=job,
                period_key=key,
                platform=platform,
                target=target,
                msg_type=msg_type,
                title=post.title,
                body=post.body,
            )
        )

    def _save(self, result: JobResult, on_saved: Callable[[list[int]], None]) -> None:
        """Write the posts made so far to the outbox, in one transaction; tell ``on_saved``."""
        posts, result.unsaved = result.unsaved, []
        saved: list[int] = []
        for post, new_id in zip(posts, self._outbox.add_many(posts, self._clock()), strict=True):
            if new_id is None:
                result.existing += 1
                result.notes.append(
                    f"{post.group_key}: {post.job} for {post.period_key} was already queued"
                )
            else:
                saved.append(new_id)
        result.queued += saved
        if saved:
            on_saved(saved)


def _named(document: dict[str, Any], group: GroupSettings) -> dict[str, Any]:
    """The stats document with the group's configured ``name`` (it wins over the platform's)."""
    if group.name:
        document["group"] = {**document.get("group", {}), "name": group.name}
    return document


def _flavour(platform: str) -> Literal["wecom", "dingtalk", "feishu"]:
    if platform == "wecom":
        return "wecom"
    if platform == "dingtalk":
        return "dingtalk"
    return "feishu"


def day_for(job: str, fire_day: date) -> date:
    """The day inside the period a scheduled run is about (digests: the day before)."""
    if job in ("daily_digest", "weekly_digest"):
        return fire_day - timedelta(days=1)
    return fire_day
