# ruff: noqa: SLF001 - the worker is the ledger's own part (as _workers.py, exempted in pyproject)
"""The payout worker: a seller's payouts through the same intent path as transfers.

A payout's intent (amount, currency, key; the destination account is on the payout row,
which never changes) is committed with the row by :meth:`Ledger.create_payout`, after
the check that the seller may pay it out (:class:`PayoutExceedsBalanceError` otherwise), and
never changed after. :func:`run_payout_worker` then makes the call in the three steps of
the other workers (see :mod:`veza_ledger._workers`):

1. **Claim** (one short transaction): due ``pending`` payout rows with a ``pending``
   intent, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, each leased (``leased_until``).
2. **Call** the provider (:class:`PayoutCreator`) holding no lock and no transaction:
   a ``payout.paid`` webhook, a refund, a reversal of the seller's transfer all land
   meanwhile without waiting.
3. **Record** (one transaction per payout, under the row lock, re-read): Stripe's payout
   id on the intent and the row ``pending -> in_transit`` (unless a webhook already
   moved it); or the failure: a transient one backs off, a permanent one (Stripe's
   ``balance_insufficient``: a claw-back took the money first) or the last of the budget
   parks the intent with a finding (rule ``parked_intents``) and the
   ``veza_ledger_parked_intents{kind="payout"}`` gauge. The journal posts the payout
   when Stripe reports it paid (:meth:`Ledger.apply_payout_event`).

An intent first sent longer ago than the provider's key memory, with its outcome still
unknown, is looked up first (:class:`PayoutFinder`: the account's payouts in the
creation window, matched on the key in their metadata) and adopted if found.

The worker shares :mod:`veza_ledger._workers`' pieces (``backoff``, the defaults,
``WorkerReport``, the run's ``_Policy``) rather than keeping copies.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger._errors import LedgerConfigurationError
from veza_ledger._findings import resolve_finding, upsert_finding
from veza_ledger._intents import PARKED_RULE, PERMANENT, classify_provider_error
from veza_ledger._ledger import Ledger
from veza_ledger._machines import INTENT, PAYOUT
from veza_ledger._schema import Override, ProviderIntent, SellerPayout
from veza_ledger._tracing import traced_run
from veza_ledger._transfers import MAX_ERROR
from veza_ledger._workers import (
    DEFAULT_LEASE,
    KEY_MEMORY,
    MAX_ATTEMPTS,
    WorkerReport,
    _ledger,
    _Policy,
    _policy,
    backoff,
)

logger = logging.getLogger("veza_ledger.workers")

LOOKUP_SLACK = dt.timedelta(hours=1)
"""How far before the intent's first call the look-up window opens (clock skew)."""


class PayoutResult(Protocol):
    """What a payout call returns (veza-payments' ``Payout`` fits)."""

    @property
    def id(self) -> str:
        """The provider's payout id."""
        ...


class PayoutCreator(Protocol):
    """Pays a connected account out to its bank, idempotently by key.

    veza-payments' ``StripeConnect`` fits (its ``create_payout`` sends the key as the
    ``Idempotency-Key`` and in the payout's metadata, with the ``Stripe-Account``
    header); :class:`veza_ledger.adapters.StripeWorkerProvider` also finds lost ones.
    """

    def create_payout(
        self, idempotency_key: str, *, amount: int, currency: str, stripe_account: str
    ) -> PayoutResult:
        """Pay ``amount`` out of ``stripe_account``; the same key never pays twice."""
        ...


@runtime_checkable
class PayoutFinder(Protocol):
    """A payout creator that can also find a payout it made, by the key in its metadata."""

    def find_payout_by_key(
        self, idempotency_key: str, *, stripe_account: str, created_after: dt.datetime
    ) -> str | None:
        """The id of the payout made with ``idempotency_key`` on the account, if any."""
        ...


