"""Provider intents: the durable record of every provider call that moves money.

An intent (:class:`ProviderIntent`) is written and committed *before* its call, with
the amount, the currency and the idempotency key (its id); none of them changes after.
The outcome is recorded against it: ``succeeded`` with the provider's object id, or,
after a permanent error or the retry budget, ``parked``: a terminal state for the
workers, with an open finding (rule ``parked_intents``) and the
``veza_ledger_parked_intents`` gauge. Nothing calls the provider for a parked intent
until an operator acts, each action audited (``ledger.operator.overrides()``):

* :meth:`ProviderIntents.retry`: back to ``pending``; the next worker run calls
  again with the same key and amount.
* :meth:`ProviderIntents.write_off` (reversals): the platform gives up the seller's
  debt; the journal moves it from ``seller_payable`` to ``platform_write_offs``.
* :meth:`ProviderIntents.net` (reversals): the amount is withheld from the seller's
  next transfer (:meth:`~veza_ledger.Ledger.create_transfer`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger import _journal
from veza_ledger._base import Accounts, Core, Service
from veza_ledger._errors import LedgerConfigurationError
from veza_ledger._findings import resolve_finding, upsert_finding
from veza_ledger._machines import INTENT
from veza_ledger._schema import Override, ProviderIntent, SellerTransfer
from veza_ledger._transfers import MAX_ERROR

PARKED_RULE = "parked_intents"
"""The findings rule under which parked intents are reported."""

PERMANENT = "permanent"
TRANSIENT = "transient"
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def classify_provider_error(exc: BaseException) -> str:
    """``"permanent"`` or ``"transient"``: may the same call succeed later by itself?

    A 4xx answer (``status``/``http_status`` attribute, as veza-payments' and Stripe's
    errors carry) is permanent, except 408, 409 (lock timeout, key in use), 425 and
    429; an ``idempotency_error`` is permanent (the same key with other parameters
    will never work). 5xx answers, timeouts and connection errors are transient.
    """
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        status = getattr(exc, "http_status", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return PERMANENT
    return TRANSIENT


SettleTransfer = Callable[[Session, SellerTransfer, dict[str, object]], None]
"""The transfers' step that moves a transfer once its reversal intents are settled."""


