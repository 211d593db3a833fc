"""The ``qunpulse`` command line.

User mistakes (bad config, unknown group, bad period) print one clear line to stderr and
exit 2; there is no traceback for them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from config import ConfigError, Settings, load_settings
from config.settings import JOBS

EXIT_USAGE = 2


class UsageError(Exception):
    """Something the user asked for cannot be done; the message says what to change."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file (default ./qunpulse.toml, then $QUNPULSE_CONFIG)",
    )
    parser = argparse.ArgumentParser(
        prog="qunpulse",
        description="群脉 qunpulse: community analytics for WeCom, DingTalk and Feishu groups.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "serve", parents=[config], help="run the callback server (migrates the database first)"
    )

    stats = commands.add_parser("stats", parents=[config], help="print a group's metrics")
    target = stats.add_mutually_exclusive_group(required=True)
    target.add_argument("--group", metavar="CHAT_ID", help="the group's chat id")
    target.add_argument(
        "--operator", metavar="USER", help="all groups this operator runs (config operators)"
    )
    stats.add_argument("--platform", choices=("wecom", "dingtalk", "feishu"))
    stats.add_argument(
        "--period",
        default="day",
        help="day, yesterday, week, last-week, month, last-month or Nd (default: day)",
    )
    stats.add_argument("--date", type=_date, help="a day inside the period (default: today)")
    stats.add_argument("--from", dest="first", type=_date, help="first day of an explicit range")
    stats.add_argument("--to", dest="last", type=_date, help="last day of an explicit range")
    stats.add_argument("--json", action="store_true", help="print JSON keyed by metric id")
    stats.add_argument(
        "--metrics", metavar="A,B,C", help="only these metric ids (default: every one)"
    )

    sentiment = commands.add_parser("sentiment", help="message sentiment (SnowNLP)")
    sentiment_commands = sentiment.add_subparsers(
        dest="sentiment_command", required=True, metavar="ACTION"
    )
    rescore = sentiment_commands.add_parser(
        "rescore", parents=[config], help="score text messages again (all, or unscored only)"
    )
    rescore.add_argument("--group", metavar="CHAT_ID", help="only this group")
    rescore.add_argument(
        "--unscored", action="store_true", help="only messages without a score yet"
    )

    demo = commands.add_parser(
        "demo",
        parents=[config],
        help="create a sample community and show what qunpulse makes of it",
    )
    demo.add_argument(
        "--db", default="qunpulse-demo.db", metavar="FILE", help="SQLite file to (re)create"
    )
    demo.add_argument("--groups", type=int, default=3, help="number of groups (default 3)")
    demo.add_argument("--members", type=int, default=300, help="members per group (default 300)")
    demo.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    demo.add_argument(
        "--seed", type=int, default=2026, help="the same seed gives the same community"
    )
    demo.add_argument("--date", type=_date, help="the last day of the history (default: today)")
    demo.add_argument(
        "--serve", action="store_true", help="then run the server on it, posts going to a sink"
    )
    demo.add_argument("--port", type=int, default=8080, help="port for --serve (default 8080)")
    history = commands.add_parser(
        "import", parents=[config], help="load history: archive JSON lines, messages or orders CSV"
    )
    history.add_argument("file", metavar="FILE", help="the file to import")
    history.add_argument(
        "--format",
        choices=("archive-jsonl", "csv", "orders-csv"),
        help="the file's format (default: guessed from its first line)",
    )
    history.add_argument(
        "--group", metavar="CHAT_ID", help="import only this group's messages (others skipped)"
    )
    history.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    history.add_argument(
        "--strict", action="store_true", help="write nothing if any row is bad (checked first)"
    )

    archive = commands.add_parser("archive", help="the WeCom session archive (会话内容存档)")
    archive_commands = archive.add_subparsers(
        dest="archive_command", required=True, metavar="ACTION"
    )
    archive_commands.add_parser(
        "pull", parents=[config], help="pull new archive records once, from the stored seq"
    )

    _add_privacy_commands(commands, config)

    roster = commands.add_parser("roster", help="group member lists from the platforms")
    roster_commands = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    roster_sync = roster_commands.add_parser(
        "sync", parents=[config], help="pull member lists where the bot may (WeCom, Feishu)"
    )
    roster_sync.add_argument("--group", metavar="CHAT_ID", help="only this group")

    wecom_stats = commands.add_parser(
        "wecom-stats", help="WeCom's own daily customer-group statistics"
    )
    wecom_stats_commands = wecom_stats.add_subparsers(
        dest="wecom_stats_command", required=True, metavar="ACTION"
    )
    wecom_pull = wecom_stats_commands.add_parser(
        "pull", parents=[config], help="fetch the last N days (WeCom keeps 180)"
    )
    wecom_pull.add_argument(
        "--days", type=int, default=30, choices=range(1, 181), metavar="N", help="1-180, default 30"
    )
    run = commands.add_parser("run", parents=[config], help="run one scheduled job now")
    run.add_argument("job", choices=JOBS)
    run.add_argument("--group", metavar="CHAT_ID", help="only this group")
    run.add_argument(
        "--date",
        type=_date,
        help="a day inside the period the post is about (default: today for the "
        "leaderboard, yesterday for the daily digest, last week for the weekly one)",
    )

    outbox = commands.add_parser("outbox", help="queued, sent and failed posts")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    listing = outbox_commands.add_parser("list", parents=[config], help="list posts, newest first")
    listing.add_argument("--state", choices=("pending", "sending", "sent", "failed"))
    listing.add_argument("--limit", type=int, default=50)

    alerts = commands.add_parser(
        "alerts", parents=[config], help="stored alerts to operators, newest first"
    )
    alerts.add_argument("--group", metavar="CHAT_ID", help="only this group")
    alerts.add_argument("--platform", choices=("wecom", "dingtalk", "feishu"))
    alerts.add_argument("--since", type=_date, help="raised on or after this local day")
    alerts.add_argument("--limit", type=int, default=100)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", parents=[config], help="apply migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    command: Callable[[argparse.Namespace, Settings], int] = {
        "serve": _serve,
        "stats": _stats,
        "db": _db,
        "demo": _demo,
        "import": _import,
        "archive": _archive,
        "member": _member,
        "retention": _retention,
        "audit": _audit,
        "export": _export,
        "roster": _roster,
        "wecom-stats": _wecom_stats,
        "run": _run,
        "outbox": _outbox,
        "alerts": _alerts,
        "sentiment": _sentiment,
    }[args.command]
    try:
        settings = load_settings(args.config)
        return command(args, settings)
    except (ConfigError, UsageError) as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE


