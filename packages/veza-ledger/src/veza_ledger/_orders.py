"""Orders and refunds: payment, partial refunds with real amounts, the fee policy.

Fee policy (documented in the guide): an order's ``fee_amount`` is the platform's
share, the rest is the seller's. On a partial capture the fee is scaled down
(rounded down). Refunds return fee and seller share in proportion, rounded
cumulatively: after any refund, the fee refunded in total is
``floor(refunded_total * fee / captured)``. So a full refund in any number of parts
returns exactly the fee and exactly the seller's share, and no partial refund takes
more from either side than its proportion plus one minor unit.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from veza_ledger import _journal
from veza_ledger._allocation import allocate_reversals, refunded_seller_share
from veza_ledger._base import Accounts, Core, Service, check_id, check_money, new_id
from veza_ledger._errors import (
    AmountMismatchError,
    IllegalTransitionError,
    LedgerConfigurationError,
    RecordNotFoundError,
    RefundExceedsCapturedError,
)
from veza_ledger._machines import ORDER, REFUND, TRANSFER
from veza_ledger._schema import Order, Refund, SellerTransfer

REFUNDABLE = frozenset({"paid", "partially_refunded"})
OPEN_REFUND = frozenset({"pending", "succeeded"})


def fee_captured(order: Order) -> int:
    """The fee on what was actually captured (scaled down on a partial capture)."""
    if order.captured_amount == order.amount:
        return order.fee_amount
    return order.fee_amount * order.captured_amount // order.amount


def seller_share(order: Order) -> int:
    """The seller's share of what was captured: ``captured_amount - fee_captured(order)``.

    The one place the share is computed: the capture's journal posting, the cap on the
    order's transfers and :func:`veza_ledger.flows.queue_seller_transfer` all use it,
    so a partial capture (whose fee scales down) never pays the seller ``amount - fee``
    computed by hand. Refunds do not lower it: a refunded seller share is recovered
    from the order's transfers by reversals (:func:`allocate_reversals`).

    Returns:
        Minor units, ``0`` while nothing is captured.
    """
    return order.captured_amount - fee_captured(order)


def refund_split(order: Order, refund_amount: int) -> tuple[int, int]:
    """``(fee share, seller share)`` of a refund, under the documented fee policy.

    Cumulative proportional rounding: after this refund, the fee refunded in total is
    ``floor(refunded_total * fee / captured)``. Each share is therefore between 0 and
    the refund, the seller never gives back more than their share, and a full refund in
    any number of parts returns exactly the fee and exactly the seller's share.
    """
    fee = fee_captured(order)
    after = min(order.refunded_amount + refund_amount, order.captured_amount)
    fee_share = after * fee // order.captured_amount - order.fee_refunded
    return fee_share, refund_amount - fee_share


OrderStep = Callable[[Session, Order], None]
"""A step another service takes on an order, in the transaction that changed it."""


class Orders(Service):
    """Orders and their payment (``ledger.orders``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        on_paid: What a paid order sets off, in the payment's transaction (the
            subscriptions it pays for become active); the ledger passes the
            subscriptions' step, so orders need not know subscriptions.
    """

    def __init__(self, core: Core, *, on_paid: OrderStep) -> None:
        super().__init__(core)
        self._on_paid = on_paid

    def create(
        self,
        *,
        buyer_id: str,
        seller_id: str,
        amount: int,
        currency: str,
        fee_amount: int = 0,
        order_id: str | None = None,
        psp_payment_id: str | None = None,
    ) -> Order:
        """Create an order in ``pending_payment``.

        Pass ``psp_payment_id``, known before calling the PSP (the client derives it
        from the order id: ``hyperswitch.payment_id_for(order_id)``, its namespace
        included), so a webhook that arrives before the PSP's response finds the order;
        :func:`veza_ledger.flows.start_payment` does exactly that.
        """
        amount, currency = check_money(amount, currency)
        if isinstance(fee_amount, bool) or not isinstance(fee_amount, int):
            msg = f"fee_amount must be an int of minor units, got {fee_amount!r}"
            raise LedgerConfigurationError(msg)
        if not 0 <= fee_amount <= amount:
            msg = f"fee_amount must be between 0 and the amount ({amount}), got {fee_amount}"
            raise LedgerConfigurationError(msg)
        order = Order(
            id=check_id(order_id or new_id(), "order_id"),
            buyer_id=check_id(buyer_id, "buyer_id"),
            seller_id=check_id(seller_id, "seller_id"),
            amount=amount,
            currency=currency,
            fee_amount=fee_amount,
            status=ORDER.initial,
            psp_payment_id=psp_payment_id or None,
            captured_amount=0,
            refunded_amount=0,
            fee_refunded=0,
            created_at=self._now(),
            updated_at=self._now(),
        )
        with self._transaction() as session:
            session.add(order)
        return order

    def get(self, order_id: str) -> Order:
        """Read an order."""
        with self._transaction() as session:
            return self._get(session, Order, order_id)

    def by_payment_id(self, psp_payment_id: str) -> Order:
        """Read the order a PSP payment id belongs to."""
        with self._transaction() as session:
            return self._by_payment(session, psp_payment_id)

    def _by_payment(self, session: Session, psp_payment_id: str) -> Order:
        query = sa.select(Order).where(Order.psp_payment_id == psp_payment_id)
        if self._pg:
            query = query.with_for_update()
        row = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
        if row is None:
            msg = f"no order with PSP payment id {psp_payment_id!r}"
            raise RecordNotFoundError(msg)
        return row

    def set_psp_payment_id(self, order_id: str, psp_payment_id: str) -> Order:
        """Record the PSP's payment id (unique across orders)."""
        with self._transaction() as session:
            order = self._get(session, Order, order_id, lock=True)
            order.psp_payment_id = check_id(psp_payment_id, "psp_payment_id")
            order.updated_at = self._now()
            return order

    def mark_paid(self, order_id: str, *, captured_amount: int | None = None) -> Order:
        """``pending_payment -> paid``, posting the capture to the journal.

        Args:
            order_id: The order.
            captured_amount: What the PSP captured (default: the order's amount).
        """
        with self._transaction() as session:
            order = self._get(session, Order, order_id, lock=True)
            self._mark_paid(session, order, captured_amount)
            return order

    def _mark_paid(self, session: Session, order: Order, captured_amount: int | None) -> None:
        if order.status != ORDER.initial:  # closed -> paid is a late capture only
            raise IllegalTransitionError("order", order.id, order.status, "paid")
        self._book_capture(session, order, captured_amount)
        self._on_paid(session, order)

    def _book_capture(
        self,
        session: Session,
        order: Order,
        captured_amount: int | None,
        *,
        values: dict[str, object] | None = None,
    ) -> None:
        """Move the order to ``paid`` and post the capture (shared with late captures)."""
        captured = order.amount if captured_amount is None else captured_amount
        if isinstance(captured, bool) or not isinstance(captured, int):
            msg = f"captured_amount must be an int, got {captured!r}"
            raise LedgerConfigurationError(msg)
        if not 0 < captured <= order.amount:
            msg = f"captured_amount must be in 1..{order.amount}, got {captured}"
            raise LedgerConfigurationError(msg)
        self._move(
            session,
            Order,
            ORDER,
            order,
            "paid",
            values={"captured_amount": captured, **(values or {})},
        )
        fee = fee_captured(order)
        legs = [
            _journal.debit(Accounts.PSP_CLEARING, order.currency, captured),
            _journal.credit(
                Accounts.seller_payable(order.seller_id), order.currency, seller_share(order)
            ),
            _journal.credit(Accounts.PLATFORM_FEES, order.currency, fee),
        ]
        _journal.post(session, f"order:{order.id}:captured", "payment", legs)

    def mark_failed(self, order_id: str) -> Order:
        """``pending_payment -> failed``."""
        return self._to(order_id, "failed")

    def cancel(self, order_id: str) -> Order:
        """``pending_payment -> cancelled``."""
        return self._to(order_id, "cancelled")

    def expire(self, order_id: str) -> Order:
        """``pending_payment -> expired``."""
        return self._to(order_id, "expired")

    def _to(self, order_id: str, status: str) -> Order:
        with self._transaction() as session:
            order = self._get(session, Order, order_id, lock=True)
            self._move(session, Order, ORDER, order, status)
            return order


