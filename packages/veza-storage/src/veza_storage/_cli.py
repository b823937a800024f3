"""``veza-storage``: migrate objects between backends, find orphans, reap stale uploads.

Exit codes: 0 success, 1 the run finished with failed objects (migrate) or found orphans
it did not delete (orphans), 2 usage or configuration errors (one line on stderr, no
traceback). A root the command is asked to *read* is never created: a mistyped path is
an error, not an empty result.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from veza_storage._errors import StorageConfigurationError, StorageError
from veza_storage._local import LocalStorage
from veza_storage._migrate import MigrationItem, migrate
from veza_storage._orphans import find_orphans
from veza_storage._s3 import S3Storage
from veza_storage._sessions import FileUploadSessionStore, UploadSessionStore
from veza_storage._uploads import ResumableUploads
from veza_storage._version import __version__


def _location(
    text: str, args: argparse.Namespace, *, create: bool = False
) -> LocalStorage | S3Storage:
    """``local:/path`` or ``s3://bucket[/prefix]``; a local root is created only if ``create``."""
    if text.startswith("local:"):
        return LocalStorage(text.removeprefix("local:"), create=create)
    if text.startswith("s3://"):
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        return S3Storage(
            bucket,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            prefix=f"{prefix}/" if prefix else "",
        )
    msg = f"a location is local:/path or s3://bucket/prefix, got {text!r}"
    raise StorageError(msg)


def _progress_bar(label: str) -> tuple[Callable[[MigrationItem], None], Callable[[], None]]:
    try:
        from tqdm import tqdm
    except ImportError:
        count = [0]

        def tick(item: MigrationItem) -> None:
            count[0] += 1
            if count[0] % 100 == 0 or item.status == "failed":
                print(f"{label}: {count[0]} objects ({item.key}: {item.status})", file=sys.stderr)

        return tick, lambda: None
    bar: Any = tqdm(desc=label, unit="obj", file=sys.stderr)

    def update(item: MigrationItem) -> None:
        bar.update(1)
        bar.set_postfix_str(item.status)

    return update, bar.close