@attrs.frozen
class _PayoutJob:
    """One payout call, read from its committed intent and its payout row."""

    intent_id: str
    payout_id: str
    amount: int
    currency: str
    stripe_account: str
    first_sent_at: dt.datetime


# ---------------------------------------------------------------------------- step 1


def _claim(
    ledger: Ledger, session: Session, policy: _Policy, seen: set[str], limit: int
) -> list[_PayoutJob]:
    """Claim due payouts, lease them and read their pending intents (one transaction)."""
    intent_of_row = sa.and_(
        ProviderIntent.kind == "payout", ProviderIntent.object_id == SellerPayout.id
    )
    condition = sa.and_(
        SellerPayout.status == "pending",
        sa.or_(SellerPayout.next_attempt_at.is_(None), SellerPayout.next_attempt_at <= policy.at),
        sa.or_(SellerPayout.leased_until.is_(None), SellerPayout.leased_until <= policy.at),
        sa.exists().where(intent_of_row, ProviderIntent.status == "pending"),
        ~sa.exists().where(intent_of_row, ProviderIntent.status == "parked"),
        SellerPayout.id.not_in(seen) if seen else sa.true(),
    )
    query = (
        sa.select(SellerPayout)
        .where(condition)
        .order_by(SellerPayout.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if ledger.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = {row.id: row for row in session.scalars(query)}
    seen.update(rows)
    if not rows:
        return []
    jobs = []
    for intent in session.scalars(
        sa.select(ProviderIntent)
        .where(
            ProviderIntent.kind == "payout",
            ProviderIntent.object_id.in_(sorted(rows)),
            ProviderIntent.status == "pending",
        )
        .order_by(ProviderIntent.object_id, ProviderIntent.seq)
        .execution_options(populate_existing=True)
    ):
        if intent.first_sent_at is None:
            intent.first_sent_at = policy.at
            intent.updated_at = policy.at
        row = rows[intent.object_id]
        jobs.append(
            _PayoutJob(
                intent.id,
                row.id,
                intent.amount,
                intent.currency,
                row.stripe_account,
                intent.first_sent_at,
            )
        )
    session.execute(
        sa.update(SellerPayout)
        .where(SellerPayout.id.in_(sorted(rows)))
        .values(leased_until=policy.at + policy.lease)
    )
    return jobs


# ---------------------------------------------------------------------------- step 2


def _call(creator: PayoutCreator, job: _PayoutJob, policy: _Policy) -> str | Exception:
    try:
        if policy.at - job.first_sent_at >= policy.key_memory and isinstance(creator, PayoutFinder):
            found = creator.find_payout_by_key(
                job.intent_id,
                stripe_account=job.stripe_account,
                created_after=job.first_sent_at - LOOKUP_SLACK,
            )
            if found is not None:
                logger.info(
                    "intent %s: adopting payout %s found at the provider", job.intent_id, found
                )
                return found
        result = creator.create_payout(
            job.intent_id,
            amount=job.amount,
            currency=job.currency,
            stripe_account=job.stripe_account,
        )
    except Exception as exc:  # noqa: BLE001 - any provider failure is recorded and classified
        return exc
    return result.id


# ---------------------------------------------------------------------------- step 3


def _locked(
    ledger: Ledger, session: Session, job: _PayoutJob
) -> tuple[SellerPayout, ProviderIntent]:
    """The payout under its row lock, then its intent (only written under that lock)."""
    payout = ledger._get(session, SellerPayout, job.payout_id, lock=True)
    intent = ledger._get(session, ProviderIntent, job.intent_id)
    return payout, intent


def _succeeded(ledger: Ledger, session: Session, job: _PayoutJob, provider_id: str) -> None:
    payout, intent = _locked(ledger, session, job)
    if intent.status == "pending":
        ledger._move(
            session,
            ProviderIntent,
            INTENT,
            intent,
            "succeeded",
            values={"provider_object_id": provider_id, "last_error": None},
        )
    elif intent.provider_object_id != provider_id:
        msg = (
            f"intent {intent.id} recorded payout {intent.provider_object_id}, "
            f"the provider answered {provider_id}"
        )
        raise LedgerConfigurationError(msg)
    done = {"leased_until": None, "next_attempt_at": None, "last_error": None}
    latest = ledger.payouts._payout_intents(session, payout.id)[-1]
    if payout.status == "pending" and latest.id == intent.id:
        values = {"external_payout_id": provider_id, **done}
        ledger._move(session, SellerPayout, PAYOUT, payout, "in_transit", values=values)
    else:  # a webhook moved it while the call was in flight (and it may be retried since)
        session.execute(sa.update(SellerPayout).where(SellerPayout.id == payout.id).values(**done))


def _failed(
    ledger: Ledger, session: Session, job: _PayoutJob, exc: Exception, policy: _Policy
) -> bool:
    """Record a failed call; whether the intent was parked."""
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    error_class = policy.classify(exc)
    payout, intent = _locked(ledger, session, job)
    if intent.status != "pending":  # recorded meanwhile (a webhook): nothing to count
        session.execute(
            sa.update(SellerPayout).where(SellerPayout.id == payout.id).values(leased_until=None)
        )
        return False
    attempts = intent.attempts + 1
    park = error_class == PERMANENT or attempts >= policy.max_attempts
    logger.warning(
        "intent %s (payout %s): provider call failed (attempt %d, %s%s): %s",
        intent.id,
        payout.id,
        attempts,
        error_class,
        ", parked" if park else "",
        type(exc).__name__,
    )
    intent.attempts = attempts
    intent.last_error = error
    intent.error_class = error_class
    intent.updated_at = policy.at
    session.execute(
        sa.update(SellerPayout)
        .where(SellerPayout.id == payout.id)
        .values(
            attempts=payout.attempts + 1,
            last_error=error,
            next_attempt_at=None if park else policy.at + backoff(attempts),
            leased_until=None,
            updated_at=policy.at,
        )
    )
    if park:
        _park(ledger, session, intent=intent, error=error, error_class=error_class, at=policy.at)
    return park


def _park(
    ledger: Ledger,
    session: Session,
    *,
    intent: ProviderIntent,
    error: str,
    error_class: str,
    at: dt.datetime,
) -> None:
    """``pending -> parked`` with an open finding proposing what an operator can do."""
    ledger._move(
        session,
        ProviderIntent,
        INTENT,
        intent,
        "parked",
        values={"last_error": error, "error_class": error_class},
    )
    upsert_finding(
        session,
        rule=PARKED_RULE,
        object_type="intent",
        object_id=intent.id,
        severity="critical",
        summary=(
            f"payout of {intent.amount} {intent.currency} for {intent.object_id} parked "
            f"after {intent.attempts} attempt(s) ({error_class}): {error}"
        ),
        evidence={
            "kind": intent.kind,
            "object_id": intent.object_id,
            "seller_id": intent.seller_id,
            "amount": intent.amount,
            "currency": intent.currency,
            "attempts": intent.attempts,
            "error_class": error_class,
            "last_error": error,
        },
        proposed_action="retry_intent_or_cancel_parked_payout",
        applied_action=None,
        now=at,
    )


def _record(
    ledger: Ledger, job: _PayoutJob, outcome: str | Exception, policy: _Policy, report: WorkerReport
) -> None:
    """Record one outcome in its own transaction; a failure to record leaves the lease."""
    try:
        with ledger.transaction() as session:
            if isinstance(outcome, Exception):
                parked = _failed(ledger, session, job, outcome, policy)
                (report.parked if parked else report.failed).append(job.payout_id)
            else:
                _succeeded(ledger, session, job, outcome)
                report.done.append(job.payout_id)
    except Exception as exc:  # noqa: BLE001 - logged; the intent replays on the next run
        logger.warning(  # the intent replays: a warning, and no traceback needed
            "intent %s: recording the outcome failed (%s); the next run replays it",
            job.intent_id,
            type(exc).__name__,
        )


# ---------------------------------------------------------------------------- the loop


@traced_run("ledger payout worker")
def run_payout_worker(
    engine: sa.Engine | Ledger,
    creator: PayoutCreator,
    *,
    batch_size: int = 50,
    cancel: threading.Event | None = None,
    now: dt.datetime | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    key_memory: dt.timedelta = KEY_MEMORY,
    classify: Callable[[BaseException], str] = classify_provider_error,
) -> WorkerReport:
    """Make the Stripe call of every due ``pending`` payout, one intent at a time.

    Args:
        engine: The ledger (or its engine).
        creator: The provider (veza-payments' ``StripeConnect`` fits; the adapter
            :class:`veza_ledger.adapters.StripeWorkerProvider` also finds lost payouts).
        batch_size: Rows claimed per transaction.
        cancel: Set to stop after the current call.
        now: The time the run acts at (tests).
        lease: How long a claimed row is left alone by other workers.
        max_attempts: The retry budget before an intent is parked.
        key_memory: How long the provider remembers idempotency keys.
        classify: ``permanent`` or ``transient`` for a provider error.

    Returns:
        The payout row ids done (``in_transit`` or moved by a webhook meanwhile), failed
        (backing off) and parked.
    """
    ledger = _ledger(engine)
    policy = _policy(now, lease, max_attempts, key_memory, classify)
    cancel = cancel or threading.Event()
    report = WorkerReport()
    seen: set[str] = set()
    while not cancel.is_set():
        with ledger.transaction() as session:
            jobs = _claim(ledger, session, policy, seen, batch_size)
        if not jobs:
            return report
        for job in jobs:  # the intents and leases are committed; no lock is held
            if cancel.is_set():
                break  # the other leases run out; the next run takes over
            _record(ledger, job, _call(creator, job, policy), policy, report)
    return report


def cancel_parked_payout(
    engine: sa.Engine | Ledger, payout_id: str, *, actor: str, reason: str
) -> SellerPayout:
    """The operator's way out of a parked payout: ``pending -> canceled``, audited.

    A parked payout intent cannot be retried with a new amount or key (Stripe replays
    its refusal for 24 h, and an intent never changes): cancel it and create a new
    payout when the balance allows. Its intent ends ``written_off`` (nothing moved at
    Stripe, nothing to post), the finding is resolved, an override row records who and
    why. Only a payout whose intent failed permanently (Stripe refused it: nothing was
    made) can be cancelled this way.

    Raises:
        LedgerConfigurationError: No reason or actor, the intent is not parked, or
            its outcome is unknown (a transient last error: check at Stripe, then
            ``ledger.provider_intents.retry()``).
    """
    ledger = _ledger(engine)
    if not reason.strip() or not actor.strip():
        msg = "cancelling a parked payout needs a reason and an actor"
        raise LedgerConfigurationError(msg)
    with ledger.transaction() as session:
        payout = ledger._get(session, SellerPayout, payout_id, lock=True)
        intents = ledger.payouts._payout_intents(session, payout.id)
        intent = intents[-1] if intents else None
        if intent is None or intent.status != "parked" or intent.error_class == "transient":
            msg = (
                f"payout {payout_id}: only a payout whose last intent was parked after a "
                "permanent refusal can be cancelled"
            )
            raise LedgerConfigurationError(msg)
        ledger._move(session, ProviderIntent, INTENT, intent, "written_off")
        ledger._move(
            session, SellerPayout, PAYOUT, payout, "canceled", values={"leased_until": None}
        )
        now = ledger.now()
        session.add(
            Override(
                machine="intent",
                object_id=intent.id,
                from_status="parked",
                to_status="written_off",
                reason=reason.strip()[:1000],
                actor=actor.strip()[:128],
                at=now,
            )
        )
        resolve_finding(
            session, rule=PARKED_RULE, object_type="intent", object_id=intent.id, now=now
        )
        return payout