class ProviderIntents(Service):
    """Reads of intents and the operator's actions on parked ones (``ledger.provider_intents``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        settle_transfer: The transfers' step a written-off or netted reversal intent
            needs (the transfer may be done once its last intent is settled).
    """

    def __init__(self, core: Core, *, settle_transfer: SettleTransfer) -> None:
        super().__init__(core)
        self._settle_transfer = settle_transfer

    def find(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        object_id: str | None = None,
    ) -> list[ProviderIntent]:
        """Intents, oldest first, filtered by status, kind and the row they act for."""
        query = sa.select(ProviderIntent).order_by(
            ProviderIntent.created_at, ProviderIntent.object_id, ProviderIntent.seq
        )
        if status is not None:
            query = query.where(ProviderIntent.status == status)
        if kind is not None:
            query = query.where(ProviderIntent.kind == kind)
        if object_id is not None:
            query = query.where(ProviderIntent.object_id == object_id)
        with self._transaction() as session:
            return list(session.scalars(query))

    def get(self, intent_id: str) -> ProviderIntent:
        """Read one intent."""
        with self._transaction() as session:
            return self._get(session, ProviderIntent, intent_id)

    def retry(self, intent_id: str, *, actor: str, reason: str) -> ProviderIntent:
        """``parked -> pending``: the next worker run calls again, same key and amount."""
        with self._transaction() as session:
            intent, transfer = self._operator_lock(
                session, intent_id, to_status="pending", actor=actor, reason=reason
            )
            self._move(
                session,
                ProviderIntent,
                INTENT,
                intent,
                "pending",
                values={"attempts": 0, "error_class": None},
            )
            if transfer is not None:
                due_now = self._now() if transfer.status == "failed" else None
                session.execute(
                    sa.update(SellerTransfer)
                    .where(SellerTransfer.id == transfer.id)
                    .values(attempts=0, next_attempt_at=due_now, updated_at=self._now())
                )
            self._operator_done(
                session,
                intent,
                from_status="parked",
                to_status="pending",
                actor=actor,
                reason=reason,
            )
            return intent

    def write_off(
        self, intent_id: str, *, actor: str, reason: str, provider_checked: bool = False
    ) -> ProviderIntent:
        """``parked -> written_off`` (reversals): the platform absorbs the seller's debt.

        The journal moves the amount from the seller's payable (which the refund made
        negative) to ``platform_write_offs``; the transfer stops asking for it.

        Args:
            intent_id: The parked reversal intent.
            actor: Who decided (audited).
            reason: Why (audited).
            provider_checked: Required when an earlier attempt's outcome is unknown
                (a transient failure, a timeout): you checked at Stripe that no
                reversal carries the intent's id in its metadata.
        """
        with self._transaction() as session:
            intent, transfer = self._operator_lock(
                session,
                intent_id,
                to_status="written_off",
                actor=actor,
                reason=reason,
                provider_checked=provider_checked,
            )
            self._move(session, ProviderIntent, INTENT, intent, "written_off")
            legs = [
                _journal.debit(Accounts.WRITE_OFFS, intent.currency, intent.amount),
                _journal.credit(
                    Accounts.seller_payable(intent.seller_id), intent.currency, intent.amount
                ),
            ]
            _journal.post(
                session, f"intent:{intent.id}:written_off", "write_off", legs, description=reason
            )
            if transfer is not None:
                self._settle_transfer(session, transfer, {})
            self._operator_done(
                session,
                intent,
                from_status="parked",
                to_status="written_off",
                actor=actor,
                reason=reason,
            )
            return intent

    def net(
        self, intent_id: str, *, actor: str, reason: str, provider_checked: bool = False
    ) -> ProviderIntent:
        """``parked -> netted`` (reversals): withhold it from the seller's next transfer.

        :meth:`create_transfer` takes netted intents of the seller (same currency,
        oldest first) out of the next transfer that leaves something to pay; the
        journal needs no posting (the seller's payable stays negative until then).
        ``provider_checked`` as for :meth:`write_off_intent`.
        """
        with self._transaction() as session:
            intent, transfer = self._operator_lock(
                session,
                intent_id,
                to_status="netted",
                actor=actor,
                reason=reason,
                provider_checked=provider_checked,
            )
            self._move(session, ProviderIntent, INTENT, intent, "netted")
            if transfer is not None:
                self._settle_transfer(session, transfer, {})
            self._operator_done(
                session,
                intent,
                from_status="parked",
                to_status="netted",
                actor=actor,
                reason=reason,
            )
            return intent

    # ------------------------------------------------------------------ internals

    def _operator_lock(
        self,
        session: Session,
        intent_id: str,
        *,
        to_status: str,
        actor: str,
        reason: str,
        provider_checked: bool = True,
    ) -> tuple[ProviderIntent, SellerTransfer | None]:
        if not reason.strip() or not actor.strip():
            msg = "an operator action on an intent needs a reason and an actor"
            raise LedgerConfigurationError(msg)
        intent = self._get(session, ProviderIntent, intent_id)
        transfer = None
        if intent.kind in ("transfer", "reversal"):  # the transfer row's lock first, always
            transfer = self._get(session, SellerTransfer, intent.object_id, lock=True)
        intent = self._get(session, ProviderIntent, intent_id, lock=True)
        INTENT.check(intent.id, intent.status, to_status=to_status)
        if to_status in ("written_off", "netted") and intent.kind != "reversal":
            what = to_status.replace("_", " ")
            msg = f"only a reversal can be {what}; {intent.id} is a {intent.kind}"
            raise LedgerConfigurationError(msg)
        unknown = intent.attempts > 1 or intent.error_class == TRANSIENT
        if to_status in ("written_off", "netted") and unknown and not provider_checked:
            msg = (
                f"an earlier attempt of {intent.id} may have reached the provider: check that "
                "no object carries its id in its metadata, then pass provider_checked=True"
            )
            raise LedgerConfigurationError(msg)
        return intent, transfer

    def _operator_done(
        self,
        session: Session,
        intent: ProviderIntent,
        *,
        from_status: str,
        to_status: str,
        actor: str,
        reason: str,
    ) -> None:
        session.add(
            Override(
                machine="intent",
                object_id=intent.id,
                from_status=from_status,
                to_status=to_status,
                reason=reason.strip()[:1000],
                actor=actor.strip()[:128],
                at=self._now(),
            )
        )
        resolve_finding(
            session, rule=PARKED_RULE, object_type="intent", object_id=intent.id, now=self._now()
        )

    def _park(
        self,
        session: Session,
        intent: ProviderIntent,
        error: str,
        error_class: str,
        at: dt.datetime,
    ) -> None:
        """``pending -> parked`` with an open finding (the caller holds the locks)."""
        self._move(
            session,
            ProviderIntent,
            INTENT,
            intent,
            "parked",
            values={"last_error": error[:MAX_ERROR], "error_class": error_class},
        )
        upsert_finding(
            session,
            rule=PARKED_RULE,
            object_type="intent",
            object_id=intent.id,
            severity="critical",
            summary=(
                f"{intent.kind} of {intent.amount} {intent.currency} for {intent.object_id} "
                f"parked after {intent.attempts} attempt(s) ({error_class}): {error}"
            ),
            evidence={
                "kind": intent.kind,
                "object_id": intent.object_id,
                "seller_id": intent.seller_id,
                "amount": intent.amount,
                "currency": intent.currency,
                "attempts": intent.attempts,
                "error_class": error_class,
                "last_error": error[:MAX_ERROR],
            },
            proposed_action="retry_intent" if intent.kind == "transfer" else "write_off_or_net",
            applied_action=None,
            now=at,
        )
