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

from config import ConfigError, Settings, load_settings

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
    stats.add_argument("--group", required=True, metavar="CHAT_ID", help="the group's chat id")
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

    run = commands.add_parser("run", parents=[config], help="run one scheduled job now")
    run.add_argument("job", choices=("leaderboard", "daily_digest", "weekly_digest", "alert_scan"))
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
        "run": _run,
        "outbox": _outbox,
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
    from bot.app import build_outbound
    from bot.telemetry import Telemetry
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    http, outbox, sender, jobs, _scheduler = build_outbound(settings, engine, Telemetry(), clock)
    try:
        result = jobs.run(job, day, chat_id)
        for note in result.notes:
            print(note, file=sys.stderr)
        # Deliver what this run queued now; posts queued earlier belong to `serve`.
        await sender.drain(result.queued)
        failed = 0
        for post_id in result.queued:
            post = next(p for p in outbox.list(limit=10_000) if p.id == post_id)
            print(f"{post.job} {post.group_key} {post.period_key}: {post.state}")
            if post.state == "failed":
                print(f"  {post.error}", file=sys.stderr)
                failed += 1
        print(f"{job}: {len(result.queued)} post(s) queued, {result.existing} already queued")
        return 1 if failed else 0
    finally:
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


def _db(_args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    engine.dispose()
    print("database is up to date")
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.metrics import ActivityRule
    from analytics.periods import PeriodError, explicit_period, resolve_period
    from handlers.stats import collect_stats
    from storage.db import make_engine
    from storage.queries import AmbiguousGroup, find_group

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

    engine = make_engine(settings.storage.url)
    try:
        try:
            group = find_group(engine, args.group, args.platform)
        except AmbiguousGroup as error:
            raise UsageError(f"--group: {error} with --platform") from None
        except Exception as error:
            raise UsageError(
                f"storage.url: cannot read the database ({type(error).__name__}); "
                "run `qunpulse db upgrade` or check the URL"
            ) from None
        if group is None:
            raise UsageError(
                f"--group: no group {args.group!r} in the database yet "
                "(it appears once the bot has received a message from it)"
            )
        rule = ActivityRule(settings.activity.min_messages, settings.activity.min_active_days)
        stats = collect_stats(engine, group, period, rule)
    finally:
        engine.dispose()

    if args.json:
        print(json.dumps(stats.to_json(), ensure_ascii=False, indent=2))
    else:
        from bot.terminal import print_stats

        print_stats(stats, settings.locale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
