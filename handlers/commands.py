"""The chat commands: one coroutine each, ``Context`` in, ``Answer`` out.

Database work runs on a worker thread (``asyncio.to_thread``) so that a slow query
never holds up the event loop, and with it the callbacks of other messages.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from analytics.labels import Locale, metric_name
from analytics.member_days import activity_streak
from analytics.metrics import Change, RankEntry, message_rank
from analytics.periods import Period, offset_segments, resolve_period
from analytics.report import format_delta, format_value
from analytics.text import count_words, top_words
from handlers import signin
from handlers.context import Answer, Context
from handlers.stats import StatsOptions, collect_stats
from handlers.texts import text
from storage import commands as repo
from storage.metric_queries import MetricQueries
from storage.privacy import set_opted_out
from storage.queries import GroupRecord, PeriodQueries

#: Rows shown when the asker gives no N.
DEFAULT_RANK_SIZE = 10
DEFAULT_WORDS = 20
DEFAULT_SILENT_DAYS = 14
#: Silent members listed before "… and N more" (the answer must fit one message).
MAX_SILENT_LISTED = 50
#: Newest texts /words counts (stored words: 20,000 take milliseconds; cut on the spot, seconds).
WORDS_SAMPLE = 20_000
#: The metrics /stats shows first, in this order; other countable metrics follow.
KEY_METRICS = (
    "messages",
    "active_members",
    "activity_rate",
    "members",
    "joins",
    "leaves",
    "removed",
    "net_growth",
    "messages_per_member",
)


def _period(ctx: Context, default: str) -> Period:
    return resolve_period(ctx.args.period or default, ctx.today, ctx.settings.zone)


def _group(ctx: Context) -> GroupRecord:
    if ctx.group is None:  # the dispatcher resolves it for needs_group commands
        raise RuntimeError(f"/{ctx.command.name} needs a group and none was resolved")
    return ctx.group


def group_label(ctx: Context, group: GroupRecord) -> str:
    """The group's name: from ``[[groups]].name``, else as the platform named it, else its id."""
    for entry in ctx.settings.groups:
        if entry.platform == group.platform and entry.chat_id == group.chat_id and entry.name:
            return entry.name
    return group.name or group.chat_id


def who(name: str | None, user_id: str) -> str:
    return name or user_id


def _note(group: GroupRecord, locale: Locale) -> list[str]:
    return ["", f"> {text('at_only_note', locale)}"] if group.source == "at_mentions_only" else []


# ---------------------------------------------------------------------- /stats


async def stats(ctx: Context) -> Answer:
    """/stats [period]: the group's key metrics against the previous period (operators)."""
    group = _group(ctx)
    period = _period(ctx, "day")
    result = await asyncio.to_thread(
        functools.partial(
            collect_stats,
            ctx.engine,
            group,
            period,
            options=StatsOptions.from_settings(ctx.settings),
        )
    )
    title = text("stats_title", ctx.locale, group=group_label(ctx, group), period=period.label())
    body = render_stats(result.to_json(), ctx.locale, public=ctx.in_group)
    return Answer("\n".join([f"**{title}**", "", *body, *_note(group, ctx.locale)]), title)


def render_stats(document: Mapping[str, Any], locale: Locale, *, public: bool) -> list[str]:
    """Lines of a /stats answer from :meth:`GroupStats.to_json`.

    Reads the document by metric id, so metrics added to the catalogue later (top words,
    sentiment) show up here without changing the command.

    Args:
        document: the stats document.
        locale: the language.
        public: the answer goes into a group: opted-out members are left out.
    """
    lines: list[str] = []
    countable = [
        key
        for key, value in document.items()
        if isinstance(value, Mapping) and "value" in value and "previous" in value
    ]
    ordered = [k for k in KEY_METRICS if k in countable] + [
        k for k in countable if k not in KEY_METRICS
    ]
    for key in ordered:
        change = Change(document[key]["value"], document[key]["previous"])
        lines.append(
            "- "
            + text(
                "stats_line",
                locale,
                name=metric_name(key, locale),
                value=format_value(key, change.value),
                delta=format_delta(key, change),
            )
        )
    senders = [
        entry
        for entry in document.get("message_rank") or []
        if not (public and entry.get("opted_out"))
    ][:5]
    if senders:
        lines += ["", f"**{text('top_senders', locale)}**"]
        for index, entry in enumerate(senders, start=1):
            marker = f" {text('hidden_opted_out', locale)}" if entry.get("opted_out") else ""
            count = text("messages_n", locale, n=entry["messages"])
            lines.append(f"{index}. {who(entry.get('name'), entry['member'])}{marker} · {count}")
    words = word_pairs(document.get("top_words"))
    if words:
        lines += [
            "",
            f"**{text('top_words', locale)}**",
            "、".join(f"{w}({n})" for w, n in words[:10]),
        ]
    sentiment = render_sentiment(document.get("sentiment_split"), locale)
    if sentiment:
        lines += ["", f"**{text('sentiment', locale)}**", sentiment]
    return lines


