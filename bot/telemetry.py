"""Prometheus metrics of the running service (``GET /metrics``).

Each app gets its own registry so that several apps in one process (tests) never mix
their counts. Labels carry platform and kind names only, never personal data.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Telemetry:
    """The counters qunpulse exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_received = Counter(
            "qunpulse_events_received",
            "Platform callbacks accepted and stored, by platform, connection kind and type.",
            ["platform", "kind", "type"],
            registry=self.registry,
        )
        self._received: dict[tuple[str, str, str], Counter] = {}
        self.events_rejected = Counter(
            "qunpulse_events_rejected",
            "Platform callbacks refused with a 4xx, by reason.",
            ["platform", "kind", "reason"],
            registry=self.registry,
        )
        self.events_duplicated = Counter(
            "qunpulse_events_duplicated",
            "Redelivered platform events acknowledged without storing anything.",
            ["platform", "kind"],
            registry=self.registry,
        )
        self.ingest_batch_size = Histogram(
            "qunpulse_ingest_batch_size",
            "Callbacks committed together in one transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.ingest_failures = Counter(
            "qunpulse_ingest_failures",
            "Callbacks answered 503 because the database did not take them.",
            registry=self.registry,
        )

        self.commands = Counter(
            "qunpulse_commands",
            "Chat commands answered, by command and outcome (sent or failed).",
            ["command", "status"],
            registry=self.registry,
        )
        self.retention_runs = Counter(
            "qunpulse_retention_runs",
            "Runs of the retention job.",
            registry=self.registry,
        )
        self.retention_expired = Counter(
            "qunpulse_retention_expired",
            "Data expired by the retention job: message texts blanked, membership events "
            "and alerts deleted.",
            ["what"],
            registry=self.registry,
        )
        for what in ("message_text", "membership_events", "alerts"):
            self.retention_expired.labels(what)
        self.dashboard_signin_failures = Counter(
            "qunpulse_dashboard_signin_failures",
            "Dashboard sign-ins refused, by reason (expired, used, signature, malformed, "
            "purpose, admin_token, origin).",
            ["reason"],
            registry=self.registry,
        )
        self.dashboard_signins = Counter(
            "qunpulse_dashboard_signins",
            "Dashboard sign-ins accepted, by how (link or admin_token).",
            ["how"],
            registry=self.registry,
        )
        self.posts_sent = Counter(
            "qunpulse_posts_sent",
            "Outbox posts the platform accepted, by platform and job.",
            ["platform", "job"],
            registry=self.registry,
        )
        self.posts_failed = Counter(
            "qunpulse_posts_failed",
            "Outbox posts marked failed (permanent error or attempts exhausted).",
            ["platform", "job"],
            registry=self.registry,
        )
        self.posts_retried = Counter(
            "qunpulse_posts_retried",
            "Post attempts put back for later (rate limit, 5xx, timeout).",
            ["platform", "job"],
            registry=self.registry,
        )
        self.job_runs = Counter(
            "qunpulse_job_runs",
            "Scheduled job runs, by job and outcome (done, failed).",
            ["job", "status"],
            registry=self.registry,
        )
        self.alerts_raised = Counter(
            "qunpulse_alerts_raised",
            "Alerts stored for operators, by kind (negative, keyword, burst, spike_*).",
            ["kind"],
            registry=self.registry,
        )
        self.alerts_suppressed = Counter(
            "qunpulse_alerts_suppressed",
            "Alerts not raised, by kind and reason (cooldown, or duplicate: already raised).",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.outbox_queue_depth = Gauge(
            "qunpulse_outbox_queue_depth",
            "Posts waiting in the outbox (pending), read from the database at scrape time.",
            registry=self.registry,
        )

    def count_stored(self, platform: str, kind: str, label: str, duplicates: int) -> None:
        """Count one stored callback and the redelivered events in it.

        Called for every callback: the labelled counter is looked up once per label set
        (``labels()`` takes a lock and builds a key each time; ten times the ``inc()``).
        """
        key = (platform, kind, label)
        received = self._received.get(key)
        if received is None:
            received = self._received[key] = self.events_received.labels(*key)
        received.inc()
        if duplicates:
            self.events_duplicated.labels(platform, kind).inc(duplicates)

    def record_retention(self, messages_blanked: int, memberships: int, alerts: int) -> None:
        """Count one retention run and what it expired."""
        self.retention_runs.inc()
        self.retention_expired.labels("message_text").inc(messages_blanked)
        self.retention_expired.labels("membership_events").inc(memberships)
        self.retention_expired.labels("alerts").inc(alerts)

    def watch_outbox(self, pending: Callable[[], int]) -> None:
        """Report the outbox queue depth by calling ``pending`` at every scrape."""
        self.outbox_queue_depth.set_function(pending)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
