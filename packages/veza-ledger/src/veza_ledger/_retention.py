"""The webhook log's retention sweep: small batches, short locks, prompt cancellation.

Rows older than the retention are deleted ``batch_size`` at a time, each batch its own
transaction, with a pause between batches, so a backlog of millions never holds a long
lock or a long transaction. On PostgreSQL each batch is
``DELETE … WHERE ctid IN (SELECT ctid … ORDER BY received_at LIMIT n FOR UPDATE SKIP
LOCKED)``: rows another transaction holds are skipped, not waited for (the next run gets
them). On SQLite the batch is chosen by ``rowid``. Each batch starts at the newest
timestamp the previous one deleted, so batches stay equally cheap however large the
backlog.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa

from veza_ledger._base import check_aware
from veza_ledger._errors import LedgerConfigurationError
from veza_ledger._types import utcnow

DEFAULT_RETENTION_DAYS = 90
RETENTION_VARIABLE = "HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS"

# Each batch starts where the previous one stopped (``received_at >= :floor``): without
# that, batch k walks the index over the k * batch_size entries already deleted but not
# yet vacuumed, and the last DELETEs of a large backlog take ten times the first.
_PG_BATCH = sa.text(
    "WITH gone AS (DELETE FROM ledger_webhook_log WHERE ctid IN ("
    " SELECT ctid FROM ledger_webhook_log"
    " WHERE received_at < :cutoff AND received_at >= :floor"
    " ORDER BY received_at LIMIT :n FOR UPDATE SKIP LOCKED)"
    " RETURNING received_at)"
    " SELECT count(*), max(received_at) FROM gone"
)
_SQLITE_BATCH = sa.text(
    "DELETE FROM ledger_webhook_log WHERE rowid IN ("
    " SELECT rowid FROM ledger_webhook_log"
    " WHERE received_at < :cutoff AND received_at >= :floor"
    " ORDER BY received_at LIMIT :n)"
    " RETURNING received_at"
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def retention_days_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS``; 0 or unset means the default (90)."""
    env = os.environ if environ is None else environ
    raw = env.get(RETENTION_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        msg = f"{RETENTION_VARIABLE} must be a whole number of days, got {raw!r}"
        raise LedgerConfigurationError(msg) from None
    if days < 0:
        msg = f"{RETENTION_VARIABLE} must not be negative, got {raw!r}"
        raise LedgerConfigurationError(msg)
    return days or DEFAULT_RETENTION_DAYS


def sweep_webhook_log(
    engine: sa.Engine,
    *,
    retention_days: int | None = None,
    batch_size: int = 10_000,
    pause: float = 0.1,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
    on_batch: Callable[[int, float], None] | None = None,
) -> int:
    """Delete webhook log rows older than the retention; return how many were deleted.

    Args:
        engine: The ledger's engine.
        retention_days: Days to keep; ``None`` or 0 reads the default (90).
        batch_size: Rows per DELETE (each its own transaction).
        pause: Seconds between batches (lets other writers in).
        cancel: Set it to stop promptly (checked between batches and during pauses).
        now: The current time (tests).
        on_batch: Called with ``(rows deleted, seconds the DELETE took)`` per batch.
    """
    days = retention_days or DEFAULT_RETENTION_DAYS
    if days < 0:
        msg = f"retention_days must not be negative, got {days}"
        raise LedgerConfigurationError(msg)
    if batch_size <= 0:
        msg = f"batch_size must be positive, got {batch_size}"
        raise LedgerConfigurationError(msg)
    cutoff = (check_aware(now, "now") or utcnow()) - dt.timedelta(days=days)
    postgres = engine.dialect.name == "postgresql"
    # SQLite holds the text SQLAlchemy wrote: compare with the same format.
    bound: object = cutoff if postgres else cutoff.astimezone(dt.UTC).strftime(_SQLITE_TIME)
    floor: object = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) if postgres else "0000"
    cancel = cancel or threading.Event()
    total = 0
    while not cancel.is_set():
        started = time.perf_counter()
        params = {"cutoff": bound, "floor": floor, "n": batch_size}
        with engine.begin() as connection:
            if postgres:
                deleted, newest = connection.execute(_PG_BATCH, params).one()
            else:
                stamps = [r for (r,) in connection.execute(_SQLITE_BATCH, params)]
                deleted, newest = len(stamps), max(stamps, default=None)
        took = time.perf_counter() - started
        floor = newest if newest is not None else floor
        total += deleted
        if on_batch is not None:
            on_batch(deleted, took)
        if deleted < batch_size:
            break
        if pause and cancel.wait(pause):
            break
    return total
