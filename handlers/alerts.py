"""Private alerts to a group's operators: the reaction to scored messages, and the scan.

- :meth:`AlertMonitor.on_messages` runs after the sentiment worker scored a batch (it is
  one of ``service.sentiment.listeners``): a message scoring at or below
  ``alerts.negative_threshold``, or containing an ``alerts.keywords`` word, raises one
  alert; ``burst_count`` negative messages of one group within ``burst_window_minutes``
  raise one burst alert, and from then on negative messages of that group raise no single
  alerts while the burst's cooldown lasts.
- :meth:`AlertMonitor.scan` is the ``alert_scan`` job: the ``anomalies`` metric's own
  computation (mean + σ of the same hour of week) over the current and the previous
  hour; a spike of messages, negative messages or leaves raises one alert.

Alerts are stored with their outbox posts in one transaction (:mod:`storage.alerts`)
and only ever go to operators in private (or to ``[alerts].webhook``), never into the
member group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from analytics import catalogue
from analytics.alerts import (
    QuotedMessage,
    matched_keywords,
    render_burst_alert,
    render_message_alert,
    render_spike_alert,
)
from analytics.periods import offset_segments
from bot.telemetry import Telemetry
from config import Settings
from config.settings import (
    BotSettings,
    DingtalkRobotSettings,
    FeishuSettings,
    WecomAppSettings,
)
from handlers.stats import StatsOptions
from storage.alerts import (
    AlertStore,
    Delivery,
    GroupRef,
    MessageContext,
    NewAlert,
    recent_groups,
)
from storage.metric_queries import MetricQueries
from storage.outbox import PostRecord

log = logging.getLogger(__name__)

#: Messages older than this when scored raise no alert: a backlog (after downtime, or
#: an imported history) is news to nobody, and an operator cannot act on it any more.
STALE_AFTER = timedelta(hours=1)
#: ``anomalies`` measures and the alert kinds their spikes raise.
SPIKE_KINDS = {
    "messages": "spike_messages",
    "negative": "spike_negative",
    "leaves": "spike_leaves",
}
#: Outbox target names are at most this long (``outbox_post.target``).
MAX_TARGET = 128

#: The current time (aware); the service's clock.
Clock = Callable[[], datetime]


def operators_for(settings: Settings, platform: str, chat_id: str) -> tuple[str, ...]:
    """A group's operators: its ``[[groups]]`` ``operators`` plus ``[operators].<platform>``."""
    found: list[str] = []
    for group in settings.groups:
        if group.platform == platform and group.chat_id == chat_id:
            found += group.operators
    found += getattr(settings.operators, platform, ())
    return tuple(dict.fromkeys(user for user in found if user))


def private_bot(settings: Settings, platform: str) -> tuple[int, BotSettings] | None:
    """The ``[[bots]]`` entry (index, settings) that sends private messages on ``platform``.

    WeCom: the first ``wecom_app``; DingTalk: the first ``dingtalk_robot`` with a
    ``robot_code``; Feishu: the first ``feishu`` app.
    """
    for index, bot in enumerate(settings.bots):
        if platform == "wecom" and isinstance(bot, WecomAppSettings):
            return index, bot
        if platform == "dingtalk" and isinstance(bot, DingtalkRobotSettings) and bot.robot_code:
            return index, bot
        if platform == "feishu" and isinstance(bot, FeishuSettings):
            return index, bot
    return None


_BOT_HINT = {
    "wecom": 'a [[bots]] entry with kind = "wecom_app" (corp_id, agent_id, secret)',
    "dingtalk": 'a [[bots]] entry with kind = "dingtalk_robot" and its robot_code',
    "feishu": 'a [[bots]] entry with kind = "feishu" (app_id, app_secret)',
}


def private_targets(settings: Settings, platform: str, chat_id: str) -> tuple[list[str], str]:
    """Outbox target names for the group's operators, and why there are none (or "")."""
    operators = operators_for(settings, platform, chat_id)
    if not operators:
        return [], (
            f"no operators for {platform} group {chat_id}: set operators in its [[groups]] "
            f"entry or [operators].{platform}"
        )
    if private_bot(settings, platform) is None:
        return [], f"no bot can message {platform} operators privately: add {_BOT_HINT[platform]}"
    if platform == "feishu":  # the message API takes one user per call
        return [f"operator:feishu:{user}" for user in operators], ""
    name = f"operators:{platform}:{chat_id}"
    if len(name) > MAX_TARGET:
        return [], f"chat id {chat_id!r} is too long for an outbox target"
    return [name], ""


