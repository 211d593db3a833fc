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
from datetime import date, datetime

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
        "roster": _roster,
        "wecom-stats": _wecom_stats,
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


def _db(_args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    engine.dispose()
    print("database is up to date")
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
