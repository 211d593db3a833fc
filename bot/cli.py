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


def _db(_args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import make_engine, upgrade

    engine = make_engine(settings.storage.url)
    upgrade(engine)
    engine.dispose()
    print("database is up to date")
    return 0


def _sentiment(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sentiment import rescore
    from storage.db import make_engine
    from storage.queries import AmbiguousGroup, find_group

    engine = make_engine(settings.storage.url)
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
    from storage.db import make_engine
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

    engine = make_engine(settings.storage.url)
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


if __name__ == "__main__":
    sys.exit(main())
