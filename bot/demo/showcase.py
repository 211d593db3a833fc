"""Show what qunpulse makes of the sample community: posts, figures and pictures.

Everything here goes through the same code as production: the jobs render the
leaderboard and digests, ``collect_stats`` computes the figures, the charts module draws
the pictures. The demo only decides where the output goes (the terminal and a folder).

With ``--serve``, the demo's groups post to a *sink*: routes on qunpulse's own server
that answer like the platforms' robot webhooks and print every post they receive.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import Engine

from analytics.charts import render_word_cloud, top_words_counts
from analytics.periods import resolve_period
from bot.demo.generator import Community
from bot.jobs import Jobs
from bot.platforms.base import Clock
from config import Settings
from handlers.alerts import AlertMonitor, operators_for
from storage.outbox import Outbox
from storage.queries import find_group

log = logging.getLogger(__name__)

#: The robot webhook paths each platform's sender posts to (see PLATFORMS.md).
SINK_PATHS = {
    "wecom": "/demo-sink/cgi-bin/webhook/send?key=demo",
    "dingtalk": "/demo-sink/robot/send?access_token=demo",
    "feishu": "/demo-sink/open-apis/bot/v2/hook/demo",
}


@dataclass(frozen=True)
class Section:
    """One thing the demo shows: a heading and the text as the chat would show it."""

    heading: str
    body: str


def showcase(
    settings: Settings, engine: Engine, last_day: date, clock: Clock, pictures: Path
) -> list[Section]:
    """Render today's leaderboard, yesterday's digest and last week's for every group.

    Writes each group's weekly chart and word cloud into ``pictures``.
    """
    jobs = Jobs(settings, engine, Outbox(engine), clock)
    pictures.mkdir(parents=True, exist_ok=True)
    zone = settings.zone
    sections: list[Section] = []
    for group in settings.groups:
        record = find_group(engine, group.chat_id, group.platform)
        if record is None:
            continue
        name = group.name or group.chat_id
        made = jobs.leaderboard_post(group, record, last_day, group.platform)
        if made is not None:
            sections.append(Section(f"{name} · 今日发言排行 ({group.platform})", made[1].body))
        yesterday = resolve_period("yesterday", last_day, zone)
        daily, _ = jobs.digest_post(group, record, yesterday, "daily", group.platform)
        sections.append(Section(f"{name} · 昨日日报 ({group.platform})", daily.body))
        last_week = resolve_period("last-week", last_day, zone)
        weekly, figures = jobs.digest_post(group, record, last_week, "weekly", group.platform)
        sections.append(Section(f"{name} · 上周周报 ({group.platform})", weekly.body))
        stem = pictures / record.chat_id.strip("=").replace("/", "_")
        Path(f"{stem}-weekly.png").write_bytes(jobs.weekly_chart(record, last_week))
        words = top_words_counts(figures.get("top_words"))
        if words:
            Path(f"{stem}-words.png").write_bytes(render_word_cloud(words))
    return sections


#: The order the demo shows alert kinds in, and how many it shows.
ALERT_ORDER = {"keyword": 0, "burst": 1, "negative": 2}
SHOWN_ALERTS = 6


def replay_alerts(settings: Settings, engine: Engine, last_day: date) -> list[Section]:
    """Raise the alerts the last day's messages would have raised live, in time order.

    The alert monitor runs on each scored message as the background worker would have
    called it, with the clock set to a few seconds after the message was sent.
    """
    from sqlalchemy import select

    from storage.alerts import AlertStore
    from storage.models import Message

    start = datetime.combine(last_day, time(), settings.zone)
    now = [start]
    monitor = AlertMonitor(settings, engine, lambda: now[0])
    query = (
        select(Message.id, Message.text, Message.sentiment, Message.sent_at)  # type: ignore[call-overload]
        .where(Message.sent_at >= start, Message.sentiment.is_not(None))  # type: ignore[union-attr]
        .order_by(Message.sent_at, Message.id)
    )
    quiet = logging.getLogger("handlers.alerts")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "no private channel configured" for each demo alert
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        for row in rows:
            if monitor.worth_a_look(row.text or "", row.sentiment):
                now[0] = row.sent_at + timedelta(seconds=5)
                monitor.on_messages([row.id])
    finally:
        quiet.setLevel(level)
    alerts = AlertStore(engine).list(since=start)
    # Keyword and burst alerts first: they are the ones operators act on most.
    alerts.sort(key=lambda a: (ALERT_ORDER.get(a.kind, len(ALERT_ORDER)), a.raised_at))
    sections = []
    for alert in alerts[:SHOWN_ALERTS]:
        operators = operators_for(settings, alert.platform, alert.chat_id)
        to = "、".join(operators) or "(no operators configured)"
        heading = f"私信告警 → {to} ({alert.platform}) · {alert.kind}"
        sections.append(Section(heading, alert.summary))
    if alerts:
        counts = Counter(a.kind for a in alerts)
        tally = ", ".join(f"{kind} {n}" for kind, n in counts.most_common())
        sections.append(
            Section(
                f"{len(alerts)} alerts on {last_day} ({tally}); {len(sections)} shown",
                "SnowNLP gives many plain questions low scores: if negative alerts are too "
                "many, lower alerts.negative_threshold (e.g. 0.05) and rely on "
                "alerts.keywords, which catch 投诉 / 退款 whatever the score (README: Alerts).",
            )
        )
    return sections


def add_sink(app: web.Application) -> None:
    """Routes that answer like the platforms' robot webhooks and print what they get."""

    def sink(platform: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def receive(request: web.Request) -> web.Response:
            body = await request.json()
            print(f"\n—— post to the {platform} sink ——\n{_readable(body)}", flush=True)
            if platform == "feishu":
                return web.json_response({"code": 0, "msg": "success"})
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        return receive

    app.router.add_post("/demo-sink/cgi-bin/webhook/send", sink("wecom"))
    app.router.add_post("/demo-sink/robot/send", sink("dingtalk"))
    app.router.add_post("/demo-sink/open-apis/bot/v2/hook/{key}", sink("feishu"))


def _readable(body: dict[str, object]) -> str:
    """The text a person would read in the chat (images are only named)."""
    if body.get("msgtype") == "image":
        return "[image]"
    for key in ("markdown", "text"):
        part = body.get(key)
        if isinstance(part, dict):
            return str(part.get("content") or part.get("text") or "")
    return json.dumps(body, ensure_ascii=False)[:2000]


def demo_config(database: Path, community: Community, port: int) -> str:
    """A qunpulse.toml for the demo: its database, its groups and the sink as webhooks."""
    sink = f"http://127.0.0.1:{port}"
    lines = [
        "# Written by `qunpulse demo`: the sample community and a sink that prints posts.",
        'timezone = "Asia/Shanghai"',
        "",
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "",
        "[storage]",
        f'url = "sqlite:///{database.resolve()}"',
        "",
        "[targets]                             # the source documents' example goals",
        "activity_rate = 0.15",
        "retention_d7 = 0.30",
        "conversion_rate = 0.05",
    ]
    for plan in community.groups:
        lines += [
            "",
            "[[groups]]",
            f'platform = "{plan.platform}"',
            f'chat_id = "{plan.chat_id}"',
            f'name = "{plan.name}"',
            f'webhook = "{sink}{SINK_PATHS[plan.platform]}"',
            f"operators = {json.dumps(community.operators[plan.chat_id])}",
        ]
        if plan.platform != "wecom":
            lines.append('secret = "SECdemo"')
    return "\n".join(lines) + "\n"


def next_fire_hint(settings: Settings) -> str:
    """A line that says how to see a post arrive now instead of waiting for the schedule."""
    return (
        "the leaderboard is scheduled at "
        f"{settings.schedule.leaderboard!r}; to see posts arrive now, run "
        "`qunpulse run leaderboard -c qunpulse-demo.toml` in another terminal"
    )
