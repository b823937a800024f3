"""The reversal worker, the transfer worker, and ``run_forever``.

Each provider call that moves money goes through three steps, so that a refund never
waits for Stripe and a crash never makes the ledger and Stripe disagree:

1. **Claim and intend** (one short transaction): due transfer rows are claimed with
   ``FOR UPDATE SKIP LOCKED`` (any number of workers may run), each gets a lease
   (``leased_until``) and its :class:`ProviderIntent`: the amount, currency and
   idempotency key of the call, committed before the call and never changed after.
2. **Call** the provider holding no lock and no transaction.
3. **Record** (one transaction, under the transfer's row lock, re-read): the
   provider's object id against the intent, the reversal or transfer on the row, the
   journal; or the failure: a transient one backs off, a permanent one or the last of
   the budget parks the intent (no further call until an operator acts).

Each step costs a fixed number of SQL statements per claimed batch, not per item (the
throughput acceptance of issue 13): the claim and the lease are one ``UPDATE …
RETURNING``, intents are read and inserted once per batch, and the outcomes are written
with one statement per kind of write (:func:`_record_all`). A batch that cannot be
written in bulk is recorded again item by item, each in its savepoint.

A crash between the provider's answer and step 3 leaves the intent ``pending``; once
the lease runs out, the next run calls again with the same key and the same amount and
Stripe replays its answer. A refund that landed meanwhile makes the *next* intent,
after this one is recorded. If the intent was first sent longer ago than the
provider remembers keys (``key_memory``, 24 h for Stripe), the worker first looks the
object up (when the provider can: :class:`TransferFinder`, :class:`ReversalFinder`)
and adopts it instead of making a second one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from veza_ledger import _journal
from veza_ledger._base import Accounts, check_id, check_money, new_id
from veza_ledger._compat import positional_deprecated
from veza_ledger._errors import (
    IllegalTransitionError,
    LedgerConfigurationError,
    LedgerError,
    TransitionConflictError,
)
from veza_ledger._intents import PERMANENT, classify_provider_error
from veza_ledger._ledger import Ledger
from veza_ledger._machines import INTENT, TRANSFER
from veza_ledger._provider import (
    ReversalFinder,
    TransferCreator,
    TransferFinder,
    TransferReverser,
)
from veza_ledger._schema import ProviderIntent, SellerTransfer, SellerTransferReversal
from veza_ledger._tracing import traced_run
from veza_ledger._transfers import COVERED, MAX_ERROR, ReversalFacts, _path
from veza_ledger._types import utcnow

logger = logging.getLogger("veza_ledger.workers")

_TRANSFERS = cast("sa.Table", SellerTransfer.__table__)
_INTENTS = cast("sa.Table", ProviderIntent.__table__)
_REVERSALS = cast("sa.Table", SellerTransferReversal.__table__)

MAX_ATTEMPTS = 12
"""The retry budget: attempts before an intent is parked."""

DEFAULT_LEASE = dt.timedelta(minutes=5)
"""How long a claimed row is left alone by other workers (longer than a provider call)."""

KEY_MEMORY = dt.timedelta(hours=24)
"""How long Stripe remembers an idempotency key (at least)."""


def backoff(attempts: int, *, base: float = 60.0, cap: float = 3600.0) -> dt.timedelta:
    """Delay before attempt ``attempts + 1``: 1 min, 2, 4, … capped at an hour."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


@attrs.define
class WorkerReport:
    """What one worker run did (transfer row ids)."""

    done: list[str] = attrs.field(factory=list)
    failed: list[str] = attrs.field(factory=list)
    parked: list[str] = attrs.field(factory=list)


@attrs.frozen
class _Job:
    """One provider call to make, read from its committed intent."""

    intent_id: str
    kind: str
    transfer_id: str
    amount: int
    currency: str
    destination: str
    stripe_transfer_id: str | None
    order_id: str | None
    first_sent_at: dt.datetime


@attrs.frozen
class _Policy:
    at: dt.datetime
    lease: dt.timedelta
    max_attempts: int
    key_memory: dt.timedelta
    classify: Callable[[BaseException], str]


def _ledger(engine: sa.Engine | Ledger) -> Ledger:
    return engine if isinstance(engine, Ledger) else Ledger(engine)


def _not_parked() -> sa.ColumnElement[bool]:
    return ~sa.exists().where(
        ProviderIntent.object_id == SellerTransfer.id,
        ProviderIntent.kind.in_(("transfer", "reversal")),
        ProviderIntent.status == "parked",
    )