def word_pairs(value: object) -> list[tuple[str, int]]:
    """Read a ``top_words`` metric.

    Accepts ``[{"word", "count"}]``, ``[[word, count]]`` or ``{word: count}``, so the
    command keeps working whichever shape the metric settles on.
    """
    pairs: list[tuple[str, int]] = []
    if isinstance(value, Mapping) and "value" in value:  # wrapped like a countable metric
        value = value["value"]
    if isinstance(value, Mapping):
        return [(str(k), int(v)) for k, v in value.items() if isinstance(v, int | float)]
    if not isinstance(value, Sequence) or isinstance(value, str):
        return pairs
    for item in value:
        if isinstance(item, Mapping):
            word = item.get("word") or item.get("text") or item.get("term")
            count = item.get("count", item.get("weight", item.get("n")))
            if isinstance(word, str) and isinstance(count, int | float):
                pairs.append((word, int(count)))
        elif (
            isinstance(item, Sequence)
            and not isinstance(item, str)
            and len(item) >= 2
            and isinstance(item[1], int | float)
        ):
            pairs.append((str(item[0]), int(item[1])))
    return pairs


def render_sentiment(value: object, locale: Locale) -> str | None:
    """Read a ``sentiment_split`` metric: shares (or counts) of positive / neutral / negative."""
    if not isinstance(value, Mapping):
        return None
    if "value" in value and isinstance(value["value"], Mapping):
        value = value["value"]
    parts: list[str] = []
    for key in ("positive", "neutral", "negative"):
        share = value.get(key)
        if isinstance(share, Mapping):
            share = share.get("share", share.get("value"))
        if isinstance(share, float) and 0.0 <= share <= 1.0:
            parts.append(f"{text(key, locale)} {share * 100:.0f}%")
        elif isinstance(share, int | float):
            parts.append(f"{text(key, locale)} {share}")
    mean = value.get("mean", value.get("mean_score"))
    if isinstance(mean, int | float):
        parts.append(f"{text('mean', locale)} {mean:.2f}")
    return " · ".join(parts) or None


# ----------------------------------------------------------------------- /rank


def _ranking(ctx: Context, group: GroupRecord, period: Period) -> list[RankEntry]:
    start, end = period.start_utc, period.end_utc
    with ctx.engine.connect() as connection:
        activity = PeriodQueries(connection, group.id).member_activity(
            start, end, offset_segments(period.zone, start, end), count_days=False
        )
    return message_rank(activity)


async def rank(ctx: Context) -> Answer:
    """/rank [period] [N]: the message-rank leaderboard; opted-out members are hidden."""
    group = _group(ctx)
    period = _period(ctx, "day")
    entries = await asyncio.to_thread(_ranking, ctx, group, period)
    visible = [e for e in entries if not e.opted_out][: ctx.args.count or DEFAULT_RANK_SIZE]
    title = text("rank_title", ctx.locale, group=group_label(ctx, group), period=period.label())
    lines = [f"**{title}**", ""]
    if not visible:
        lines.append(text("rank_empty", ctx.locale))
    for position, entry in enumerate(visible, start=1):
        count = text("messages_n", ctx.locale, n=entry.messages)
        lines.append(f"{position}. {who(entry.name, entry.member)} · {count}")
    return Answer("\n".join([*lines, *_note(group, ctx.locale)]), title)


