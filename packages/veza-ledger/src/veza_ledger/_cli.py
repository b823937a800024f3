"""``veza-ledger``: migrations and maintenance from the shell (and from cron).

``veza-ledger db upgrade --database-url URL`` creates or upgrades the ledger's tables;
``db current`` reports; ``db check`` compares the live schema with the models and names
every difference; ``db downgrade base`` needs ``--destroy-data``; ``sweep-retention``
trims the webhook log;
``reconcile`` runs the rules once (``--dry-run``, ``--json``, ``--rules``);
``findings`` lists what reconciliation found. The
URL may come from ``VEZA_DATABASE_URL`` instead of the flag (it keeps passwords out of
``ps`` output).

Exit codes: 0 done, 1 the command found a problem (schema out of date or drifted, a
ledger error), 2 the command could not run (bad arguments, an unreachable database, a
refused ``downgrade base``). Operational errors are one line on stderr, never a
traceback. Alembic's log lines appear only with ``-v``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence

import sqlalchemy as sa
from alembic.util import CommandError as AlembicCommandError

from veza_ledger._config import DATABASE_VARIABLE
from veza_ledger._engine import create_engine
from veza_ledger._errors import LedgerConfigurationError, LedgerError
from veza_ledger._ledger import Ledger
from veza_ledger._migrations import (
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    revision_chain,
    upgrade,
)
from veza_ledger._provider import ProviderView
from veza_ledger._retention import retention_days_from_env, sweep_webhook_log
from veza_ledger._rules import RULES
from veza_ledger._schema_check import SchemaDrift
from veza_ledger._sweep import run_sweep
from veza_ledger._version import __version__

EXIT_PROBLEM = 1
EXIT_CANNOT_RUN = 2


class _CannotRunError(Exception):
    """The command cannot run; the message says why and what to do."""


def _url(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    url = args.database_url or os.environ.get(DATABASE_VARIABLE, "")
    if not url:
        parser.error(f"--database-url or {DATABASE_VARIABLE} is required")
    return str(url)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help=f"SQLAlchemy URL (default: ${DATABASE_VARIABLE})")
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,  # keeps a top-level -v when the subcommand has none
        help="show Alembic's log lines",
    )
    parser = argparse.ArgumentParser(prog="veza-ledger", description="veza-ledger maintenance")
    parser.add_argument("--version", action="version", version=f"veza-ledger {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="show Alembic's log lines"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="schema migrations").add_subparsers(dest="action", required=True)
    up = db.add_parser("upgrade", parents=[common], help="create or upgrade the ledger's tables")
    up.add_argument("revision", nargs="?", default="head")
    down = db.add_parser("downgrade", parents=[common], help="downgrade (base drops the tables)")
    down.add_argument("revision")
    down.add_argument(
        "--destroy-data",
        action="store_true",
        help="required to downgrade to base: it drops every ledger table with its data",
    )
    db.add_parser("current", parents=[common], help="print the revision and the library's head")
    check = db.add_parser(
        "check",
        parents=[common],
        help="exit 1 unless the schema is at the head and the live schema matches the models",
    )
    check.add_argument("--json", action="store_true", help="print the differences as JSON")
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
    rec = sub.add_parser("reconcile", parents=[common], help="run the reconciliation rules once")
    rec.add_argument("--dry-run", action="store_true", help="propose fixes, write nothing")
    rec.add_argument("--json", action="store_true", help="print the report as JSON")
    rec.add_argument("--rules", help=f"comma-separated subset of: {', '.join(RULES)}")
    rec.add_argument("--batch-size", type=int, default=100)
    rec.add_argument(
        "--no-provider",
        action="store_true",
        help="run only the rules that need no provider (no HYPERSWITCH_* needed)",
    )
    found = sub.add_parser("findings", parents=[common], help="list reconciliation findings")
    found.add_argument("--open", action="store_true", help="only open findings")
    found.add_argument("--rule")
    found.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``veza-ledger`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.verbose:  # Alembic's start-up chatter only when asked for
        logging.getLogger("alembic").setLevel(logging.WARNING)
    url = _url(args, parser)
    try:
        engine = _connect(url)
    except _CannotRunError as exc:
        print(f"veza-ledger: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        commands = {
            "db": _db,
            "sweep-retention": _sweep,
            "reconcile": _reconcile,
            "findings": _findings,
        }
        return commands[args.command](args, engine)
    except _CannotRunError as exc:
        print(f"veza-ledger: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except LedgerError as exc:
        print(f"veza-ledger: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except AlembicCommandError as exc:  # an unknown or unreachable revision
        print(f"veza-ledger: {exc} (see `veza-ledger db current`)", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except sa.exc.OperationalError as exc:  # the server went away mid-command
        print(f"veza-ledger: the database failed: {_first_line(exc, url)}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    finally:
        engine.dispose()


def _first_line(exc: sa.exc.SQLAlchemyError, url: str) -> str:
    """The driver's own first line, never the password."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    try:
        password = sa.make_url(url).password
    except sa.exc.ArgumentError:
        password = None
    return line.replace(str(password), "***") if password else line