def _lease_free(at: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(SellerTransfer.leased_until.is_(None), SellerTransfer.leased_until <= at)


def _claim(
    ledger: Ledger, session: Session, condition: sa.ColumnElement[bool], limit: int
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


def _job(intent: ProviderIntent, transfer: SellerTransfer, at: dt.datetime) -> _Job:
    if intent.first_sent_at is None:
        intent.first_sent_at = at
    return _Job(
        intent.id,
        intent.kind,
        transfer.id,
        intent.amount,
        intent.currency,
        transfer.destination,
        transfer.stripe_transfer_id,
        transfer.order_id,
        intent.first_sent_at,
    )


def _lease(session: Session, ids: list[str], policy: _Policy) -> None:
    if not ids:
        return
    session.execute(
        sa.update(SellerTransfer)
        .where(SellerTransfer.id.in_(ids))
        .values(leased_until=policy.at + policy.lease)
    )


def _claim_and_lease(
    ledger: Ledger,
    session: Session,
    condition: sa.ColumnElement[bool],
    limit: int,
    policy: _Policy,
) -> list[SellerTransfer]:
    """Claim up to ``limit`` due rows and lease them in one statement, in id order.

    ``UPDATE … SET leased_until WHERE id IN (SELECT id … FOR UPDATE SKIP LOCKED LIMIT n)
    RETURNING *``: the claim (row locks, skipping rows another worker holds) and the
    lease are one round trip instead of two. Rows the intend step then finds nothing to
    do for are released in the same transaction (:func:`_release_ids`), so only rows
    whose call is under way stay leased.
    """
    pick = (
        sa.select(SellerTransfer.id)
        .where(condition)
        .order_by(SellerTransfer.id)
        .limit(limit)
        .correlate(None)  # the subquery reads the table itself, not the UPDATE's row
    )
    if ledger.engine.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    statement = (
        sa.update(SellerTransfer)
        .where(SellerTransfer.id.in_(pick))
        .values(leased_until=policy.at + policy.lease)
        .returning(SellerTransfer)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted(session.scalars(statement), key=lambda transfer: transfer.id)


def _release_ids(session: Session, ids: Sequence[str]) -> None:
    """Clear the lease of the rows ``ids`` (one statement; none when ``ids`` is empty)."""
    if ids:
        session.execute(
            sa.update(_TRANSFERS).where(_TRANSFERS.c.id.in_(ids)).values(leased_until=None)
        )


@attrs.frozen
class _IntentView:
    """The columns of a committed intent the intend step decides on (read by Core)."""

    id: str
    object_id: str
    status: str
    seq: int
    amount: int
    currency: str
    first_sent_at: dt.datetime | None


def _intent_views(session: Session, condition: sa.ColumnElement[bool]) -> list[_IntentView]:
    """The intents matching ``condition``, by transfer and seq, in one Core ``SELECT``."""
    rows = session.execute(
        sa.select(
            _INTENTS.c.object_id,
            _INTENTS.c.id,
            _INTENTS.c.status,
            _INTENTS.c.seq,
            _INTENTS.c.amount,
            _INTENTS.c.currency,
            _INTENTS.c.first_sent_at,
        )
        .where(condition)
        .order_by(_INTENTS.c.object_id, _INTENTS.c.seq)
    )
    return [
        _IntentView(
            row.id, row.object_id, row.status, row.seq, row.amount, row.currency, row.first_sent_at
        )
        for row in rows
    ]


def _intent_row(
    intent_id: str, kind: str, *, transfer: SellerTransfer, seq: int, amount: int, policy: _Policy
) -> dict[str, Any]:
    return {
        "id": intent_id,
        "kind": kind,
        "object_id": transfer.id,
        "seq": seq,
        "seller_id": transfer.seller_id,
        "amount": amount,
        "currency": transfer.currency,
        "status": INTENT.initial,
        "attempts": 0,
        "first_sent_at": policy.at,
        "created_at": policy.at,
        "updated_at": policy.at,
    }


def _job_for(
    intent_id: str,
    kind: str,
    *,
    amount: int,
    currency: str,
    transfer: SellerTransfer,
    first_sent_at: dt.datetime,
) -> _Job:
    return _Job(
        intent_id,
        kind,
        transfer.id,
        amount,
        currency,
        transfer.destination,
        transfer.stripe_transfer_id,
        transfer.order_id,
        first_sent_at,
    )


def _write_intents(
    session: Session, new: list[dict[str, Any]], stamp: list[str], policy: _Policy
) -> None:
    """Insert the new intents (one statement) and stamp ``first_sent_at`` where missing.

    Every intent is committed before its call: the caller's transaction commits these
    before any provider is called.
    """
    if new:
        session.execute(sa.insert(_INTENTS), new)
    if stamp:
        session.execute(
            sa.update(_INTENTS)
            .where(_INTENTS.c.id.in_(stamp), _INTENTS.c.first_sent_at.is_(None))
            .values(first_sent_at=policy.at)
        )


# ---------------------------------------------------------------------------- step 1


def _intend_reversals(
    _ledger: Ledger,  # the shape every intend step shares
    session: Session,
    transfers: list[SellerTransfer],
    policy: _Policy,
) -> list[_Job]:
    """The open reversal intent of each locked transfer, or a new one for what is left.

    The claimed transfers' intents are read in one Core statement (under the claim's
    row locks, which every intent write also takes) and the new intents inserted in one.
    """
    intents: dict[str, list[_IntentView]] = {t.id: [] for t in transfers}
    with_id = [t.id for t in transfers if t.stripe_transfer_id]
    if with_id:
        condition = sa.and_(_INTENTS.c.kind == "reversal", _INTENTS.c.object_id.in_(with_id))
        for view in _intent_views(session, condition):
            intents[view.object_id].append(view)
    jobs: list[_Job] = []
    new: list[dict[str, Any]] = []
    stamp: list[str] = []
    for transfer in transfers:
        if not transfer.stripe_transfer_id:
            continue  # no Stripe id yet (a rule reports it)
        mine = intents[transfer.id]
        open_ = [i for i in mine if i.status in ("pending", "parked")]
        if open_:
            intent = open_[-1]
            if intent.status == "parked":
                continue
            if intent.first_sent_at is None:
                stamp.append(intent.id)
            first_sent = intent.first_sent_at or policy.at
            jobs.append(
                _job_for(
                    intent.id,
                    "reversal",
                    amount=intent.amount,
                    currency=intent.currency,
                    transfer=transfer,
                    first_sent_at=first_sent,
                )
            )
            continue
        covered = sum(i.amount for i in mine if i.status in COVERED)
        outstanding = transfer.reversal_due - transfer.reversed_amount - covered
        if outstanding <= 0:
            continue
        seq = (mine[-1].seq + 1) if mine else 1
        row = _intent_row(
            new_id(), "reversal", transfer=transfer, seq=seq, amount=outstanding, policy=policy
        )
        new.append(row)
        jobs.append(
            _job_for(
                row["id"],
                "reversal",
                amount=outstanding,
                currency=transfer.currency,
                transfer=transfer,
                first_sent_at=policy.at,
            )
        )
    _write_intents(session, new, stamp, policy)
    return jobs


def _intend_reversal(
    session: Session,
    transfer: SellerTransfer,
    intents: list[ProviderIntent],
    policy: _Policy,
) -> _Job | None:
    """The open reversal intent of a locked transfer (``intents``: all of them, by seq)."""
    if not transfer.stripe_transfer_id:
        return None  # no Stripe id yet (a rule reports it)
    open_ = [i for i in intents if i.status in ("pending", "parked")]
    if open_:
        intent = open_[-1]
        if intent.status == "parked":
            return None
    else:
        covered = sum(i.amount for i in intents if i.status in COVERED)
        outstanding = transfer.reversal_due - transfer.reversed_amount - covered
        if outstanding <= 0:
            return None
        intent = ProviderIntent(
            id=new_id(),
            kind="reversal",
            object_id=transfer.id,
            seq=(intents[-1].seq + 1) if intents else 1,
            seller_id=transfer.seller_id,
            amount=outstanding,
            currency=transfer.currency,
            status=INTENT.initial,
            attempts=0,
            created_at=policy.at,
            updated_at=policy.at,
        )
        session.add(intent)
    return _job(intent, transfer, policy.at)


def _intend_transfers(
    ledger: Ledger, session: Session, transfers: list[SellerTransfer], policy: _Policy
) -> list[_Job]:
    """Each locked transfer's intent (its id is the row id: the key it always had).

    One Core ``SELECT`` reads the batch's intents, one ``INSERT`` writes the new ones,
    and one compare-and-set ``UPDATE`` moves the ``failed`` rows back to ``pending``.
    """
    ids = [t.id for t in transfers]
    existing = {v.id: v for v in _intent_views(session, _INTENTS.c.id.in_(ids))}
    jobs: list[_Job] = []
    new: list[dict[str, Any]] = []
    stamp: list[str] = []
    revive: list[SellerTransfer] = []
    for transfer in transfers:
        intent = existing.get(transfer.id)
        if intent is None:
            new.append(
                _intent_row(
                    transfer.id,
                    "transfer",
                    transfer=transfer,
                    seq=1,
                    amount=transfer.amount,
                    policy=policy,
                )
            )
            amount, currency, first_sent = transfer.amount, transfer.currency, policy.at
        elif intent.status != "pending":
            continue
        else:
            if intent.first_sent_at is None:
                stamp.append(intent.id)
            amount, currency = intent.amount, intent.currency
            first_sent = intent.first_sent_at or policy.at
        if transfer.status == "failed":
            TRANSFER.check(transfer.id, transfer.status, to_status="pending")
            revive.append(transfer)
        jobs.append(
            _job_for(
                transfer.id,
                "transfer",
                amount=amount,
                currency=currency,
                transfer=transfer,
                first_sent_at=first_sent,
            )
        )
    _write_intents(session, new, stamp, policy)
    if revive:
        at = ledger.now()
        result = session.execute(
            sa.update(_TRANSFERS)
            .where(_TRANSFERS.c.id.in_([t.id for t in revive]), _TRANSFERS.c.status == "failed")
            .values(status="pending", updated_at=at)
        )
        _check_count(result, len(revive), "failed -> pending")
        for transfer in revive:
            set_committed_value(transfer, "status", "pending")
            set_committed_value(transfer, "updated_at", at)
    return jobs


def _intend_transfer(
    ledger: Ledger, session: Session, transfer: SellerTransfer, policy: _Policy
) -> _Job | None:
    """The transfer's intent (its id is the row id: the key it always had)."""
    jobs = _intend_transfers(ledger, session, [transfer], policy)
    return jobs[0] if jobs else None


def _check_count(result: sa.Result[Any], expected: int, what: str) -> None:
    """Raise :class:`TransitionConflictError` unless a batched write matched every row.

    The rows are locked (PostgreSQL) or the writer is alone (SQLite), so a mismatch
    means a bug, not a race; the caller falls back to recording item by item.
    """
    count = getattr(result, "rowcount", expected)
    if count != expected:
        msg = f"a batched write ({what}) matched {count} of {expected} rows"
        raise TransitionConflictError(msg)


# ---------------------------------------------------------------------------- step 2


def _call_reversal(reverser: TransferReverser, job: _Job, policy: _Policy) -> str:
    if policy.at - job.first_sent_at >= policy.key_memory and isinstance(reverser, ReversalFinder):
        found = reverser.find_reversal(job.stripe_transfer_id or "", job.intent_id)
        if found is not None:
            logger.info(
                "intent %s: adopting reversal %s found at the provider", job.intent_id, found
            )
            return found
    result = reverser.reverse_transfer(
        job.intent_id, job.stripe_transfer_id or "", amount=job.amount
    )
    return result.id


def _call_transfer(creator: TransferCreator, job: _Job, policy: _Policy) -> str:
    if policy.at - job.first_sent_at >= policy.key_memory and isinstance(creator, TransferFinder):
        found = creator.find_transfer_by_key(
            job.intent_id,
            destination=job.destination,
            created_after=job.first_sent_at - dt.timedelta(hours=1),
        )
        if found is not None:
            logger.info(
                "intent %s: adopting transfer %s found at the provider", job.intent_id, found
            )
            return found
    result = creator.create_transfer(
        job.intent_id,
        amount=job.amount,
        currency=job.currency,
        destination=job.destination,
        transfer_group=f"order-{job.order_id}" if job.order_id else None,
    )
    return result.id


# ---------------------------------------------------------------------------- step 3


_Locked = dict[str, SellerTransfer | ProviderIntent]


def _lock_all(
    ledger: Ledger, session: Session, outcomes: list[tuple[_Job, str | Exception]]
) -> tuple[_Locked, ReversalFacts]:
    """Lock the batch's transfers (in id order, as refunds do), then read the rest.

    Read after the locks, in one statement each for the whole batch: the jobs' intents
    (with every reversal intent of the reversal jobs' transfers, for what is covered) and
    the recorded reversals (of those transfers, and any with a provider id to record).
    """
    jobs = [job for job, _ in outcomes]
    query = (
        sa.select(SellerTransfer)
        .where(SellerTransfer.id.in_(sorted({j.transfer_id for j in jobs})))
        .order_by(SellerTransfer.id)
        .execution_options(populate_existing=True)
    )
    if ledger.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    locked: _Locked = {f"t:{t.id}": t for t in session.scalars(query)}
    reversing = sorted({j.transfer_id for j in jobs if j.kind == "reversal"})
    facts = ReversalFacts(reversed=dict.fromkeys(reversing, 0), covered=dict.fromkeys(reversing, 0))
    intents = session.scalars(
        sa.select(ProviderIntent)
        .where(
            sa.or_(
                ProviderIntent.id.in_([j.intent_id for j in jobs]),
                sa.and_(ProviderIntent.kind == "reversal", ProviderIntent.object_id.in_(reversing)),
            )
        )
        .execution_options(populate_existing=True)
    )
    for intent in intents:
        locked[f"i:{intent.id}"] = intent
        if intent.kind == "reversal" and intent.status in COVERED:
            facts.covered[intent.object_id] += intent.amount
    recording = [o for j, o in outcomes if j.kind == "reversal" and isinstance(o, str)]
    if recording:
        for reversal in session.scalars(
            sa.select(SellerTransferReversal)
            .where(
                sa.or_(
                    SellerTransferReversal.transfer_id.in_(reversing),
                    SellerTransferReversal.provider_reversal_id.in_(recording),
                )
            )
            .execution_options(populate_existing=True)
        ):
            facts.reversals[reversal.provider_reversal_id] = reversal
            if reversal.transfer_id in facts.reversed:
                facts.reversed[reversal.transfer_id] += reversal.amount
    return locked, facts


def _locked(
    ledger: Ledger, session: Session, job: _Job, cache: _Locked | None = None
) -> tuple[SellerTransfer, ProviderIntent]:
    """The transfer under its row lock, then its intent (only written under that lock)."""
    transfer, intent = (
        (cache or {}).get(f"t:{job.transfer_id}"),
        (cache or {}).get(f"i:{job.intent_id}"),
    )
    if not isinstance(transfer, SellerTransfer):
        transfer = ledger._get(session, SellerTransfer, job.transfer_id, lock=True)
    if not isinstance(intent, ProviderIntent):
        intent = ledger._get(session, ProviderIntent, job.intent_id)
    return transfer, intent


def _succeeded(
    ledger: Ledger,
    session: Session,
    *,
    job: _Job,
    provider_id: str,
    cache: _Locked | None = None,
    facts: ReversalFacts | None = None,
) -> None:
    transfer, intent = _locked(ledger, session, job, cache)
    if intent.status == "pending":
        ledger._move(
            session,
            ProviderIntent,
            INTENT,
            intent,
            "succeeded",
            values={"provider_object_id": provider_id, "last_error": None},
        )
    if job.kind == "reversal":
        if ledger.transfers._record_reversal(
            session,
            transfer,
            provider_id,
            job.amount,
            intent_id=job.intent_id,
            extra={"leased_until": None},
            facts=facts,
        ):
            return
    elif transfer.status == "pending":
        ledger.transfers._transfer_completed(
            session, transfer, provider_id, extra={"leased_until": None}
        )
        return
    _release(session, transfer)


def _failed(
    ledger: Ledger,
    session: Session,
    *,
    job: _Job,
    exc: Exception,
    policy: _Policy,
    cache: _Locked | None = None,
) -> bool:
    """Record a failed call; whether the intent was parked."""
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    error_class = policy.classify(exc)
    transfer, intent = _locked(ledger, session, job, cache)
    attempts = intent.attempts + 1
    park = error_class == PERMANENT or attempts >= policy.max_attempts
    logger.warning(
        "intent %s (%s of transfer %s): provider call failed (attempt %d, %s%s): %s",
        intent.id,
        job.kind,
        transfer.id,
        attempts,
        error_class,
        ", parked" if park else "",
        type(exc).__name__,
    )
    intent.attempts = attempts
    intent.last_error = error
    intent.error_class = error_class
    intent.updated_at = policy.at
    retry_at = None if park else policy.at + backoff(attempts)
    values = {"attempts": attempts, "next_attempt_at": retry_at, "last_error": error}
    if job.kind == "transfer" and transfer.status == "pending":
        ledger._move(session, SellerTransfer, TRANSFER, transfer, "failed", values=values)
    else:
        session.execute(
            sa.update(SellerTransfer)
            .where(SellerTransfer.id == transfer.id)
            .values(**values, updated_at=policy.at)
        )
    if park and intent.status == "pending":
        ledger.provider_intents._park(session, intent, error, error_class, policy.at)
    _release(session, transfer)
    return park


def _release(session: Session, transfer: SellerTransfer) -> None:
    session.execute(
        sa.update(SellerTransfer).where(SellerTransfer.id == transfer.id).values(leased_until=None)
    )


# ---------------------------------------------------------------------------- the loop


def _work(
    ledger: Ledger,
    due: sa.ColumnElement[bool],
    intend: Callable[[Ledger, Session, list[SellerTransfer], _Policy], list[_Job]],
    call: Callable[[_Job, _Policy], str],
    policy: _Policy,
    *,
    batch_size: int,
    cancel: threading.Event | None,
) -> WorkerReport:
    """Claim due rows in batches (each row once per run), then call and record each."""
    cancel = cancel or threading.Event()
    report = WorkerReport()
    seen: set[str] = set()
    while not cancel.is_set():
        jobs: list[_Job] = []
        with ledger.transaction() as session:
            fresh = SellerTransfer.id.not_in(seen) if seen else sa.true()
            condition = sa.and_(due, fresh, _lease_free(policy.at), _not_parked())
            rows = _claim_and_lease(ledger, session, condition, batch_size, policy)
            if not rows:
                return report
            seen.update(transfer.id for transfer in rows)
            jobs = intend(ledger, session, rows, policy)
            working = {job.transfer_id for job in jobs}
            _release_ids(session, [t.id for t in rows if t.id not in working])
        outcomes: list[tuple[_Job, str | Exception]] = []
        for job in jobs:  # the intents and leases are committed; no lock is held
            if cancel.is_set():
                break  # the other leases run out; the next run takes over
            outcomes.append((job, _call(job, call, policy)))
        _record(ledger, outcomes, policy, report)
    return report


def _call(job: _Job, call: Callable[[_Job, _Policy], str], policy: _Policy) -> str | Exception:
    try:
        return call(job, policy)
    except Exception as exc:  # noqa: BLE001 - any provider failure is recorded and classified
        return exc


def _record(
    ledger: Ledger,
    outcomes: list[tuple[_Job, str | Exception]],
    policy: _Policy,
    report: WorkerReport,
) -> None:
    """Record a batch's outcomes in one transaction (if one fails, each in its savepoint).

    Rows are locked in id order (as refunds lock them), so the two never deadlock; an
    outcome that cannot be recorded is logged and left to the lease (the intent stays
    ``pending`` and the next run replays it with the same key).
    """
    if not outcomes:
        return
    try:  # the common case: the whole batch in one transaction, no savepoints
        with ledger.transaction() as session:
            done = WorkerReport()
            cache, facts = _lock_all(ledger, session, outcomes)
            _record_all(
                ledger,
                session,
                outcomes=outcomes,
                policy=policy,
                report=done,
                cache=cache,
                facts=facts,
            )
    except (LedgerError, IntegrityError):
        pass  # one outcome cannot be recorded: again, each in its savepoint
    else:
        report.done.extend(done.done)
        report.failed.extend(done.failed)
        report.parked.extend(done.parked)
        return
    with ledger.transaction() as session:
        for job, outcome in outcomes:
            try:
                with session.begin_nested():
                    _record_one(
                        ledger,
                        session,
                        job=job,
                        outcome=outcome,
                        policy=policy,
                        report=report,
                        cache=None,
                        facts=None,
                    )
            except (LedgerError, IntegrityError) as exc:
                logger.warning(  # the intent replays: a warning, and no traceback needed
                    "intent %s: recording the outcome failed (%s); the next run replays it",
                    job.intent_id,
                    type(exc).__name__,
                )


@attrs.define
class _Writes:
    """The batch's successful outcomes as rows for a handful of batched statements."""

    intents: list[dict[str, Any]] = attrs.field(factory=list)
    completed: list[dict[str, Any]] = attrs.field(factory=list)
    reversed: list[dict[str, Any]] = attrs.field(factory=list)
    reversals: list[dict[str, Any]] = attrs.field(factory=list)
    postings: list[_journal.Posting] = attrs.field(factory=list)
    release: list[str] = attrs.field(factory=list)

    def apply(self, session: Session, at: dt.datetime) -> None:
        """Send the writes: one statement per kind of write, whatever the batch size."""
        if self.intents:
            result = session.execute(
                sa.update(_INTENTS)
                .where(_INTENTS.c.id == sa.bindparam("b_id"), _INTENTS.c.status == "pending")
                .values(
                    status="succeeded",
                    provider_object_id=sa.bindparam("b_object"),
                    last_error=None,
                    updated_at=at,
                ),
                self.intents,
            )
            _check_count(result, len(self.intents), "intents pending -> succeeded")
        if self.reversals:
            session.execute(sa.insert(_REVERSALS), self.reversals)
        _journal.post_many(session, self.postings)
        if self.completed:
            result = session.execute(
                sa.update(_TRANSFERS)
                .where(
                    _TRANSFERS.c.id == sa.bindparam("b_id"),
                    _TRANSFERS.c.status == sa.bindparam("b_from"),
                )
                .values(
                    status=sa.bindparam("b_to"),
                    stripe_transfer_id=sa.bindparam("b_object"),
                    last_error=None,
                    next_attempt_at=None,
                    leased_until=None,
                    updated_at=at,
                ),
                self.completed,
            )
            _check_count(result, len(self.completed), "transfers completed")
        if self.reversed:
            result = session.execute(
                sa.update(_TRANSFERS)
                .where(
                    _TRANSFERS.c.id == sa.bindparam("b_id"),
                    _TRANSFERS.c.status == sa.bindparam("b_from"),
                )
                .values(
                    status=sa.bindparam("b_to"),
                    stripe_reversal_id=sa.bindparam("b_object"),
                    reversed_amount=sa.bindparam("b_reversed"),
                    reversal_due=sa.bindparam("b_due"),
                    last_error=None,
                    next_attempt_at=None,
                    attempts=0,
                    leased_until=None,
                    updated_at=at,
                ),
                self.reversed,
            )
            _check_count(result, len(self.reversed), "reversals recorded")
        _release_ids(session, self.release)


def _record_all(
    ledger: Ledger,
    session: Session,
    *,
    outcomes: list[tuple[_Job, str | Exception]],
    policy: _Policy,
    report: WorkerReport,
    cache: _Locked,
    facts: ReversalFacts,
) -> None:
    """Record a batch's outcomes under the locks :func:`_lock_all` took, in bulk.

    Each success is decided in Python exactly as :func:`_succeeded` decides it (same
    checks, same statuses, same journal transactions, same errors), from the rows read
    under the locks; the writes then go out as one statement per kind
    (:class:`_Writes`) instead of four or five per item. Failures are rare and keep
    :func:`_failed`. Any error rolls the whole batch back and :func:`_record` records
    the outcomes again one by one.
    """
    writes = _Writes()
    for job, outcome in outcomes:
        if isinstance(outcome, Exception):
            parked = _failed(ledger, session, job=job, exc=outcome, policy=policy, cache=cache)
            (report.parked if parked else report.failed).append(job.transfer_id)
            continue
        transfer, intent = _locked(ledger, session, job, cache)
        if intent.status == "pending":
            INTENT.check(intent.id, intent.status, to_status="succeeded")
            writes.intents.append({"b_id": intent.id, "b_object": outcome})
        if job.kind == "reversal":
            _plan_reversal(
                ledger, transfer, job=job, provider_id=outcome, facts=facts, writes=writes
            )
        elif transfer.status == "pending":
            _plan_completed(transfer, outcome, writes)
        else:
            writes.release.append(transfer.id)
        report.done.append(job.transfer_id)
    writes.apply(session, ledger.now())


def _plan_completed(transfer: SellerTransfer, provider_id: str, writes: _Writes) -> None:
    """:meth:`Ledger._transfer_completed` as rows: ``completed`` (or on to reversal)."""
    check_id(provider_id, "stripe_transfer_id")
    TRANSFER.check(transfer.id, transfer.status, to_status="completed")
    target = "completed"
    if transfer.reversal_due > transfer.reversed_amount:  # a refund landed meanwhile
        TRANSFER.check(transfer.id, target, to_status="reversal_pending")
        target = "reversal_pending"
    writes.completed.append(
        {"b_id": transfer.id, "b_from": transfer.status, "b_to": target, "b_object": provider_id}
    )
    seller, currency, amount = transfer.seller_id, transfer.currency, transfer.amount
    legs = [
        _journal.debit(Accounts.seller_payable(seller), currency, amount),
        _journal.credit(Accounts.STRIPE_BALANCE, currency, amount),
        _journal.debit(Accounts.connected_balance(seller), currency, amount),
        _journal.credit(Accounts.connected_funding(seller), currency, amount),
    ]
    writes.postings.append(_journal.Posting(f"transfer:{transfer.id}:completed", "transfer", legs))


def _plan_reversal(
    ledger: Ledger,
    transfer: SellerTransfer,
    *,
    job: _Job,
    provider_id: str,
    facts: ReversalFacts,
    writes: _Writes,
) -> None:
    """:meth:`Ledger._record_reversal` with ``facts`` as rows (the same rules, in order).

    Recording a provider reversal already recorded for this transfer and amount changes
    nothing (the lease is released); for another transfer or amount it raises.
    """
    check_id(provider_id, "stripe_reversal_id")
    amount, _ = check_money(job.amount, transfer.currency)
    if transfer.status in ("pending", "failed"):
        raise IllegalTransitionError("transfer", transfer.id, transfer.status, "reversed")
    existing = facts.reversals.get(provider_id)
    if existing is not None:
        if existing.transfer_id != transfer.id or existing.amount != amount:
            msg = (
                f"reversal {provider_id} is recorded for transfer "
                f"{existing.transfer_id} ({existing.amount}), not {transfer.id} ({amount})"
            )
            raise LedgerConfigurationError(msg)
        writes.release.append(transfer.id)
        return
    if transfer.reversed_amount + amount > transfer.amount:
        msg = f"reversing {amount} would exceed transfer {transfer.id}'s {transfer.amount}"
        raise LedgerConfigurationError(msg)
    row = {
        "provider_reversal_id": provider_id,
        "transfer_id": transfer.id,
        "intent_id": job.intent_id,
        "amount": amount,
        "currency": transfer.currency,
        "created_at": ledger.now(),
    }
    writes.reversals.append(row)
    facts.reversals[provider_id] = SellerTransferReversal(**row)
    reversed_amount = facts.reversed.get(transfer.id, 0) + amount
    facts.reversed[transfer.id] = reversed_amount
    seller, currency = transfer.seller_id, transfer.currency
    legs = [
        _journal.debit(Accounts.STRIPE_BALANCE, currency, amount),
        _journal.credit(Accounts.seller_payable(seller), currency, amount),
        _journal.debit(Accounts.connected_funding(seller), currency, amount),
        _journal.credit(Accounts.connected_balance(seller), currency, amount),
    ]
    writes.postings.append(
        _journal.Posting(f"transfer:{transfer.id}:reversal:{provider_id}", "reversal", legs)
    )
    due = max(transfer.reversal_due, reversed_amount)
    settled = reversed_amount + facts.covered.get(transfer.id, 0)
    if reversed_amount == transfer.amount:  # the statuses of Ledger._settle_transfer
        target = "reversed"
    elif due > settled:
        target = "reversal_pending"
    elif settled > 0:
        target = "partially_reversed"
    else:
        target = transfer.status
    _path(
        transfer.status, target
    )  # raises IllegalTransitionError when no chain of moves leads there
    writes.reversed.append(
        {
            "b_id": transfer.id,
            "b_from": transfer.status,
            "b_to": target,
            "b_object": provider_id,
            "b_reversed": reversed_amount,
            "b_due": due,
        }
    )


def _record_one(
    ledger: Ledger,
    session: Session,
    *,
    job: _Job,
    outcome: str | Exception,
    policy: _Policy,
    report: WorkerReport,
    cache: _Locked | None,
    facts: ReversalFacts | None,
) -> None:
    if isinstance(outcome, Exception):
        parked = _failed(ledger, session, job=job, exc=outcome, policy=policy, cache=cache)
        (report.parked if parked else report.failed).append(job.transfer_id)
    else:
        _succeeded(ledger, session, job=job, provider_id=outcome, cache=cache, facts=facts)
        report.done.append(job.transfer_id)


def _run_job(
    ledger: Ledger,
    job: _Job,
    call: Callable[[_Job, _Policy], str],
    policy: _Policy,
    report: WorkerReport,
) -> bool:
    _record(ledger, [(job, _call(job, call, policy))], policy, report)
    return job.transfer_id in report.done


def _policy(
    now: dt.datetime | None,
    lease: dt.timedelta,
    max_attempts: int,
    key_memory: dt.timedelta,
    classify: Callable[[BaseException], str],
) -> _Policy:
    return _Policy(now or utcnow(), lease, max_attempts, key_memory, classify)


@traced_run("ledger reversal worker")
def run_reversal_worker(
    engine: sa.Engine | Ledger,
    reverser: TransferReverser,
    *,
    batch_size: int = 50,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    key_memory: dt.timedelta = KEY_MEMORY,
    classify: Callable[[BaseException], str] = classify_provider_error,
) -> WorkerReport:
    """Reverse what is due on ``reversal_pending`` transfers, one intent at a time.

    Args:
        engine: The ledger (or its engine).
        reverser: The provider (veza-payments' ``StripeConnect`` fits; the adapter
            :class:`veza_ledger.adapters.StripeWorkerProvider` also finds lost objects).
        batch_size: Rows claimed per transaction.
        cancel: Set to stop after the current call.
        now: The time the run acts at (tests).
        lease: How long a claimed row is left alone by other workers.
        max_attempts: The retry budget before an intent is parked.
        key_memory: How long the provider remembers idempotency keys.
        classify: ``permanent`` or ``transient`` for a provider error.
    """
    ledger = _ledger(engine)
    policy = _policy(now, lease, max_attempts, key_memory, classify)
    due = sa.and_(
        SellerTransfer.status == "reversal_pending",
        sa.or_(
            SellerTransfer.next_attempt_at.is_(None), SellerTransfer.next_attempt_at <= policy.at
        ),
    )
    return _work(
        ledger,
        due,
        _intend_reversals,
        lambda job, p: _call_reversal(reverser, job, p),
        policy,
        batch_size=batch_size,
        cancel=cancel,
    )


@traced_run("ledger transfer worker")
def run_transfer_worker(
    engine: sa.Engine | Ledger,
    creator: TransferCreator,
    *,
    batch_size: int = 50,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    key_memory: dt.timedelta = KEY_MEMORY,
    classify: Callable[[BaseException], str] = classify_provider_error,
) -> WorkerReport:
    """Pay ``pending`` transfers and retry ``failed`` ones whose backoff elapsed.

    The key is the transfer row's id (its intent's id), so a row left ``pending`` by a
    crash after Stripe's answer gets the same transfer back. Arguments as for
    :func:`run_reversal_worker`.
    """
    ledger = _ledger(engine)
    policy = _policy(now, lease, max_attempts, key_memory, classify)
    due = sa.or_(
        SellerTransfer.status == "pending",
        sa.and_(SellerTransfer.status == "failed", SellerTransfer.next_attempt_at <= policy.at),
    )
    return _work(
        ledger,
        due,
        _intend_transfers,
        lambda job, p: _call_transfer(creator, job, p),
        policy,
        batch_size=batch_size,
        cancel=cancel,
    )


@positional_deprecated
def retry_transfer_now(
    engine: sa.Engine | Ledger, creator: TransferCreator, *, transfer_id: str
) -> SellerTransfer:
    """The admin's "retry": pay one ``pending``/``failed`` transfer now, same key.

    A parked transfer intent goes back to ``pending`` first (audited as the actor
    ``retry_transfer_now``).

    Raises:
        IllegalTransitionError: The transfer is not pending or failed.
        LedgerError: The provider refused again (the row is ``failed`` with the error).
    """
    ledger = _ledger(engine)
    policy = _policy(None, DEFAULT_LEASE, MAX_ATTEMPTS, KEY_MEMORY, classify_provider_error)
    with ledger.transaction() as session:
        transfer = ledger._get(session, SellerTransfer, transfer_id, lock=True)
        if transfer.status not in ("pending", "failed"):
            TRANSFER.check(transfer.id, transfer.status, to_status="completed")
        parked = session.get(ProviderIntent, transfer.id, populate_existing=True)
        retry_parked = parked is not None and parked.status == "parked"
    if retry_parked:
        ledger.provider_intents.retry(transfer_id, actor="retry_transfer_now", reason="admin retry")
    with ledger.transaction() as session:
        transfer = ledger._get(session, SellerTransfer, transfer_id, lock=True)
        job = _intend_transfer(ledger, session, transfer, policy)
        if job is not None:
            _lease(session, [transfer.id], policy)
    ok = job is not None and _run_job(
        ledger, job, lambda j, p: _call_transfer(creator, j, p), policy, WorkerReport()
    )
    if not ok:
        msg = f"transfer {transfer_id} failed again: {ledger.transfers.get(transfer_id).last_error}"
        raise LedgerError(msg)
    return ledger.transfers.get(transfer_id)


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
