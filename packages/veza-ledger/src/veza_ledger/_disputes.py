"""Disputes (chargebacks): held when opened, released when won, lost when lost.

A card network's dispute takes the disputed amount out of the platform's PSP balance
the day it opens and gives it back only if the platform wins. The original platform
ignored every ``dispute_*`` webhook, so the books showed money the PSP no longer held
and a lost chargeback never reached the seller. Here each Hyperswitch dispute event is
applied like any provider event (once, in order, with its effect in one transaction):

* ``opened``: a :class:`~veza_ledger.Dispute` row; the amount moves from
  ``psp_clearing`` to ``psp_disputed`` (held). Subscriptions the order activated go
  ``past_due`` at once.
* ``challenged``: still held (evidence was submitted).
* ``won`` / ``cancelled``: released back to ``psp_clearing``; the subscriptions the
  dispute suspended are re-activated.
* ``lost`` / ``accepted`` / ``expired`` (Hyperswitch's Stripe-compatible API calls all
  three ``lost``): the hold is released and the loss is booked **as a refund of the
  order** (a refund row, reason ``chargeback …``, ``hyperswitch_refund_id`` = the
  dispute id) through the refund path: fee and seller shares leave the books in
  proportion and the seller's share is clawed back from the order's transfers by
  reversal intents, exactly as for a refund. What the order had no room for (it was
  refunded already: the buyer got the money twice) and the chargeback fee are
  platform losses (``platform_chargeback_losses``, ``platform_chargeback_fees``).

Hyperswitch's dispute payload carries no fee (``DisputeResponse`` has none): pass
``chargeback_fee`` to :meth:`Disputes.update`, or set
:attr:`~veza_ledger.ProviderEvent.fee` on an event you build, when the connector
reports one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger import _journal
from veza_ledger._base import Accounts, Core, Service, check_id, check_money, new_id
from veza_ledger._errors import LedgerConfigurationError, LedgerError, RecordNotFoundError
from veza_ledger._events import EventOutcome, ProviderEvent
from veza_ledger._machines import DISPUTE
from veza_ledger._orders import OPEN_REFUND, REFUNDABLE, OrderStep
from veza_ledger._schema import Dispute, Order, Refund

HELD = frozenset({"opened", "challenged"})
"""Statuses in which the disputed amount is held by the PSP."""
RELEASED = frozenset({"won", "cancelled"})
"""Outcomes that give the held amount back."""
LOST = frozenset({"lost", "accepted", "expired"})
"""Outcomes that take it for good (a chargeback)."""

DISPUTE_EVENTS: Mapping[str, str] = {f"dispute_{s}": s for s in sorted(DISPUTE.states)}
"""Hyperswitch's dispute event types and the status each one reports."""


class DisputeAccounts:
    """The journal accounts disputes use (besides ``psp_clearing`` and the refund's)."""

    PSP_DISPUTED = "psp_disputed"
    """Asset: money the PSP holds back while a dispute is open."""
    CHARGEBACK_LOSSES = "platform_chargeback_losses"
    """Expense: lost disputes the order could not absorb (it was refunded already)."""
    CHARGEBACK_FEES = "platform_chargeback_fees"
    """Expense: the fees the PSP charged for lost chargebacks."""


class DisputeMismatchError(LedgerError):
    """A dispute event contradicts the ledger (another order, amount or currency)."""


OrderByPayment = Callable[[Session, str], Order]
"""The orders' step that finds (and locks) the order of a PSP payment id."""
BookRefund = Callable[[Session, Refund], None]
"""The refunds' step that books a succeeded refund (journal, claw-back, order status)."""