# ---------------------------------------------------------------------- /words


def _top_words(ctx: Context, group: GroupRecord, period: Period) -> list[tuple[str, int]]:
    # The catalogue's top_words, counted over a larger sample of the newest texts (stored
    # words are only split and counted: 20,000 texts take a few milliseconds).
    options = StatsOptions.from_settings(ctx.settings)
    with ctx.engine.connect() as connection:
        texts = MetricQueries(connection, [group.id], excluded_users=options.exclude_users).texts(
            period.start_utc, period.end_utc, WORDS_SAMPLE
        )
    return top_words(count_words(options.text_config(), texts), DEFAULT_WORDS)


async def words(ctx: Context) -> Answer:
    """/words [period]: the most frequent words, as a ranked list."""
    group = _group(ctx)
    period = _period(ctx, "week")
    pairs = await asyncio.to_thread(_top_words, ctx, group, period)
    title = text("words_title", ctx.locale, group=group_label(ctx, group), period=period.label())
    lines = [f"**{title}**", ""]
    if not pairs:
        lines.append(text("words_empty", ctx.locale))
    lines += [f"{i}. {w} · {n}" for i, (w, n) in enumerate(pairs[:DEFAULT_WORDS], start=1)]
    return Answer("\n".join([*lines, *_note(group, ctx.locale)]), title)


# --------------------------------------------------------------------- /silent


async def silent(ctx: Context) -> Answer:
    """/silent [days]: members with no message for N days; always answered privately."""
    group = _group(ctx)
    days = ctx.args.days or DEFAULT_SILENT_DAYS
    since = ctx.clock() - timedelta(days=days)
    members = await asyncio.to_thread(repo.silent_members, ctx.engine, group.id, since)
    zone = ctx.settings.zone
    title = text("silent_title", ctx.locale, group=group_label(ctx, group), days=days)
    lines = [f"**{title}**", ""]
    if not members:
        lines.append(text("silent_none", ctx.locale, days=days))
    for member in members[:MAX_SILENT_LISTED]:
        if member.last_message_at is None:
            first = member.first_seen_at.astimezone(zone).date().isoformat()
            last = text("never_spoke", ctx.locale, first=first)
        else:
            last = member.last_message_at.astimezone(zone).date().isoformat()
        lines.append(
            "- " + text("silent_line", ctx.locale, who=who(member.name, member.user_id), last=last)
        )
    if len(members) > MAX_SILENT_LISTED:
        lines.append(text("silent_more", ctx.locale, n=len(members) - MAX_SILENT_LISTED))
    if members:
        lines += ["", text("silent_hint", ctx.locale)]
    return Answer("\n".join(lines), title, private=True)


# ------------------------------------------------------------------------- /me

#: How far back /me looks for the active streak.
STREAK_WINDOW_DAYS = 400


def _me(
    ctx: Context, group: GroupRecord, period: Period
) -> tuple[list[RankEntry], set[date], datetime | None, bool]:
    platform, user = ctx.event.platform, ctx.event.sender.user_id
    entries = _ranking(ctx, group, period)
    today_end = resolve_period("day", ctx.today, period.zone).end_utc
    start = today_end - timedelta(days=STREAK_WINDOW_DAYS)
    days = repo.active_dates(
        ctx.engine,
        group.id,
        platform,
        user,
        start,
        today_end,
        offset_segments(period.zone, start, today_end),
    )
    first = repo.first_seen(ctx.engine, group.id, platform, user)
    return entries, days, first, repo.is_opted_out(ctx.engine, platform, user)


