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


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from analytics.metrics import ActivityRule
    from analytics.periods import resolve_period
    from bot.demo.build import build_demo
    from bot.demo.generator import DemoSize
    from bot.terminal import print_stats
    from handlers.stats import collect_stats
    from storage.db import make_engine
    from storage.queries import list_groups

    if min(args.groups, args.members, args.days) < 1:
        raise UsageError("--groups, --members and --days must be at least 1")
    zone = settings.zone
    last_day = args.date or datetime.now(zone).date()
    path = Path(args.db)
    print(f"building the sample community in {path} (seed {args.seed}) …", file=sys.stderr)
    build_demo(path, args.seed, DemoSize(args.groups, args.members, args.days), last_day, zone)
    engine = make_engine(f"sqlite:///{path}")
    rule = ActivityRule(settings.activity.min_messages, settings.activity.min_active_days)
    try:
        for group in list_groups(engine):
            stats = collect_stats(engine, group, resolve_period("7d", last_day, zone), rule)
            print_stats(stats, settings.locale)
            print()
    finally:
        engine.dispose()
    print(
        f"Explore it: qunpulse stats --group CHAT_ID --period month, with "
        f"QUNPULSE_STORAGE__URL=sqlite:///{path}",
        file=sys.stderr,
    )
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