def _migrate(args: argparse.Namespace) -> int:
    source = _location(args.source, args)
    destination = _location(args.destination, args, create=True)
    tick, close = _progress_bar("migrate")
    try:
        report = migrate(
            source,
            destination,
            dry_run=args.dry_run,
            concurrency=args.concurrency,
            checkpoint=args.checkpoint,
            delete_source_after_verify=args.delete_source_after_verify,
            progress=tick,
        )
    finally:
        close()
    for item in report.failed:
        print(f"FAILED {item.key}: {item.error}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0


def _storage(args: argparse.Namespace) -> LocalStorage | S3Storage:
    """``--root`` (never created) or ``--bucket``."""
    if args.root:
        return LocalStorage(args.root, create=False)
    return S3Storage(
        args.bucket,
        endpoint_url=args.endpoint_url,
        profile=args.profile,
        region=args.region,
        prefix=args.prefix,
    )


def _session_store(args: argparse.Namespace) -> UploadSessionStore:
    if args.sessions:
        directory = Path(args.sessions)
        if not directory.is_dir():
            msg = f"the session directory {args.sessions!r} does not exist (check --sessions)"
            raise StorageConfigurationError(msg)
        return FileUploadSessionStore(directory)
    try:
        from sqlalchemy import MetaData, create_engine  # noqa: PLC0415 - the [sqlalchemy] extra

        from veza_storage._sql import (  # noqa: PLC0415 - needs the same extra
            SQLUploadSessionStore,
            upload_sessions_table,
        )
    except ImportError:
        msg = "--database-url needs the sqlalchemy extra: pip install 'veza-storage[sqlalchemy]'"
        raise StorageConfigurationError(msg) from None
    table = upload_sessions_table(MetaData(), args.table)
    return SQLUploadSessionStore(create_engine(args.database_url), table)


def _database_errors() -> tuple[type[Exception], ...]:
    """What a session database that cannot be reached raises (``UnicodeError``: a bad host)."""
    try:
        from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - the [sqlalchemy] extra
    except ImportError:
        return (UnicodeError,)
    return (SQLAlchemyError, UnicodeError)


def _reap(args: argparse.Namespace) -> int:
    uploads = ResumableUploads(_storage(args), _session_store(args), ttl=args.ttl)
    try:
        removed = uploads.reap_expired()
    except _database_errors() as exc:
        msg = (
            f"the upload session database cannot be used ({type(exc).__name__}); "
            "check --database-url"
        )
        raise StorageConfigurationError(msg) from None
    print(f"{removed} expired upload session(s) and orphaned staging removed")
    return 0


def _orphans(args: argparse.Namespace) -> int:
    storage = _storage(args)
    if args.referenced == "-":
        listed = sys.stdin.read()
    else:
        listed = Path(args.referenced).read_text(encoding="utf-8")
    referenced = [line.strip() for line in listed.splitlines() if line.strip()]
    report = find_orphans(storage, referenced, grace=args.grace, delete=args.delete)
    for info in report.orphans:
        print(f"orphan\t{info.key}\t{info.size}")
    for key in report.missing:
        print(f"missing\t{key}")
    print(
        f"{len(report.orphans)} orphans ({report.deleted} deleted), {len(report.in_flight)} "
        f"in flight, {len(report.missing)} missing objects",
        file=sys.stderr,
    )
    return 1 if report.orphans and not args.delete else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``veza-storage`` argument parser (the command-line contract)."""
    parser = argparse.ArgumentParser(prog="veza-storage", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"veza-storage {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def s3_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint-url", metavar="URL", help="MinIO, R2, ... endpoint")
        p.add_argument("--profile", choices=("aws", "minio", "r2"), default="aws")
        p.add_argument("--region")

    mig = commands.add_parser("migrate", help="copy, verify, report (local -> s3)")
    mig.add_argument("--from", dest="source", required=True, metavar="local:/path")
    mig.add_argument("--to", dest="destination", required=True, metavar="s3://bucket/prefix")
    s3_options(mig)
    mig.add_argument("--dry-run", action="store_true")
    mig.add_argument("--concurrency", type=int, default=4, metavar="N")
    mig.add_argument("--checkpoint", metavar="FILE", help="resume from / record to this file")
    mig.add_argument(
        "--delete-source-after-verify",
        action="store_true",
        help="delete each source object once its copy is verified",
    )
    mig.set_defaults(handler=_migrate)

    orph = commands.add_parser("orphans", help="objects without references, and the reverse")
    where = orph.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", metavar="PATH")
    where.add_argument("--bucket", metavar="NAME")
    orph.add_argument("--prefix", default="", metavar="PREFIX")
    s3_options(orph)
    orph.add_argument(
        "--referenced",
        required=True,
        metavar="FILE",
        help="referenced keys, one per line ('-' for stdin)",
    )
    orph.add_argument("--grace", type=float, default=3600.0, metavar="SECONDS")
    orph.add_argument("--delete", action="store_true")
    orph.set_defaults(handler=_orphans)

    uploads = commands.add_parser("uploads", help="resumable upload sessions")
    upload_commands = uploads.add_subparsers(dest="uploads_command", required=True)
    reap = upload_commands.add_parser(
        "reap", help="remove expired upload sessions and their staged data"
    )
    where = reap.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", metavar="PATH", help="the LocalStorage root")
    where.add_argument("--bucket", metavar="NAME", help="the S3 bucket")
    reap.add_argument("--prefix", default="", metavar="PREFIX")
    s3_options(reap)
    store = reap.add_mutually_exclusive_group(required=True)
    store.add_argument("--sessions", metavar="DIR", help="a FileUploadSessionStore directory")
    store.add_argument("--database-url", metavar="URL", help="an SQLUploadSessionStore database")
    reap.add_argument("--table", default="veza_upload_sessions", metavar="NAME")
    reap.add_argument(
        "--ttl",
        type=float,
        default=24 * 3600.0,
        metavar="SECONDS",
        help="staged data no session remembers is removed after this long (default 1 day)",
    )
    reap.set_defaults(handler=_reap)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (StorageError, OSError) as exc:
        print(f"veza-storage: error: {exc}", file=sys.stderr)
        return 2
