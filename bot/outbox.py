"""The outbox sender: delivers queued posts once, within every platform's limits.

Jobs write posts to the ``outbox_post`` table (:mod:`storage.outbox`); this loop sends
them. A pass takes a page of due posts and *claims* those that may go now (``pending``
→ ``sending``, one conditional UPDATE for all of them) before posting them, so two
senders can never both post one. After its POST a post becomes ``sent`` (recorded with
others in one transaction, :data:`RECORD_SENT_EVERY`), or ``pending`` again with a later due
time (rate limit, 5xx, timeout; back-off doubling from 5 s up to 10 min), or ``failed``
with the platform's answer (permanent error, or ``posts.max_attempts`` used up), logged
once.

A restart resumes every ``pending`` post. A post left in ``sending`` by a process that
died while holding it (claimed and not yet posted, mid-POST, or posted and not yet
recorded: at most a page of posts) is marked failed rather than sent again: webhooks
take no idempotency key, and a group seeing the leaderboard twice is worse than an
operator seeing one failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.platforms.base import Clock
from bot.senders import (
    OutboundMessage,
    PermanentSendError,
    Sender,
    SlidingWindowLimiter,
    Target,
    TransientSendError,
)
from bot.senders.ratelimit import Sleep
from bot.telemetry import Telemetry
from storage.outbox import Outbox, PostRecord

log = logging.getLogger(__name__)

FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=10)
#: DingTalk throttles a robot for 10 minutes after 130101: waiting less only fails again.
DINGTALK_THROTTLE = timedelta(minutes=10)
#: How often the loop looks at the table even without a wake-up (another process's posts).
IDLE_POLL = timedelta(seconds=30)
#: Posts to different targets (robots, private channels) go out side by side, at most
#: this many at a time; each target's own posts still go one after the other.
SENDS_AT_ONCE = 8
#: Sent posts are recorded as sent this many at a time (one transaction), at the latest
#: when the pass ends or a target must wait for its limit.
RECORD_SENT_EVERY = 32

TargetResolver = Callable[[str], Target | None]


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 5 s, 10 s, 20 s … at most 10 min."""
    wait: timedelta = FIRST_BACKOFF * (2 ** max(attempts - 1, 0))
    return min(wait, MAX_BACKOFF)