async def me(ctx: Context) -> Answer:
    """/me [period]: the asker's own count, rank, active streak and first-seen date."""
    group = _group(ctx)
    period = _period(ctx, "week")
    entries, days, first, opted_out = await asyncio.to_thread(_me, ctx, group, period)
    user = ctx.event.sender.user_id
    mine = next((e for e in entries if e.member == user), None)
    name = ctx.event.sender.name or (mine.name if mine else None)
    title = text("me_title", ctx.locale, who=who(name, user), group=group_label(ctx, group))
    lines = [
        f"**{title}**",
        "",
        "- "
        + text("me_count", ctx.locale, period=period.label(), count=mine.messages if mine else 0),
        "- "
        + (
            text("me_rank", ctx.locale, rank=mine.position, total=len(entries))
            if mine
            else text("me_no_rank", ctx.locale)
        ),
        "- " + text("me_streak", ctx.locale, days=activity_streak(days, ctx.today)),
    ]
    if first is not None:
        first_day = first.astimezone(ctx.settings.zone).date().isoformat()
        lines.append("- " + text("me_first_seen", ctx.locale, date=first_day))
    if opted_out:
        lines += ["", text("me_opted_out", ctx.locale)]
    # An opted-out member's figures never go into a group, not even on their own request.
    return Answer("\n".join(lines), title, private=opted_out and ctx.in_group)


# ------------------------------------------------------------- /optout /optin


async def optout(ctx: Context) -> Answer:
    """/optout: hide the asker from public rankings and group posts."""
    await asyncio.to_thread(
        functools.partial(
            set_opted_out,
            ctx.engine,
            ctx.event.platform,
            ctx.event.sender.user_id,
            True,
            by="member",
        )
    )
    return Answer(text("optout_done", ctx.locale))


async def optin(ctx: Context) -> Answer:
    """/optin: show the asker in public rankings again."""
    await asyncio.to_thread(
        functools.partial(
            set_opted_out,
            ctx.engine,
            ctx.event.platform,
            ctx.event.sender.user_id,
            False,
            by="member",
        )
    )
    return Answer(text("optin_done", ctx.locale))


# ------------------------------------------------------------------ /dashboard


def _dashboard_link(ctx: Context, public_url: str) -> str:
    now = ctx.clock()
    key = signin.signing_key(ctx.settings, ctx.engine, now)
    viewer = signin.Viewer(
        ctx.event.platform,
        ctx.event.sender.user_id,
        groups=tuple(signin.granted_groups(ctx.group, ctx.is_operator)),
    )
    lifetime = timedelta(minutes=ctx.settings.dashboard.link_minutes)
    return signin.public_link(public_url, signin.make_link_token(key, viewer, now, lifetime))


async def dashboard(ctx: Context) -> Answer:
    """/dashboard: a single-use sign-in link to the web dashboard, sent privately."""
    public_url = ctx.settings.server.public_url
    if not public_url:
        return Answer(text("dashboard_no_public_url", ctx.locale))
    url = await asyncio.to_thread(_dashboard_link, ctx, public_url)
    body = text(
        "dashboard_link",
        ctx.locale,
        url=url,
        minutes=ctx.settings.dashboard.link_minutes,
        hours=ctx.settings.dashboard.session_hours,
    )
    title = text("dashboard_title", ctx.locale)
    # The link signs its holder in: it must never be posted where others can read it.
    return Answer(f"**{title}**\n\n{body}", title, private=True)


# ----------------------------------------------------------------------- /help


def help_text(ctx: Context, problem: str | None = None) -> Answer:
    """The commands this person may use, with what went wrong first if anything did."""
    locale = ctx.locale
    lines: list[str] = []
    if problem:
        lines += [text("problem", locale, problem=problem), ""]
    title = text("help_title", locale)
    lines += [f"**{title}**", text("help_intro", locale), ""]
    available = ctx.registry.available(operator=ctx.is_operator)
    for command in available:
        names = " ".join(f"/{n}" for n in command.names)
        usage = f" {command.usage[locale]}" if command.usage[locale] else ""
        lock = "🔒 " if command.audience == "operators" else ""
        colon = ":" if locale == "zh_CN" else ": "
        lines.append(f"- {lock}{names}{usage}{colon}{command.summary[locale]}")
    lines += ["", text("help_periods", locale)]
    if any(c.audience == "operators" for c in available):
        lines.append(text("help_operator_note", locale))
    return Answer("\n".join(lines), title)


async def help_command(ctx: Context) -> Answer:
    """/help: the commands this person may use."""
    return help_text(ctx)