def _serve(_args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import serve

    serve(settings)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.app import system_clock
    from bot.jobs import day_for

    today = datetime.now(settings.zone).date()
    day = args.date or day_for(args.job, today)
    if args.job == "weekly_digest" and args.date is None:
        day = today - timedelta(days=7)
    if args.group and not any(g.chat_id == args.group for g in settings.groups):
        raise UsageError(f"--group: no [[groups]] entry with chat_id {args.group!r}")
    return asyncio.run(_run_job(settings, args.job, day, args.group, system_clock))


async def _run_job(
    settings: Settings, job: str, day: date, chat_id: str | None, clock: Callable[[], datetime]
) -> int:
    import asyncio

    from bot.app import build_outbound, run_and_deliver
    from bot.telemetry import Telemetry
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    http, outbox, sender, jobs, _scheduler = build_outbound(settings, engine, Telemetry(), clock)
    try:
        # Delivers what this run queues, batch by batch; posts queued earlier belong to `serve`.
        result = await run_and_deliver(jobs, sender, job, day, chat_id)
        for note in result.notes:
            print(note, file=sys.stderr)
        failed = 0
        for post in outbox.find(result.queued):
            print(f"{post.job} {post.group_key} {post.period_key}: {post.state}")
            if post.state == "failed":
                print(f"  {post.error}", file=sys.stderr)
                failed += 1
        print(f"{job}: {len(result.queued)} post(s) queued, {result.existing} already queued")
        return 1 if failed else 0
    finally:
        await asyncio.to_thread(jobs.close)
        await http.aclose()
        engine.dispose()


def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from storage.db import make_engine, upgrade
    from storage.outbox import Outbox

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    outbox = Outbox(engine)
    posts = outbox.list(args.state, limit=args.limit)
    counts = outbox.counts()
    engine.dispose()
    table = Table("id", "state", "job", "group", "period", "attempts", "when", "error")
    zone = settings.zone
    for post in posts:
        when = post.sent_at or post.next_attempt_at
        table.add_row(
            str(post.id),
            post.state,
            post.job,
            post.group_key,
            post.period_key,
            str(post.attempts),
            when.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            post.error or "",
        )
    console = Console(width=160)
    console.print(table)
    console.print(", ".join(f"{state}: {count}" for state, count in counts.items()))
    return 0


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from storage.alerts import AlertStore
    from storage.queries import AmbiguousGroup, find_group

    engine = _open_database(settings)
    zone = settings.zone
    try:
        group_id = None
        if args.group:
            try:
                group = find_group(engine, args.group, args.platform)
            except AmbiguousGroup as error:
                raise UsageError(f"--group: {error}; add --platform") from None
            if group is None:
                raise UsageError(f"--group: no group {args.group!r} is stored")
            group_id = group.id
        since = None
        if args.since:
            since = datetime.combine(args.since, datetime.min.time(), tzinfo=zone)
        store = AlertStore(engine)
        alerts = store.list(group_id=group_id, since=since, limit=args.limit)
        counts = store.counts()
    finally:
        engine.dispose()
    table = Table("id", "raised", "kind", "state", "group", "sender", "score", "text", "error")
    for alert in alerts:
        sender = alert.sender_user_id or ""
        if alert.sender_name and alert.sender_name != alert.sender_user_id:
            sender = f"{alert.sender_name} ({sender})"
        text = " ".join((alert.text or alert.summary.splitlines()[0]).split())
        table.add_row(
            str(alert.id),
            alert.raised_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            alert.kind,
            alert.state,
            f"{alert.platform}:{alert.chat_id}",
            sender,
            "" if alert.score is None else f"{alert.score:.2f}",
            text[:60],
            alert.error or "",
        )
    console = Console(width=200)
    console.print(table)
    by_kind: dict[str, int] = {}
    for (kind, _state), count in counts.items():
        by_kind[kind] = by_kind.get(kind, 0) + count
    summary = ", ".join(f"{kind}: {count}" for kind, count in sorted(by_kind.items()))
    console.print(f"{len(alerts)} shown; stored by kind: {summary or 'none'}")
    return 0


def _db(_args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    engine.dispose()
    print("database is up to date")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from analytics.periods import resolve_period
    from bot.app import serve, system_clock
    from bot.demo.build import build_demo
    from bot.demo.generator import DemoSize
    from bot.demo.showcase import (
        add_sink,
        demo_config,
        next_fire_hint,
        replay_alerts,
        showcase,
    )
    from bot.terminal import print_stats
    from handlers.stats import StatsOptions, collect_stats
    from storage.db import make_engine
    from storage.queries import find_group

    if min(args.groups, args.members, args.days) < 1:
        raise UsageError("--groups, --members and --days must be at least 1")
    last_day = args.date or datetime.now(settings.zone).date()
    path = Path(args.db)
    print(f"building the sample community in {path} (seed {args.seed}) …", file=sys.stderr)
    size = DemoSize(args.groups, args.members, args.days)
    community = build_demo(path, args.seed, size, last_day, settings)
    config = path.with_suffix(".toml")
    config.write_text(demo_config(path, community, args.port), encoding="utf-8")
    demo = load_settings(config)
    engine = make_engine(demo.storage.url)
    pictures = path.parent / f"{path.stem}-pictures"
    try:
        for section in showcase(demo, engine, last_day, system_clock, pictures):
            size_note = f"{len(section.body.encode())} bytes"
            print(f"\n━━ {section.heading} · {size_note} ━━\n{section.body}")
        for section in replay_alerts(demo, engine, last_day):
            print(f"\n━━ {section.heading} ━━\n{section.body}")
        first = community.groups[0]
        group = find_group(engine, first.chat_id, first.platform)
        if group is not None:
            print(f"\n━━ qunpulse stats --group {first.chat_id} --period 7d ━━")
            period = resolve_period("7d", last_day, demo.zone)
            options = StatsOptions.from_settings(demo)
            print_stats(collect_stats(engine, group, period, options=options), demo.locale)
    finally:
        engine.dispose()
    print(
        f"\npictures (weekly charts, word clouds): {pictures}/\n"
        f"the demo's config: {config} (try `qunpulse stats -c {config} --group "
        f"{community.groups[0].chat_id} --period month`)",
        file=sys.stderr,
    )
    if args.serve:
        print(
            f"serving the demo on http://127.0.0.1:{args.port}: /healthz, /metrics; "
            f"posts go to a sink that prints them here. {next_fire_hint(demo)}",
            file=sys.stderr,
        )
        serve(demo, extend=add_sink)
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from bot.history_import import ImportFileError, ImportRequest, run_import
    from storage.db import make_engine, upgrade

    request = ImportRequest(
        path=Path(args.file),
        format=args.format,
        group=args.group,
        dry_run=args.dry_run,
        strict=args.strict,
    )
    engine = make_engine(settings.storage.url)
    try:
        if not args.dry_run:
            upgrade(engine)
        summary = run_import(request, engine, settings.zone, tty=sys.stderr.isatty())
    except ImportFileError as error:
        raise UsageError(f"import: {error}") from None
    finally:
        engine.dispose()
    for line in summary.rejections:
        print(line, file=sys.stderr)
    if summary.rejected > len(summary.rejections):
        print(f"... and {summary.rejected - len(summary.rejections)} more", file=sys.stderr)
    print(summary.describe())
    return 1 if summary.stopped_at else 0


def _archive(_args: argparse.Namespace, settings: Settings) -> int:
    from bot.archive import pull_archive
    from bot.platforms.wecom_archive import ArchiveError
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    try:
        upgrade(engine)
        summaries = pull_archive(settings, engine)
    except ArchiveError as error:
        raise UsageError(str(error)) from None
    finally:
        engine.dispose()
    for summary in summaries:
        for problem in summary.unreadable:
            print(f"archive {summary.bot_id}: skipped unreadable record {problem}", file=sys.stderr)
        print(
            f"archive {summary.bot_id}: seq {summary.from_seq} -> {summary.to_seq}: "
            f"{summary.records} records, {summary.stored} messages stored, "
            f"{summary.duplicated} duplicated, {summary.recalled} recalls applied, "
            f"{summary.skipped} skipped (private chats, switch records)"
        )
    return 0


def _roster(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.app import system_clock
    from bot.roster_sync import sync_rosters
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    try:
        upgrade(engine)
        outcomes = asyncio.run(sync_rosters(settings, engine, system_clock, chat_id=args.group))
    finally:
        engine.dispose()
    if not outcomes:
        print(
            "no group to sync: roster sync needs a wecom_app or feishu bot and a known group",
            file=sys.stderr,
        )
        return 1 if args.group else 0
    failed = 0
    for outcome in outcomes:
        if outcome.result is None:
            failed += 1
            print(f"{outcome.platform} {outcome.chat_id}: not synced: {outcome.error}")
            continue
        r = outcome.result
        print(
            f"{outcome.platform} {outcome.chat_id}: {r.members} members "
            f"({r.newly_seen} newly seen, {r.marked_present} back, {r.marked_absent} gone)"
        )
    return 1 if failed else 0


def _wecom_stats(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot.app import system_clock
    from bot.roster_sync import pull_wecom_group_stats
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    try:
        upgrade(engine)
        outcomes = asyncio.run(
            pull_wecom_group_stats(settings, engine, system_clock, days=args.days)
        )
    finally:
        engine.dispose()
    if not outcomes:
        raise UsageError("bots: wecom-stats needs a wecom_app bot (its corp_id and secret)")
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"{outcome.bot_id} owner {outcome.owner}: not pulled: {outcome.error}")
        else:
            print(f"{outcome.bot_id} owner {outcome.owner}: {outcome.days} days stored")
    return 1 if any(outcome.error for outcome in outcomes) else 0


def _sentiment(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sentiment import rescore
    from storage.queries import AmbiguousGroup, find_group

    engine = _open_database(settings)
    try:
        group_id = None
        if args.group:
            try:
                group = find_group(engine, args.group)
            except AmbiguousGroup as error:
                raise UsageError(f"--group: {error}") from None
            if group is None:
                raise UsageError(f"--group: no group {args.group!r} in the database yet")
            group_id = group.id
        count = rescore(engine, settings, group_id=group_id, only_unscored=args.unscored)
    finally:
        engine.dispose()
    print(f"scored {count} messages")
    return 0


def _operator_groups(settings: Settings, user: str) -> list[tuple[str, str]]:
    """(platform, chat id) of every configured group ``user`` runs."""
    found: list[tuple[str, str]] = []
    for group in settings.groups:
        everywhere = getattr(settings.operators, group.platform)
        if user in group.operators or user in everywhere:
            found.append((group.platform, group.chat_id))
    return found


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC

    from analytics.periods import PeriodError, explicit_period, resolve_period
    from handlers.stats import StatsOptions, UnknownMetric, collect_stats, parse_metrics
    from storage.queries import AmbiguousGroup, GroupRecord, find_group

    try:
        wanted = parse_metrics(args.metrics)
    except UnknownMetric as error:
        raise UsageError(f"--metrics: {error}") from None

    zone = settings.zone
    try:
        if args.first or args.last:
            if not (args.first and args.last):
                raise UsageError("--from and --to go together")
            period = explicit_period(args.first, args.last, zone)
        else:
            anchor = args.date or datetime.now(zone).date()
            period = resolve_period(args.period, anchor, zone)
    except PeriodError as error:
        raise UsageError(f"--period: {error}") from None

    engine = _open_database(settings)
    try:
        wanted_groups = (
            _operator_groups(settings, args.operator)
            if args.operator
            else [(args.platform, args.group)]
        )
        if args.operator and not wanted_groups:
            raise UsageError(
                f"--operator: {args.operator!r} runs no group; list them in "
                "[[groups]].operators or [operators].<platform>"
            )
        groups: list[GroupRecord] = []
        for platform, chat_id in wanted_groups:
            try:
                group = find_group(engine, chat_id, platform)
            except AmbiguousGroup as error:
                raise UsageError(f"--group: {error} with --platform") from None
            except Exception as error:
                raise UsageError(
                    f"storage.url: cannot read the database ({type(error).__name__}); "
                    "run `qunpulse db upgrade` or check the URL"
                ) from None
            if group is not None:
                groups.append(group)
            elif not args.operator:
                raise UsageError(
                    f"--group: no group {chat_id!r} in the database yet "
                    "(it appears once the bot has received a message from it)"
                )
        if not groups:
            raise UsageError(
                f"--operator: none of {args.operator!r}'s groups is in the database yet"
            )
        stats = collect_stats(
            engine,
            groups,
            period,
            options=StatsOptions.from_settings(settings),
            wanted=wanted,
            now=datetime.now(UTC),
            operator=args.operator,
        )
    finally:
        engine.dispose()

    if args.json:
        print(json.dumps(stats.to_json(), ensure_ascii=False, indent=2))
    else:
        from bot.terminal import print_stats

        print_stats(stats, settings.locale)
    return 0


def _add_privacy_commands(commands: Any, config: argparse.ArgumentParser) -> None:
    """``member``, ``retention``, ``audit`` and ``export``: the data under the admin's control."""
    member = commands.add_parser("member", help="privacy actions on one member's data")
    member.add_argument("action", choices=("optout", "optin", "forget"))
    member.add_argument("platform", choices=("wecom", "dingtalk", "feishu"))
    member.add_argument("user", metavar="USER", help="the member's platform user id")
    member.add_argument(
        "--purge",
        action="store_true",
        help="forget: delete every row about the member (past group figures change)",
    )
    member.add_argument("--yes", action="store_true", help="forget: do not ask to confirm")
    member.add_argument("-c", "--config", metavar="FILE", help="config file")

    retention = commands.add_parser("retention", help="expire old data per [retention]")
    retention_commands = retention.add_subparsers(
        dest="retention_command", required=True, metavar="ACTION"
    )
    retention_commands.add_parser(
        "run", parents=[config], help="blank old message text, delete old events and alerts"
    )

    audit = commands.add_parser("audit", help="the log of admin actions on people's data")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_list = audit_commands.add_parser("list", parents=[config], help="newest entries first")
    audit_list.add_argument("--limit", type=int, default=50)
    audit_list.add_argument("--action", help="only this action (forget, purge, optout, ...)")

    export = commands.add_parser(
        "export", parents=[config], help="a group's period as an Excel / WPS workbook"
    )
    export.add_argument("--group", required=True, metavar="CHAT_ID", help="the group's chat id")
    export.add_argument("--platform", choices=("wecom", "dingtalk", "feishu"))
    export.add_argument("--period", default="month", help="as for stats (default: month)")
    export.add_argument("--date", type=_date, help="a day inside the period (default: today)")
    export.add_argument("--from", dest="first", type=_date, help="first day of an explicit range")
    export.add_argument("--to", dest="last", type=_date, help="last day of an explicit range")
    export.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    export.add_argument("-o", "--output", metavar="FILE", help="where to write it")


def _period_from_args(args: argparse.Namespace, settings: Settings) -> Any:
    from analytics.periods import PeriodError, explicit_period, resolve_period

    zone = settings.zone
    try:
        if args.first or args.last:
            if not (args.first and args.last):
                raise UsageError("--from and --to go together")
            return explicit_period(args.first, args.last, zone)
        anchor = args.date or datetime.now(zone).date()
        return resolve_period(args.period, anchor, zone)
    except PeriodError as error:
        raise UsageError(f"--period: {error}") from None


def _open_database(settings: Settings) -> Any:
    """An engine on a migrated database, or a UsageError naming ``storage.url``."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    try:
        upgrade(engine)  # idempotent, and one query when the database is current
    except SQLAlchemyError as error:
        engine.dispose()
        raise UsageError(
            f"storage.url: cannot reach the database ({type(error).__name__}); check the URL"
        ) from None
    return engine


def _member(args: argparse.Namespace, settings: Settings) -> int:
    from storage.privacy import UnknownMember, forget_member, set_opted_out

    who = f"{args.user} on {args.platform}"
    if args.action == "forget" and not args.yes:
        what = "delete every row about" if args.purge else "erase the message text and name of"
        if not sys.stdin.isatty():
            raise UsageError(
                f"member forget: this would {what} {who}; pass --yes to confirm "
                "(no terminal to ask on)"
            )
        answer = input(f"This will {what} {who}. Type yes to go on: ")
        if answer.strip().lower() not in ("yes", "y"):
            print("nothing changed", file=sys.stderr)
            return 1
    engine = _open_database(settings)
    try:
        if args.action in ("optout", "optin"):
            changed = set_opted_out(engine, args.platform, args.user, args.action == "optout")
            state = "hidden from" if args.action == "optout" else "shown in"
            print(f"{who} is {state} public rankings and posts" + ("" if changed else " (already)"))
            return 0
        result = forget_member(engine, args.platform, args.user, purge=args.purge)
    except UnknownMember as error:
        raise UsageError(f"member {args.action}: {error}") from None
    finally:
        engine.dispose()
    counts = ", ".join(f"{name} {count}" for name, count in result.counts.items())
    if result.purged:
        print(f"purged {who}: deleted {counts}")
        print(
            "group figures for past periods change: this member's messages, joins and "
            "leaves no longer count"
        )
    else:
        print(f"forgot {who}: blanked/erased {counts}; counts for past periods are unchanged")
    return 0


def _retention(_args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC

    from bot.retention import run_retention

    engine = _open_database(settings)
    try:
        result = run_retention(engine, settings, datetime.now(UTC))
    finally:
        engine.dispose()
    print(
        f"blanked the text of {result.messages_blanked} messages, deleted "
        f"{result.membership_events_deleted} membership events and "
        f"{result.alerts_deleted} alerts"
    )
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from storage.audit import list_audit

    engine = _open_database(settings)
    try:
        entries = list_audit(engine, limit=args.limit, action=args.action)
    finally:
        engine.dispose()
    zone = settings.zone
    for entry in entries:
        detail = json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)
        stamp = entry.at.astimezone(zone).isoformat(timespec="seconds")
        print(f"{stamp}  {entry.action:<9} {entry.target}  {detail}")
    if not entries:
        print("the audit log is empty", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    import re
    from datetime import UTC
    from pathlib import Path

    from handlers.export import build_sheets, gather_export, write_csv, write_xlsx
    from handlers.stats import StatsOptions
    from storage.audit import record_audit
    from storage.queries import AmbiguousGroup, find_group

    period = _period_from_args(args, settings)
    engine = _open_database(settings)
    try:
        try:
            group = find_group(engine, args.group, args.platform)
        except AmbiguousGroup as error:
            raise UsageError(f"--group: {error} with --platform") from None
        if group is None:
            raise UsageError(f"--group: no group {args.group!r} in the database yet")
        options = StatsOptions.from_settings(settings)
        data = gather_export(engine, group, period, options, datetime.now(UTC))
        sheets = build_sheets(data, settings.locale)
        # DingTalk chat ids are base64 and may hold "/" or "+": keep the name a file name.
        safe = re.sub(r"[^A-Za-z0-9_.=-]", "_", group.chat_id)
        default = f"qunpulse-{safe}-{period.first}_{period.last}.{args.format}"
        path = Path(args.output or default)
        files = [write_xlsx(sheets, path)] if args.format == "xlsx" else write_csv(sheets, path)
        record_audit(
            engine,
            "export",
            f"{group.platform}:{group.chat_id}",
            {
                "period": f"{period.first}..{period.last}",
                "format": args.format,
                "files": [str(f) for f in files],
                "members": len(data.members),
            },
        )
    finally:
        engine.dispose()
    for file in files:
        print(file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