class OutboxSender:
    """Sends due posts; ``start()`` runs it in the background until ``stop()``."""

    def __init__(
        self,
        outbox: Outbox,
        senders: dict[str, Sender],
        resolve: TargetResolver,
        limiter: SlidingWindowLimiter,
        telemetry: Telemetry,
        clock: Clock,
        *,
        runner_id: str,
        max_attempts: int = 8,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._outbox = outbox
        self._senders = senders
        self._resolve = resolve
        self._limiter = limiter
        self._telemetry = telemetry
        self._clock = clock
        self._runner_id = runner_id
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._wake = asyncio.Event()
        #: Posts this process has claimed and not finished (the loop and ``drain`` share it).
        self._inflight: set[int] = set()
        self._settled = asyncio.Event()
        self._settled.set()
        self._sends = asyncio.Semaphore(SENDS_AT_ONCE)
        #: Posts sent and not yet recorded as sent, with when they went (a batch at a time).
        self._unrecorded: list[tuple[PostRecord, datetime]] = []
        self._task: asyncio.Task[None] | None = None
        #: Called with each post once it is sent or failed (alerts settle their state).
        self.finished: list[Callable[[PostRecord], None]] = []

    def wake(self) -> None:
        """New posts were queued: look now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = IDLE_POLL
            try:
                await self.deliver_due()
                due = self._outbox.next_due_at()
                if due is not None:
                    wait = min(max(due - self._clock(), timedelta(0)), IDLE_POLL)
            except Exception:  # the loop must survive a database hiccup
                log.exception("outbox sender: a pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait.total_seconds())

    async def deliver_due(self, ids: Sequence[int] | None = None) -> int:
        """Send every post due now (only ``ids`` if given); return how many were sent.

        A target's posts go one after the other, oldest first (a digest before its word
        cloud, unless the digest must be retried later); different targets are served
        side by side (:data:`SENDS_AT_ONCE`), so that a thousand groups' evening posts do
        not wait on each other's round trips. The posts that may go now (as far as each
        target's limit has room) are claimed in one transaction first. Cancelled
        mid-pass (``stop``), the posts being sent at that moment stay claimed and are
        marked failed at the next start (at most once); those already sent are recorded
        as sent, and those not tried yet are put back as pending.
        """
        queues: dict[str, list[PostRecord]] = {}
        for post in self._outbox.due(self._clock(), ids=ids):
            queues.setdefault(post.target, []).append(post)
        plans: list[tuple[list[PostRecord], list[PostRecord], Sender, Target]] = []
        for posts in queues.values():
            route = self._route(posts)
            if route is not None:
                room = self._limiter.room(route[1].limit_key)
                plans.append((posts[:room], posts[room:], *route))
        claimed = {post.id for post in self._claim([p for now, _, _, _ in plans for p in now])}
        untried = [deque(p for p in now if p.id in claimed) for now, _, _, _ in plans]
        try:
            done = await asyncio.gather(
                *(
                    self._deliver_in_order(queue, later, sender, target)
                    for queue, (_, later, sender, target) in zip(untried, plans, strict=True)
                ),
                return_exceptions=True,  # every target finishes its send before we report
            )
        finally:
            try:
                self._record_sent()
            finally:
                self._release([post for queue in untried for post in queue])
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(n for n in done if isinstance(n, int))

    def _route(self, posts: list[PostRecord]) -> tuple[Sender, Target] | None:
        """Where these posts (all to one target) go; ``None`` after failing them if nowhere."""
        name = posts[0].target
        target = self._resolve(name)
        if target is None:
            reason = (
                f"{name}: no such target in the config any more "
                "(the group or [alerts].webhook was removed); not sent"
            )
        else:
            sender = self._senders.get(target.sender_key)
            if sender is not None:
                return sender, target
            reason = f"{name}: no sender for {target.sender_key!r}"
        for post in posts:
            self._fail(post, reason)
        return None

    async def _deliver_in_order(
        self,
        untried: deque[PostRecord],
        later: list[PostRecord],
        sender: Sender,
        target: Target,
    ) -> int:
        """Send one target's claimed posts (``untried``), then ``later`` as its limit allows.

        ``later`` are claimed a window's room at a time, after waiting for it; what is
        claimed joins ``untried``, which the pass puts back if the sending stops.
        """
        sent = 0
        async with self._sends:
            while True:
                while untried:
                    await self._limiter.acquire(target.limit_key)
                    sent += await self._send_claimed(untried.popleft(), sender, target)
                if not later:
                    return sent
                self._record_sent()  # before waiting out the target's limit
                room = await self._limiter.wait_for_room(target.limit_key)
                untried.extend(self._claim(later[:room]))
                later = later[room:]

    def _claim(self, posts: list[PostRecord]) -> list[PostRecord]:
        """Claim ``posts`` in one transaction; those this process got, in order."""
        if not posts:
            return []
        claimed = self._outbox.claim([post.id for post in posts], self._runner_id)
        self._inflight.update(claimed)
        if self._inflight:
            self._settled.clear()
        return [post for post in posts if post.id in claimed]

    def _release(self, posts: list[PostRecord]) -> None:
        """Put claimed posts that were never tried back as pending."""
        if posts:
            try:
                self._outbox.release([post.id for post in posts], self._runner_id)
            finally:
                self._settle([post.id for post in posts])

    async def drain(self, ids: Sequence[int] | None = None) -> None:
        """Deliver until nothing (of ``ids``) is pending, waiting out back-offs with ``sleep``.

        ``qunpulse run`` uses this for its own posts; tests use it with a fake clock.
        """
        while True:
            await self.deliver_due(ids)
            # Only the earliest due time: listing the pending posts (bodies and images)
            # after every page of 50 made a long drain quadratic.
            due = self._outbox.next_due_at(ids)
            if due is None:
                if not self._inflight:
                    return
                await self._settled.wait()  # the background loop is mid-send: let it finish
                continue
            await self._sleep(max((due - self._clock()).total_seconds(), 0.001))

    async def _send_claimed(self, post: PostRecord, sender: Sender, target: Target) -> bool:
        """Post a claimed post; ``True`` when sent (recorded as sent with the next batch)."""
        sent = False
        try:
            sent = await self._post(post, sender, target)
        finally:
            if not sent:  # failed, to be retried, or its outcome unknown: out of our hands
                self._settle([post.id])
        return sent

    async def _post(self, post: PostRecord, sender: Sender, target: Target) -> bool:
        if post.msg_type == "image":  # stored as base64 text in the outbox
            message = OutboundMessage("image", post.title, "", base64.b64decode(post.body))
        else:
            message = OutboundMessage(post.msg_type, post.title, post.body)  # type: ignore[arg-type]
        try:
            await sender.send(target, message)
        except TransientSendError as error:
            attempts = post.attempts + 1
            if attempts >= self._max_attempts:
                self._fail(post, f"{error} (gave up after {attempts} attempts)")
                return False
            wait = backoff(attempts)
            if target.platform == "dingtalk" and "130101" in str(error):
                wait = max(wait, DINGTALK_THROTTLE)
            self._outbox.retry_later(post.id, str(error), self._clock() + wait)
            self._telemetry.posts_retried.labels(post.platform, post.job).inc()
            log.info("outbox post %d: %s; retrying in %s", post.id, error, wait)
            return False
        except PermanentSendError as error:
            self._fail(post, str(error))
            return False
        except Exception as error:  # a bug must not leave the post in "sending" forever
            self._fail(post, f"unexpected {type(error).__name__} while sending")
            raise
        self._unrecorded.append((post, self._clock()))
        if len(self._unrecorded) >= RECORD_SENT_EVERY:
            self._record_sent()
        return True

    def _record_sent(self) -> None:
        """Record the posts sent since the last call as sent, in one transaction."""
        sent, self._unrecorded = self._unrecorded, []
        if not sent:
            return
        try:
            self._outbox.mark_sent([(post.id, at) for post, at in sent])
        except Exception:
            # They went out and stay claimed, so nobody sends them again: record them with
            # the next ones (a restart first would mark them failed, outcome unknown).
            self._unrecorded = sent + self._unrecorded
            log.warning("could not record %d sent post(s) yet", len(sent), exc_info=True)
            return
        finally:
            self._settle([post.id for post, _ in sent])
        for post, _ in sent:
            self._telemetry.posts_sent.labels(post.platform, post.job).inc()
            log.info(
                "outbox post %d (%s %s %s) sent",
                post.id,
                post.job,
                post.group_key,
                post.period_key,
            )
            self._notify(post)

    def _settle(self, post_ids: list[int]) -> None:
        """These posts are no longer in this process's hands."""
        self._inflight.difference_update(post_ids)
        if not self._inflight:
            self._settled.set()

    def _fail(self, post: PostRecord, reason: str) -> None:
        self._outbox.mark_failed(post.id, reason)
        self._telemetry.posts_failed.labels(post.platform, post.job).inc()
        # Logged here once; operators read it again in their next digest.
        log.warning("outbox post %d (%s %s) failed: %s", post.id, post.job, post.group_key, reason)
        self._notify(post)

    def _notify(self, post: PostRecord) -> None:
        for listener in list(self.finished):
            try:
                listener(post)
            except Exception:  # a listener must not undo a delivery
                log.exception("outbox post %d: a finished-listener failed", post.id)
