"""The retention job: expire old message text, membership events and alerts.

``qunpulse retention run`` calls :func:`run_retention` once; the scheduler registers the
same function as a daily job (with its :class:`~bot.telemetry.Telemetry`, so that
``/metrics`` shows what expired).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.telemetry import Telemetry
from config import Settings
from storage.audit import record_audit
from storage.retention import blank_message_text, delete_alerts, delete_membership_events

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one run expired; a cutoff is None where the setting keeps data forever."""

    messages_blanked: int
    membership_events_deleted: int
    alerts_deleted: int
    text_cutoff: datetime | None
    membership_cutoff: datetime | None
    alerts_cutoff: datetime | None


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def run_retention(
    engine: Engine, settings: Settings, now: datetime, telemetry: Telemetry | None = None
) -> RetentionResult:
    """Apply ``[retention]`` as of ``now`` (aware), in one transaction.

    ``message_text_days``, ``membership_days`` and ``alerts_days`` each expire what is
    older than that many days before ``now``; 0 keeps it forever. Safe to run again.
    """
    if now.tzinfo is None:
        raise ValueError("run_retention needs an aware datetime for now")
    policy = settings.retention
    text_cutoff = _cutoff(now, policy.message_text_days)
    membership_cutoff = _cutoff(now, policy.membership_days)
    alerts_cutoff = _cutoff(now, policy.alerts_days)
    with engine.begin() as connection:
        blanked = blank_message_text(connection, text_cutoff) if text_cutoff else 0
        memberships = (
            delete_membership_events(connection, membership_cutoff) if membership_cutoff else 0
        )
        alerts = delete_alerts(connection, alerts_cutoff) if alerts_cutoff else 0
        if blanked or memberships or alerts:
            record_audit(
                connection,
                "retention",
                "all groups",
                {
                    "messages_blanked": blanked,
                    "membership_events_deleted": memberships,
                    "alerts_deleted": alerts,
                },
                at=now,
            )
    result = RetentionResult(
        blanked, memberships, alerts, text_cutoff, membership_cutoff, alerts_cutoff
    )
    log.info(
        "retention: blanked the text of %d messages (before %s), deleted %d membership "
        "events (before %s) and %d alerts (before %s)",
        blanked,
        _show(text_cutoff),
        memberships,
        _show(membership_cutoff),
        alerts,
        _show(alerts_cutoff),
    )
    if telemetry is not None:
        telemetry.record_retention(blanked, memberships, alerts)
    return result


def _show(cutoff: datetime | None) -> str:
    return cutoff.isoformat(timespec="seconds") if cutoff else "never: kept forever"
