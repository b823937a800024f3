"""``veza-ledger``: migrations and maintenance from the shell (and from cron).

``veza-ledger db upgrade --database-url URL`` creates or upgrades the ledger's tables;
``db current`` and ``db check`` report; ``sweep-retention`` trims the webhook log. The
URL may come from ``VEZA_DATABASE_URL`` instead of the flag (it keeps passwords out of
``ps`` output).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

import sqlalchemy as sa

from veza_ledger._engine import create_engine
from veza_ledger._errors import LedgerError
from veza_ledger._migrations import (
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from veza_ledger._retention import retention_days_from_env, sweep_webhook_log

DATABASE_VARIABLE = "VEZA_DATABASE_URL"


def _url(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    url = args.database_url or os.environ.get(DATABASE_VARIABLE, "")
    if not url:
        parser.error(f"--database-url or {DATABASE_VARIABLE} is required")
    return str(url)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help=f"SQLAlchemy URL (default: ${DATABASE_VARIABLE})")
    parser = argparse.ArgumentParser(prog="veza-ledger", description="veza-ledger maintenance")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="schema migrations").add_subparsers(dest="action", required=True)
    up = db.add_parser("upgrade", parents=[common], help="create or upgrade the ledger's tables")
    up.add_argument("revision", nargs="?", default="head")
    down = db.add_parser("downgrade", parents=[common], help="downgrade (base drops the tables)")
    down.add_argument("revision")
    db.add_parser("current", parents=[common], help="print the revision and the library's head")
    db.add_parser("check", parents=[common], help="exit 1 unless the schema is at the head")
    sweep = sub.add_parser(
        "sweep-retention", parents=[common], help="delete webhook log rows past retention"
    )
    sweep.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="days to keep (default: $HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS, or 90)",
    )
    sweep.add_argument("--batch-size", type=int, default=10_000)
    sweep.add_argument("--pause", type=float, default=0.1, help="seconds between batches")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``veza-ledger`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = create_engine(_url(args, parser))
    try:
        return _db(args, engine) if args.command == "db" else _sweep(args, engine)
    except LedgerError as exc:
        print(f"veza-ledger: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _sweep(args: argparse.Namespace, engine: sa.Engine) -> int:
    days = args.retention_days or retention_days_from_env()
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    deleted = sweep_webhook_log(
        engine, retention_days=days, batch_size=args.batch_size, pause=args.pause, cancel=cancel
    )
    print(json.dumps({"deleted": deleted, "retention_days": days, "cancelled": cancel.is_set()}))
    return 0


def _db(args: argparse.Namespace, engine: sa.Engine) -> int:
    if args.action == "upgrade":
        upgrade(engine, args.revision)
        print(f"veza-ledger schema at {current_revision(engine)}")
    elif args.action == "downgrade":
        downgrade(engine, args.revision)
        print(f"veza-ledger schema at {current_revision(engine)}")
    elif args.action == "current":
        print(json.dumps({"current": current_revision(engine), "head": head_revision()}))
    else:
        check_schema(engine)
        print(f"veza-ledger schema is current ({head_revision()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