def _connect(url: str) -> sa.Engine:
    """An engine that has connected once, or :class:`_CannotRunError` naming the fix."""
    try:
        engine = create_engine(url)
        shown = engine.url.render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        msg = (
            f"the database URL is not usable ({type(exc).__name__}: {exc}): give a "
            f"SQLAlchemy URL such as postgresql+psycopg://user@host/db in --database-url "
            f"or ${DATABASE_VARIABLE}"
        )
        raise _CannotRunError(msg) from None
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        where = (
            "that the file's directory exists and is writable"
            if engine.dialect.name == "sqlite"
            else "that the database server is running and reachable"
        )
        msg = (
            f"cannot connect to the database at {shown}: {_first_line(exc, url)}. Check "
            f"--database-url (or ${DATABASE_VARIABLE}) and {where}"
        )
        raise _CannotRunError(msg) from None
    return engine


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


def _provider_from_env() -> ProviderView:
    """veza-payments' clients from the environment (``HYPERSWITCH_*``, ``STRIPE_*``)."""
    try:
        from veza_ledger.adapters import PaymentsProviderView  # noqa: PLC0415 - the [payments] extra
        from veza_payments import PaymentsConfig  # noqa: PLC0415 - the [payments] extra
    except ImportError as exc:
        msg = "reconcile needs veza-ledger[payments] (or --no-provider)"
        raise LedgerConfigurationError(msg) from exc
    try:
        config = PaymentsConfig.from_env(require_webhook_keys=False)
    except ValueError as exc:
        raise LedgerConfigurationError(str(exc)) from None
    stripe = config.stripe_connect() if config.stripe_secret_key else None
    return PaymentsProviderView(config.build(), stripe)


def _reconcile(args: argparse.Namespace, engine: sa.Engine) -> int:
    check_schema(engine)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()] if args.rules else None
    provider = None if args.no_provider else _provider_from_env()
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    report = run_sweep(
        engine,
        provider,
        rules=rules,
        batch_size=args.batch_size,
        cancel=cancel,
        dry_run=args.dry_run,
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        mode = "dry run: nothing written" if report.dry_run else "applied"
        print(
            f"examined {sum(report.examined.values())} rows; {report.problem_count} problems, "
            f"{report.applied} fixed, {report.resolved} resolved, {report.errors} errors ({mode})"
        )
        for item in report.problems:
            fix = f" -> {item.action}{'' if item.applied else ' (proposed)'}" if item.action else ""
            print(
                f"  [{item.severity}] {item.rule} {item.object_type} {item.object_id}: "
                f"{item.summary}{fix}"
            )
        for rule, why in report.skipped_rules.items():
            print(f"  skipped {rule}: {why}")
    return 0


def _findings(args: argparse.Namespace, engine: sa.Engine) -> int:
    rows = Ledger(engine).reconciliation.findings(
        status="open" if args.open else None, rule=args.rule
    )
    if args.json:
        print(json.dumps([f.as_dict() for f in rows], indent=2))
        return 0
    for f in rows:
        print(
            f"{f.id:>6} {f.status:<10} {f.severity:<8} {f.rule} {f.object_type} {f.object_id}: "
            f"{f.summary} (seen {f.occurrences}x, last {f.last_seen:%Y-%m-%d %H:%M})"
        )
    return 0


_RELATIVE = re.compile(r"-(\d+)")


def _reaches_base(engine: sa.Engine, revision: str) -> bool:
    """Whether ``downgrade revision`` would drop every ledger table."""
    if revision == "base":
        return True
    relative = _RELATIVE.fullmatch(revision)
    if relative is None:
        return False
    current = current_revision(engine)
    return current is not None and int(relative.group(1)) >= len(revision_chain(current))


def _db(args: argparse.Namespace, engine: sa.Engine) -> int:
    if args.action == "upgrade":
        upgrade(engine, args.revision)
        print(f"veza-ledger schema at {current_revision(engine)}")
    elif args.action == "downgrade":
        if _reaches_base(engine, args.revision) and not args.destroy_data:
            msg = (
                f"`db downgrade {args.revision}` drops every ledger table, the journal "
                "included, and destroys their data; back the database up, then run it "
                "again with --destroy-data"
            )
            raise _CannotRunError(msg)
        downgrade(engine, args.revision)
        print(f"veza-ledger schema at {current_revision(engine)}")
    elif args.action == "current":
        print(json.dumps({"current": current_revision(engine), "head": head_revision()}))
    else:
        return _check(args, engine)
    return 0


def _check(args: argparse.Namespace, engine: sa.Engine) -> int:
    drifts: list[SchemaDrift] = check_schema(engine)
    if args.json:
        print(json.dumps([d.as_dict() for d in drifts], indent=2))
    elif drifts:
        print(
            f"veza-ledger: the live schema differs from the models of veza-ledger "
            f"{__version__} in {len(drifts)} place(s):"
        )
        for drift in drifts:
            print(f"  - {drift}")
    else:
        print(f"veza-ledger schema is current ({head_revision()}) and matches the models")
    return EXIT_PROBLEM if drifts else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
