"""The reversal worker, the transfer worker, and ``run_forever``.

Both workers claim rows with ``FOR UPDATE SKIP LOCKED`` (any number may run), call the
provider with a deterministic idempotency key derived from the row, and record the
provider's id with the state change in the same transaction. A crash between the
provider's answer and the commit leaves the row as it was; the next run calls again
with the same key and the provider answers with the object it already made (Stripe
replays the request): no second transfer, no second reversal. Failures keep the row
where it is with an attempt count and an exponential backoff; a refund never waits for
a reversal.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

import attrs
import sqlalchemy as sa

from veza_ledger._errors import LedgerError
from veza_ledger._ledger import Ledger
from veza_ledger._machines import TRANSFER
from veza_ledger._provider import TransferCreator, TransferReverser
from veza_ledger._schema import SellerTransfer
from veza_ledger._transfers import MAX_ERROR, reversal_key
from veza_ledger._types import utcnow

logger = logging.getLogger("veza_ledger.workers")

MAX_ATTEMPTS = 12


def backoff(attempts: int, *, base: float = 60.0, cap: float = 3600.0) -> dt.timedelta:
    """Delay before attempt ``attempts + 1``: 1 min, 2, 4, … capped at an hour."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


@attrs.define
class WorkerReport:
    """What one worker run did."""

    done: list[str] = attrs.field(factory=list)
    failed: list[str] = attrs.field(factory=list)


def _ledger(engine: sa.Engine | Ledger) -> Ledger:
    return engine if isinstance(engine, Ledger) else Ledger(engine)