class AlertMonitor:
    """Raises alerts from scored messages and from the hourly anomalies scan."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        telemetry: Telemetry | None = None,
        webhook_platform: str | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._telemetry = telemetry
        self._store = AlertStore(engine)
        self._webhook_platform = webhook_platform
        self._alerts = settings.alerts
        self._options = StatsOptions.from_settings(settings)

    # --- reacting to scored messages -----------------------------------------------

    def worth_a_look(self, text: str, sentiment: float) -> bool:
        """Whether a scored message could alert (cheap: no database)."""
        return sentiment <= self._alerts.negative_threshold or bool(
            matched_keywords(text, self._alerts.keywords)
        )

    def on_messages(self, message_ids: Sequence[int]) -> list[int]:
        """Raise the alerts of newly scored messages; return the outbox posts queued."""
        queued: list[int] = []
        now = self._clock()
        contexts = self._store.contexts(message_ids)
        for message_id in sorted(contexts):
            message = contexts[message_id]
            if message.is_bot or message.sentiment is None or not message.text:
                continue
            if message.sent_at < now - STALE_AFTER:
                continue
            keywords = matched_keywords(message.text, self._alerts.keywords)
            negative = message.sentiment <= self._alerts.negative_threshold
            if negative:
                window = self._store.negatives_up_to(
                    message.group_id,
                    message.sent_at - timedelta(minutes=self._alerts.burst_window_minutes),
                    message,
                    self._alerts.negative_threshold,
                )
                if len(window) >= self._alerts.burst_count:
                    queued += self._burst(message, window, now)
                    if not keywords:
                        continue  # part of the burst: its summary speaks for it
            if keywords or negative:
                queued += self._single(message, keywords, now)
        return queued

    def _group_name(self, group: MessageContext | GroupRef) -> str:
        platform = group.platform
        chat_id = group.chat_id
        for entry in self._settings.groups:
            if entry.platform == platform and entry.chat_id == chat_id and entry.name:
                return entry.name
        name = group.group_name if isinstance(group, MessageContext) else group.name
        return name or chat_id

    def _quoted(self, message: MessageContext) -> QuotedMessage:
        return QuotedMessage(
            message.display_name,
            message.user_id,
            message.sent_at.astimezone(self._settings.zone),
            message.text,
            message.sentiment,
        )

    def _single(self, message: MessageContext, keywords: list[str], now: datetime) -> list[int]:
        kind = "keyword" if keywords else "negative"
        title, body = render_message_alert(
            kind=kind,
            group=self._group_name(message),
            message=self._quoted(message),
            keywords=keywords,
            threshold=self._alerts.negative_threshold,
            locale=self._settings.locale,
        )
        alert = NewAlert(
            group_id=message.group_id,
            group_key=f"{message.platform}:{message.chat_id}",
            kind=kind,
            dedupe_key=f"message:{message.message_id}",
            cooldown_subject=str(message.member_id),
            title=title,
            summary=body,
            member_id=message.member_id,
            message_id=message.message_id,
            member_ids=(message.member_id,),
            sender_user_id=message.user_id,
            sender_name=message.display_name,
            text=message.text,
            score=message.sentiment,
            keyword=", ".join(keywords)[:128] or None,
            message_at=message.sent_at,
        )
        return self._raise(alert, message.platform, message.chat_id, now)

    def _burst(
        self, message: MessageContext, window: list[MessageContext], now: datetime
    ) -> list[int]:
        title, body = render_burst_alert(
            group=self._group_name(message),
            messages=[self._quoted(m) for m in window],
            window_minutes=self._alerts.burst_window_minutes,
            burst_count=self._alerts.burst_count,
            locale=self._settings.locale,
        )
        alert = NewAlert(
            group_id=message.group_id,
            group_key=f"{message.platform}:{message.chat_id}",
            kind="burst",
            dedupe_key=f"burst:{message.message_id}",
            cooldown_subject="",
            title=title,
            summary=body,
            message_id=message.message_id,
            member_ids=tuple(dict.fromkeys(m.member_id for m in window)),
            message_at=message.sent_at,
        )
        return self._raise(alert, message.platform, message.chat_id, now)

    # --- the alert_scan job --------------------------------------------------------

    def scan(self) -> list[int]:
        """Look for spikes in the current and the previous local hour of every active group.

        The baseline and the test are the ``anomalies`` metric's (storage hourly counts,
        :func:`analytics.catalogue.anomalies`), so an alert and the digest agree.
        """
        now = self._clock()
        zone = self._settings.zone
        opts = self._options
        this_hour = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        hours = [
            (this_hour - timedelta(hours=1)).replace(tzinfo=None),
            this_hour.replace(tzinfo=None),
        ]
        start = (this_hour - timedelta(hours=1) - timedelta(weeks=opts.anomaly_weeks)).astimezone(
            zone
        )
        end = now + timedelta(seconds=1)
        segments = offset_segments(zone, start, end)
        queued: list[int] = []
        for group in recent_groups(self._engine, this_hour - timedelta(hours=1)):
            with self._engine.connect() as connection:
                more = MetricQueries(connection, [group.id], excluded_users=opts.exclude_users)
                hourly = more.hourly(start, end, segments, opts.negative)
                series = {
                    "messages": {h.hour: h.messages for h in hourly},
                    "negative": {h.hour: h.negative for h in hourly},
                    "leaves": more.hourly_leaves(start, end, segments),
                }
            found = catalogue.anomalies(
                series, hours, opts.anomaly_weeks, opts.anomaly_sigmas, opts.anomaly_minimums
            )
            for anomaly in found:
                queued += self._spike(group, anomaly, now)
        return queued

    def _spike(self, group: GroupRef, anomaly: dict[str, Any], now: datetime) -> list[int]:
        kind = SPIKE_KINDS[str(anomaly["measure"])]
        title, body = render_spike_alert(
            kind=kind,
            group=self._group_name(group),
            anomaly=anomaly,
            weeks=self._options.anomaly_weeks,
            locale=self._settings.locale,
        )
        alert = NewAlert(
            group_id=group.id,
            group_key=f"{group.platform}:{group.chat_id}",
            kind=kind,
            dedupe_key=f"spike:{group.id}:{anomaly['measure']}:{anomaly['hour']}",
            cooldown_subject="",
            title=title,
            summary=body,
        )
        return self._raise(alert, group.platform, group.chat_id, now)

    # --- storing -------------------------------------------------------------------

    def _raise(self, alert: NewAlert, platform: str, chat_id: str, now: datetime) -> list[int]:
        targets, problem = private_targets(self._settings, platform, chat_id)
        deliveries = [
            Delivery("alert", platform, target, part=str(i) if platform == "feishu" else "")
            for i, target in enumerate(targets)
        ]
        if self._webhook_platform is not None:
            deliveries.append(Delivery("alert_webhook", self._webhook_platform, "alerts.webhook"))
        raised = self._store.raise_alert(
            alert,
            deliveries,
            now,
            timedelta(minutes=self._alerts.cooldown_minutes),
            undeliverable=problem,
        )
        if raised.alert_id is None:
            if self._telemetry is not None:
                self._telemetry.alerts_suppressed.labels(alert.kind, raised.skipped).inc()
            return []
        if self._telemetry is not None:
            self._telemetry.alerts_raised.labels(alert.kind).inc()
        if problem:
            # Stored (listable with `qunpulse alerts`), but nobody hears of it privately.
            log.warning(
                "alert %d (%s) stored but not sent privately: %s",
                raised.alert_id,
                alert.kind,
                problem,
            )
        log.info("alert %d (%s) raised for %s", raised.alert_id, alert.kind, alert.group_key)
        return raised.outbox_ids

    def on_post_finished(self, post: PostRecord) -> None:
        """An outbox post settled: bring its alert's state up to date."""
        if post.job not in ("alert", "alert_webhook"):
            return
        alert_id = int(post.period_key.split(":", 1)[0])
        self._store.settle(alert_id)