class Refunds(Service):
    """Refunds with the amounts the PSP really refunded (``ledger.refunds``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        on_refunded: What a succeeded refund sets off on its order, in the refund's
            transaction (subscriptions the order no longer pays for stop at once).
    """

    def __init__(self, core: Core, *, on_refunded: OrderStep) -> None:
        super().__init__(core)
        self._on_refunded = on_refunded

    def create(
        self,
        order_id: str,
        amount: int | None = None,
        *,
        refund_id: str | None = None,
        reason: str | None = None,
    ) -> Refund:
        """Create a ``pending`` refund; its id is the PSP call's idempotency key.

        The sum of succeeded and pending refunds may never exceed what the order
        captured: checked in this transaction, under a row lock on the order on
        PostgreSQL (SQLite serialises writers).

        Args:
            order_id: The order to refund.
            amount: Minor units; ``None`` refunds everything not yet refunded.
            refund_id: Your id for the refund row (a new one by default).
            reason: Free text, kept on the row.

        Raises:
            RefundExceedsCapturedError: The refund does not fit.
            IllegalTransitionError: The order is not refundable (not paid).
        """
        with self._transaction() as session:
            order = self._get(session, Order, order_id, lock=True)
            if order.status not in REFUNDABLE:
                raise IllegalTransitionError("order", order.id, order.status, "partially_refunded")
            committed = session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                    Refund.order_id == order.id, Refund.status.in_(OPEN_REFUND)
                )
            )
            room = order.captured_amount - int(committed or 0)
            if amount is None:
                value = room
            else:
                value, _ = check_money(amount, order.currency)
            if value <= 0 or value > room:
                msg = (
                    f"refund of {value} {order.currency} on order {order.id} exceeds what is left "
                    f"({room} of {order.captured_amount} captured, pending refunds included)"
                )
                raise RefundExceedsCapturedError(msg)
            refund = Refund(
                id=check_id(refund_id or new_id(), "refund_id"),
                order_id=order.id,
                amount=value,
                currency=order.currency,
                status=REFUND.initial,
                reason=reason,
                created_at=self._now(),
                updated_at=self._now(),
            )
            session.add(refund)
            return refund

    def get(self, refund_id: str) -> Refund:
        """Read a refund."""
        with self._transaction() as session:
            return self._get(session, Refund, refund_id)

    def of_order(self, order_id: str) -> list[Refund]:
        """An order's refunds, oldest first."""
        with self._transaction() as session:
            rows = session.scalars(
                sa.select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)
            )
            return list(rows)

    def set_provider_id(self, refund_id: str, hyperswitch_refund_id: str) -> Refund:
        """Record the PSP's refund id (unique across refunds)."""
        with self._transaction() as session:
            refund = self._get(session, Refund, refund_id, lock=True)
            refund.hyperswitch_refund_id = check_id(hyperswitch_refund_id, "hyperswitch_refund_id")
            refund.updated_at = self._now()
            return refund

    def by_provider_id(self, hyperswitch_refund_id: str) -> Refund:
        """Read the refund a PSP refund id belongs to."""
        with self._transaction() as session:
            return self._by_provider(session, hyperswitch_refund_id)

    def _by_provider(self, session: Session, provider_id: str) -> Refund:
        query = sa.select(Refund).where(Refund.hyperswitch_refund_id == provider_id)
        if self._pg:
            query = query.with_for_update()
        row = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
        if row is None:
            msg = f"no refund with provider id {provider_id!r}"
            raise RecordNotFoundError(msg)
        return row

    def succeeded(self, refund_id: str) -> Refund:
        """``pending -> succeeded``: journal, order status, and the seller transfer.

        The fee and seller shares leave the books in proportion (see the fee policy);
        the seller's share becomes due for reversal on the order's completed transfer,
        which moves to ``reversal_pending`` for the reversal worker. The buyer's refund
        never waits for that reversal.
        """
        with self._transaction() as session:
            refund = self._get(session, Refund, refund_id, lock=True)
            self._succeeded(session, refund)
            return refund

    def _succeeded(
        self, session: Session, refund: Refund, provider_amount: int | None = None
    ) -> None:
        order = self._get(session, Order, refund.order_id, lock=True)
        self._take_provider_refund_amount(session, order, refund, provider_amount)
        self._move(session, Refund, REFUND, refund, "succeeded")
        fee_share, seller_share = refund_split(order, refund.amount)
        refunded = order.refunded_amount + refund.amount
        status = "refunded" if refunded >= order.captured_amount else "partially_refunded"
        self._move(
            session,
            Order,
            ORDER,
            order,
            status,
            values={"refunded_amount": refunded, "fee_refunded": order.fee_refunded + fee_share},
        )
        legs = [
            _journal.credit(Accounts.PSP_CLEARING, order.currency, refund.amount),
            _journal.debit(Accounts.seller_payable(order.seller_id), order.currency, seller_share),
            _journal.debit(Accounts.PLATFORM_FEES, order.currency, fee_share),
        ]
        _journal.post(session, f"refund:{refund.id}:succeeded", "refund", legs)
        self._claw_back(session, order)
        self._on_refunded(session, order)

    def _take_provider_refund_amount(
        self, session: Session, order: Order, refund: Refund, provider_amount: int | None
    ) -> None:
        """Make a pending refund row's amount what the PSP refunded, before it is booked.

        The journal must book the money that moved, not the money asked for: a PSP that
        refunded another amount (a dashboard edit, a connector's partial refund) is
        believed, the row keeps what veza asked in ``requested_amount``, and the rules
        report the difference (``stuck_refunds`` keeps a finding with both amounts).
        Nothing is clipped: an amount that is 0 or does not fit in what the order has
        left to refund is refused, and the row stays pending.

        Raises:
            AmountMismatchError: The PSP's amount cannot be booked on this order.
        """
        if provider_amount is None or provider_amount == refund.amount:
            return
        others = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                Refund.order_id == order.id,
                Refund.status.in_(OPEN_REFUND),
                Refund.id != refund.id,
            )
        )
        room = order.captured_amount - int(others or 0)
        if isinstance(provider_amount, bool) or not 0 < provider_amount <= room:
            msg = (
                f"refund {refund.id}: the PSP refunded {provider_amount} {order.currency}, "
                f"the row asked {refund.amount} and the order has {room} left to refund"
            )
            raise AmountMismatchError(
                msg, ledger_amount=refund.amount, provider_amount=provider_amount
            )
        requested = refund.requested_amount or refund.amount
        session.execute(
            sa.update(Refund)
            .where(Refund.id == refund.id)
            .values(amount=provider_amount, requested_amount=requested, updated_at=self._now())
        )
        set_committed_value(refund, "amount", provider_amount)
        set_committed_value(refund, "requested_amount", requested)

    def _claw_back(self, session: Session, order: Order) -> None:
        """Make the order's refunded seller share due on its transfers (one rule).

        Every transfer of the order is locked (in id order, as the workers lock them)
        and its due set to its part of :func:`allocate_reversals` of the *cumulative*
        refunded seller share: re-applying changes nothing, and a due never shrinks. A
        worker's provider call holds no lock, so this never waits for Stripe; the
        worker re-reads the row under its lock before it records the outcome.
        """
        query = (
            sa.select(SellerTransfer)
            .where(SellerTransfer.order_id == order.id)
            .order_by(SellerTransfer.id)  # lock order: by id, as the workers lock
            .execution_options(populate_existing=True)
        )
        if self._pg:
            query = query.with_for_update()
        transfers = sorted(session.scalars(query).all(), key=lambda t: (t.created_at, t.id))
        dues = allocate_reversals(
            refunded_seller_share(order), [(t.id, t.amount) for t in transfers]
        )
        for transfer in transfers:
            due = dues[transfer.id]
            if due <= transfer.reversal_due:
                continue
            if transfer.status in ("completed", "partially_reversed"):
                self._move(
                    session,
                    SellerTransfer,
                    TRANSFER,
                    transfer,
                    "reversal_pending",
                    values={"reversal_due": due, "attempts": 0, "next_attempt_at": None},
                )
            else:  # pending, failed, or already reversal_pending: the due amount grows
                session.execute(
                    sa.update(SellerTransfer)
                    .where(SellerTransfer.id == transfer.id)
                    .values(reversal_due=due, updated_at=self._now())
                )
                set_committed_value(transfer, "reversal_due", due)

    def failed(self, refund_id: str) -> Refund:
        """``pending -> failed`` (the amount becomes refundable again)."""
        with self._transaction() as session:
            refund = self._get(session, Refund, refund_id, lock=True)
            self._move(session, Refund, REFUND, refund, "failed")
            return refund