def _claim(
    ledger: Ledger, session: sa.orm.Session, condition: sa.ColumnElement[bool], limit: int
) -> list[SellerTransfer]:
    query = (
        sa.select(SellerTransfer)
        .where(condition)
        .order_by(SellerTransfer.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if ledger.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def run_reversal_worker(
    engine: sa.Engine | Ledger,
    reverser: TransferReverser,
    *,
    batch_size: int = 50,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> WorkerReport:
    """Reverse what is due on ``reversal_pending`` transfers (key: :func:`reversal_key`)."""
    ledger = _ledger(engine)
    at = now or utcnow()
    due = sa.and_(
        SellerTransfer.status == "reversal_pending",
        sa.or_(SellerTransfer.next_attempt_at.is_(None), SellerTransfer.next_attempt_at <= at),
    )

    def reverse(session: sa.orm.Session, transfer: SellerTransfer) -> bool | None:
        amount = transfer.reversal_due - transfer.reversed_amount
        if amount <= 0 or not transfer.stripe_transfer_id:
            return None  # nothing to reverse, or no Stripe id yet (a rule reports it)
        try:
            result = reverser.reverse_transfer(
                reversal_key(transfer), transfer.stripe_transfer_id, amount=amount
            )
        except Exception as exc:  # noqa: BLE001 - any provider failure: back off
            _failed(session, transfer, exc, at)
            return False
        ledger._reversal_completed(session, transfer, result.id, amount)
        return True

    return _work(ledger, due, reverse, batch_size=batch_size, cancel=cancel)


def _work(
    ledger: Ledger,
    due: sa.ColumnElement[bool],
    step: Callable[[sa.orm.Session, SellerTransfer], bool | None],
    *,
    batch_size: int,
    cancel: threading.Event | None,
) -> WorkerReport:
    """Claim due rows in batches (each row once per run) and apply ``step`` to each.

    ``step`` answers ``True`` (done), ``False`` (failed, backing off) or ``None``
    (nothing to do); each batch commits on its own.
    """
    cancel = cancel or threading.Event()
    report = WorkerReport()
    seen: set[str] = set()
    while not cancel.is_set():
        with ledger.transaction() as session:
            fresh = SellerTransfer.id.not_in(seen) if seen else sa.true()
            rows = _claim(ledger, session, sa.and_(due, fresh), batch_size)
            if not rows:
                return report
            for transfer in rows:
                seen.add(transfer.id)
                outcome = step(session, transfer)
                if outcome is not None:
                    (report.done if outcome else report.failed).append(transfer.id)
    return report


def _failed(
    session: sa.orm.Session, transfer: SellerTransfer, exc: Exception, at: dt.datetime
) -> None:
    attempts = transfer.attempts + 1
    retry_at = at + backoff(attempts) if attempts < MAX_ATTEMPTS else None
    logger.warning(
        "transfer %s: provider call failed (attempt %d): %s",
        transfer.id,
        attempts,
        type(exc).__name__,
    )
    session.execute(
        sa.update(SellerTransfer)
        .where(SellerTransfer.id == transfer.id)
        .values(
            attempts=attempts,
            next_attempt_at=retry_at,
            updated_at=at,
            last_error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR],
        )
    )


def run_transfer_worker(
    engine: sa.Engine | Ledger,
    creator: TransferCreator,
    *,
    batch_size: int = 50,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
) -> WorkerReport:
    """Pay ``pending`` transfers and retry ``failed`` ones whose backoff elapsed.

    The key is the transfer row's id, so a row left ``pending`` by a crash after
    Stripe's answer gets the same transfer back.
    """
    ledger = _ledger(engine)
    at = now or utcnow()
    due = sa.or_(
        SellerTransfer.status == "pending",
        sa.and_(SellerTransfer.status == "failed", SellerTransfer.next_attempt_at <= at),
    )
    return _work(
        ledger,
        due,
        lambda session, transfer: _pay(ledger, session, transfer, creator, at),
        batch_size=batch_size,
        cancel=cancel,
    )


def _pay(
    ledger: Ledger,
    session: sa.orm.Session,
    transfer: SellerTransfer,
    creator: TransferCreator,
    at: dt.datetime,
) -> bool:
    if transfer.status == "failed":
        ledger._move(session, SellerTransfer, TRANSFER, transfer, "pending")
    group = f"order-{transfer.order_id}" if transfer.order_id else None
    try:
        result = creator.create_transfer(
            transfer.id,
            amount=transfer.amount,
            currency=transfer.currency,
            destination=transfer.destination,
            transfer_group=group,
        )
    except Exception as exc:  # noqa: BLE001 - any provider failure: back off
        ledger._move(session, SellerTransfer, TRANSFER, transfer, "failed")
        _failed(session, transfer, exc, at)
        return False
    ledger._transfer_completed(session, transfer, result.id)
    return True


def retry_transfer_now(
    engine: sa.Engine | Ledger, creator: TransferCreator, transfer_id: str
) -> SellerTransfer:
    """The admin's "retry": pay one ``pending``/``failed`` transfer now, same key.

    Raises:
        IllegalTransition: The transfer is not pending or failed.
        LedgerError: The provider refused again (the row is ``failed`` with the error).
    """
    ledger = _ledger(engine)
    at = utcnow()
    with ledger.transaction() as session:
        transfer = ledger._get(session, SellerTransfer, transfer_id, lock=True)
        if transfer.status not in ("pending", "failed"):
            TRANSFER.check(transfer.id, transfer.status, "completed")
        ok = _pay(ledger, session, transfer, creator, at)
    if not ok:
        msg = f"transfer {transfer_id} failed again: {ledger.transfer(transfer_id).last_error}"
        raise LedgerError(msg)
    return ledger.transfer(transfer_id)


def run_forever(
    job: Callable[[], object],
    *,
    interval: float,
    cancel: threading.Event,
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """Run ``job`` every ``interval`` seconds until ``cancel`` is set (no cron needed).

    A failing run is logged (or passed to ``on_error``) and the loop goes on; cancelling
    interrupts the wait at once.
    """
    while not cancel.is_set():
        try:
            job()
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            else:
                logger.exception("scheduled job failed")
        if cancel.wait(interval):
            return