class Disputes(Service):
    """Disputes of orders' payments, and the events that report them (``ledger.disputes``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        order_by_payment: How a dispute event finds its order.
        book_refund: How a lost dispute books the refunds it turned into.
        follow_order: What a dispute sets off on its order, in its transaction (the
            subscriptions it paid for pause, and resume when the dispute is won).
    """

    def __init__(
        self,
        core: Core,
        *,
        order_by_payment: OrderByPayment,
        book_refund: BookRefund,
        follow_order: OrderStep,
    ) -> None:
        super().__init__(core)
        self._order_by_payment = order_by_payment
        self._book_refund = book_refund
        self._follow_order = follow_order

    def open(
        self,
        order_id: str,
        psp_dispute_id: str,
        *,
        amount: int,
        currency: str | None = None,
        reason: str | None = None,
        stage: str | None = None,
        dispute_id: str | None = None,
    ) -> Dispute:
        """Record an opened dispute and hold its amount (idempotent by ``psp_dispute_id``).

        Raises:
            DisputeMismatchError: The PSP dispute is recorded with another order or amount,
                or its currency is not the order's.
            RecordNotFoundError: No such order.
        """
        check_id(psp_dispute_id, "psp_dispute_id")
        with self._transaction() as session:
            # the dispute's lock before the order's, as update_dispute and events take them
            existing = self._dispute_by_provider(session, psp_dispute_id)
            if existing is not None:
                if existing.order_id != order_id or existing.amount != amount:
                    msg = (
                        f"dispute {psp_dispute_id} is recorded for order {existing.order_id} "
                        f"({existing.amount}), not {order_id} ({amount})"
                    )
                    raise DisputeMismatchError(msg)
                return existing
            order = self._get(session, Order, order_id, lock=True)
            return self._open(
                session,
                order,
                psp_dispute_id,
                amount=amount,
                currency=currency,
                reason=reason,
                stage=stage,
                dispute_id=dispute_id,
            )

    def update(self, dispute_id: str, status: str, *, chargeback_fee: int = 0) -> Dispute:
        """Move a dispute to ``status`` with its money effect (see the module).

        A repeated status changes nothing (Hyperswitch repeats them too).

        Args:
            dispute_id: The ledger's dispute id.
            status: ``challenged``, ``won``, ``cancelled``, ``lost``, ``accepted`` or
                ``expired``.
            chargeback_fee: The PSP's fee for a lost dispute (minor units, >= 0).

        Raises:
            IllegalTransitionError: Not allowed by :data:`~veza_ledger.DISPUTE`.
        """
        with self._transaction() as session:
            dispute = self._get(session, Dispute, dispute_id, lock=True)
            if dispute.status != status:
                self._settle(session, dispute, status, chargeback_fee)
            return dispute

    def get(self, dispute_id: str) -> Dispute:
        """Read a dispute."""
        with self._transaction() as session:
            return self._get(session, Dispute, dispute_id)

    def by_provider_id(self, psp_dispute_id: str) -> Dispute:
        """Read the dispute a PSP dispute id belongs to."""
        with self._transaction() as session:
            row = self._dispute_by_provider(session, psp_dispute_id)
            if row is None:
                msg = f"no dispute with PSP id {psp_dispute_id!r}"
                raise RecordNotFoundError(msg)
            return row

    def of_order(self, order_id: str) -> list[Dispute]:
        """An order's disputes, oldest first."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    sa.select(Dispute)
                    .where(Dispute.order_id == order_id)
                    .order_by(Dispute.opened_at, Dispute.id)
                )
            )

    # ------------------------------------------------------------------ internals

    def _dispute_by_provider(self, session: Session, psp_dispute_id: str) -> Dispute | None:
        query = sa.select(Dispute).where(Dispute.psp_dispute_id == psp_dispute_id)
        if self._pg:
            query = query.with_for_update()
        return session.scalars(query.execution_options(populate_existing=True)).one_or_none()

    def _open(
        self,
        session: Session,
        order: Order,
        psp_dispute_id: str,
        *,
        amount: int | None,
        currency: str | None,
        reason: str | None,
        stage: str | None,
        dispute_id: str | None = None,
    ) -> Dispute:
        value, code = check_money(amount, currency or order.currency)
        if code != order.currency:
            msg = f"dispute {psp_dispute_id} is in {code}, order {order.id} in {order.currency}"
            raise DisputeMismatchError(msg)
        now = self._now()
        dispute = Dispute(
            id=check_id(dispute_id or new_id(), "dispute_id"),
            psp_dispute_id=psp_dispute_id,
            order_id=order.id,
            amount=value,
            currency=code,
            status=DISPUTE.initial,
            stage=(stage or None) and stage[:32],
            reason=(reason or None) and reason[:255],
            fee_amount=0,
            unrefundable_amount=0,
            opened_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(dispute)
        session.flush()
        legs = [
            _journal.debit(DisputeAccounts.PSP_DISPUTED, code, value),
            _journal.credit(Accounts.PSP_CLEARING, code, value),
        ]
        _journal.post(session, f"dispute:{dispute.id}:opened", "dispute", legs)
        self._follow_order(session, order)
        return dispute

    def _settle(self, session: Session, dispute: Dispute, status: str, fee: object) -> None:
        if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
            msg = f"chargeback_fee must be an int >= 0, got {fee!r}"
            raise LedgerConfigurationError(msg)
        DISPUTE.check(dispute.id, dispute.status, to_status=status)
        order = self._get(session, Order, dispute.order_id, lock=True)
        final = status in RELEASED | LOST
        values: dict[str, object] = {"closed_at": self._now()} if final else {}
        code, value = dispute.currency, dispute.amount
        if final:  # the hold ends either way
            legs = [
                _journal.debit(Accounts.PSP_CLEARING, code, value),
                _journal.credit(DisputeAccounts.PSP_DISPUTED, code, value),
            ]
            _journal.post(session, f"dispute:{dispute.id}:released", "dispute", legs)
        if status in LOST:
            values |= self._lose(session, dispute, order, fee)
        self._move(session, Dispute, DISPUTE, dispute, status, values=values)
        self._follow_order(session, order)

    def _lose(
        self, session: Session, dispute: Dispute, order: Order, fee: int
    ) -> dict[str, object]:  # fee checked by _settle
        """Book a lost dispute: a refund row for what the order can absorb, losses else."""
        room = 0
        if order.status in REFUNDABLE:
            committed = session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                    Refund.order_id == order.id, Refund.status.in_(OPEN_REFUND)
                )
            )
            room = max(0, order.captured_amount - int(committed or 0))
        part = min(dispute.amount, room)
        over = dispute.amount - part
        code = dispute.currency
        refund_id = None
        if part:
            refund = Refund(
                id=new_id(),
                order_id=order.id,
                amount=part,
                currency=code,
                status="pending",
                hyperswitch_refund_id=dispute.psp_dispute_id,
                reason=f"chargeback {dispute.psp_dispute_id}"[:255],
                created_at=self._now(),
                updated_at=self._now(),
            )
            session.add(refund)
            session.flush()
            self._book_refund(session, refund)  # the refund path: journal + claw-back
            refund_id = refund.id
        if over:
            legs = [
                _journal.debit(DisputeAccounts.CHARGEBACK_LOSSES, code, over),
                _journal.credit(Accounts.PSP_CLEARING, code, over),
            ]
            _journal.post(session, f"dispute:{dispute.id}:unrefundable", "dispute", legs)
        if fee:
            legs = [
                _journal.debit(DisputeAccounts.CHARGEBACK_FEES, code, fee),
                _journal.credit(Accounts.PSP_CLEARING, code, fee),
            ]
            _journal.post(session, f"dispute:{dispute.id}:fee", "dispute", legs)
        return {"refund_id": refund_id, "unrefundable_amount": over, "fee_amount": fee}

    def _apply_event(self, session: Session, event: ProviderEvent) -> EventOutcome:
        """Apply a ``dispute_*`` event (``ledger.events`` hands them over)."""
        status = DISPUTE_EVENTS.get(event.event_type)
        if status is None:
            return EventOutcome.IGNORED
        dispute = self._dispute_by_provider(session, event.object_id)
        if dispute is None:
            if not event.payment_id:
                msg = f"dispute {event.object_id} is unknown and the event names no payment"
                raise RecordNotFoundError(msg)
            order = self._order_by_payment(session, event.payment_id)
            dispute = self._open(
                session,
                order,
                event.object_id,
                amount=event.amount,
                currency=event.currency,
                reason=event.reason,
                stage=event.stage,
            )
            if status == DISPUTE.initial:
                self._dispute_seen(session, dispute, event)
                return EventOutcome.APPLIED
        if dispute.last_event_at is not None and event.occurred_at < dispute.last_event_at:
            return EventOutcome.STALE
        if dispute.status == status or not DISPUTE.allows(dispute.status, status):
            self._dispute_seen(session, dispute, event)
            return EventOutcome.NO_CHANGE
        self._settle(session, dispute, status, event.fee or 0)
        self._dispute_seen(session, dispute, event)
        return EventOutcome.APPLIED

    def _dispute_seen(self, session: Session, dispute: Dispute, event: ProviderEvent) -> None:
        latest = dispute.last_event_at
        if latest is None or event.occurred_at > latest:
            session.execute(
                sa.update(Dispute)
                .where(Dispute.id == dispute.id)
                .values(last_event_at=event.occurred_at)
            )
