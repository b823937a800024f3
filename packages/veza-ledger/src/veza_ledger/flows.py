"""The money flow as API: start a payment, start a refund, queue the seller's transfer.

Needs the ``[payments]`` extra (veza-payments), like :mod:`veza_ledger.adapters`.

The order of each step is what makes it safe, so it lives here once instead of in every
application and every docs page:

* **One rule for provider ids**: the ledger row is written first, its id is the
  idempotency key, and the provider's id, derived by the client
  (``HyperswitchClient.payment_id_for`` / ``refund_id_for``, its
  ``idempotency_namespace`` included), is stored on the row **before** the provider is
  called. A webhook that beats the response finds the row; a response that is lost
  leaves the id recorded anyway, and the sweep polls it.
* **One source for shares**: the seller is paid :func:`~veza_ledger.seller_share` of
  the order (the capture minus the fee the fee policy scales), never ``amount - fee``
  computed by hand; the ledger refuses a transfer that would exceed it.

Example::

    from veza_ledger.flows import queue_seller_transfer, start_payment, start_refund

    started = start_payment(
        ledger, hyperswitch, buyer_id="b", seller_id="s", amount=1999, currency="EUR",
        fee_amount=300,
    )
    # ... the payment webhook marks the order paid (ledger.events.apply) ...
    queue_seller_transfer(ledger, started.order.id, destination="acct_s")
    start_refund(ledger, hyperswitch, order_id=started.order.id)  # all that is left, or amount=

The calls are synchronous (the ledger is): in an ``async`` web handler run them in the
threadpool (FastAPI does for ``def`` routes), never on the event loop, or use the twins
:func:`astart_payment` / :func:`astart_refund` with ``AsyncHyperswitchClient``, which
run the ledger's writes in a worker thread and await the provider.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy.exc import IntegrityError

from veza_ledger._base import new_id
from veza_ledger._errors import FlowConflictError, RecordNotFoundError, TransferExceedsShareError
from veza_ledger._ledger import Ledger
from veza_ledger._orders import seller_share
from veza_ledger._schema import Order, Refund, SellerTransfer
from veza_payments import (
    AsyncHyperswitchClient,
    HyperswitchClient,
    InvalidRequestError,
    Payment,
    Refund as ProviderRefund,
)

__all__ = [
    "PAYABLE",
    "FlowConflictError",
    "PaymentStarted",
    "RefundStarted",
    "astart_payment",
    "astart_refund",
    "queue_seller_transfer",
    "seller_transfer_id",
    "start_payment",
    "start_refund",
]

PAYABLE = frozenset({"paid", "partially_refunded"})
"""Order statuses whose seller is owed a transfer (a fully refunded order owes nothing)."""


@attrs.frozen
class PaymentStarted:
    """What :func:`start_payment` did.

    Attributes:
        order: The ledger's order, ``pending_payment``, its ``psp_payment_id`` set.
        payment: The provider's payment (``client_secret`` for the buyer's browser).
    """

    order: Order
    payment: Payment


@attrs.frozen
class RefundStarted:
    """What :func:`start_refund` did.

    Attributes:
        row: The ledger's refund row, ``pending`` until the webhook (or the sweep)
            settles it, its ``hyperswitch_refund_id`` set.
        provider_refund: The provider's refund.
    """

    row: Refund
    provider_refund: ProviderRefund


def start_payment(
    ledger: Ledger,
    hyperswitch: HyperswitchClient,
    *,
    buyer_id: str,
    seller_id: str,
    amount: int,
    currency: str,
    fee_amount: int = 0,
    order_id: str | None = None,
    customer_id: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    return_url: str | None = None,
) -> PaymentStarted:
    """Create the order with its provider id, then the payment keyed by the order's id.

    Calling it again with the same ``order_id`` and the same order (a retry after a
    lost response or a crash) reuses the order, and the provider answers the same
    payment: a buyer is never charged twice. If the provider call fails, the order
    stays ``pending_payment`` with its provider id, so the sweep finds a payment the
    provider made anyway; an order it never made expires.

    Args:
        ledger: The ledger.
        hyperswitch: The client; its ``payment_id_for`` derives the stored id.
        buyer_id: Who pays.
        seller_id: Who sells (``fee_amount`` of it is the platform's).
        amount: Minor units.
        currency: ISO 4217 code.
        fee_amount: The platform's share (scaled on a partial capture).
        order_id: The order's id, the payment's idempotency key (default: a new id).
        customer_id: The provider's customer (default: ``buyer_id``).
        description: Shown by the provider.
        metadata: Sent to the provider (``order_id`` is added).
        return_url: Where the provider sends the buyer back.

    Raises:
        FlowConflictError: ``order_id`` exists with other fields or another payment id.
        veza_payments.PaymentsError: The provider call failed (the order is kept).
    """
    order = _order_for_payment(
        ledger,
        hyperswitch,
        order_id=order_id or new_id(),
        buyer_id=buyer_id,
        seller_id=seller_id,
        amount=amount,
        currency=currency,
        fee_amount=fee_amount,
    )
    payment = hyperswitch.create_payment(
        order.id,
        amount=order.amount,
        currency=order.currency,
        customer_id=customer_id or buyer_id,
        description=description,
        metadata={**(metadata or {}), "order_id": order.id},
        return_url=return_url,
    )
    return PaymentStarted(order, payment)


def _order_for_payment(
    ledger: Ledger,
    hyperswitch: HyperswitchClient | AsyncHyperswitchClient,
    *,
    order_id: str,
    buyer_id: str,
    seller_id: str,
    amount: int,
    currency: str,
    fee_amount: int,
) -> Order:
    """The order row with its provider payment id, written before any provider call."""
    payment_id = hyperswitch.payment_id_for(order_id)
    try:
        return ledger.orders.create(
            order_id=order_id,
            psp_payment_id=payment_id,
            buyer_id=buyer_id,
            seller_id=seller_id,
            amount=amount,
            currency=currency,
            fee_amount=fee_amount,
        )
    except IntegrityError:
        fields = {
            "buyer_id": buyer_id,
            "seller_id": seller_id,
            "amount": amount,
            "currency": currency.strip().upper(),
            "fee_amount": fee_amount,
        }
        return _same_order(ledger, order_id, payment_id, fields)


def _same_order(
    ledger: Ledger, order_id: str, payment_id: str, fields: Mapping[str, object]
) -> Order:
    """The existing order, when it is the one asked for (a retry); else a conflict."""
    try:
        order = ledger.orders.get(order_id)
    except RecordNotFoundError:  # the unique violation was another order's payment id
        msg = f"payment id {payment_id!r} of order {order_id!r} belongs to another order"
        raise FlowConflictError(msg) from None
    differs = sorted(name for name, value in fields.items() if getattr(order, name) != value)
    if order.psp_payment_id != payment_id:
        differs.append("psp_payment_id")
    if differs:
        msg = f"order {order_id!r} exists with other values for: {', '.join(differs)}"
        raise FlowConflictError(msg)
    return order


def start_refund(
    ledger: Ledger,
    hyperswitch: HyperswitchClient,
    *,
    order_id: str,
    amount: int | None = None,
    reason: str | None = None,
    refund_id: str | None = None,
) -> RefundStarted:
    """Create the refund row, record its provider id, then ask the provider.

    The row is created inside what is left to refund (``amount=None``: all of it);
    its id keys the provider call, and ``hyperswitch.refund_id_for(row id)`` is stored
    on it before the call. So after a lost response (even on a full refund, which the
    router answers ``IR_13`` on a retry: the client resolves it by reading the id) the
    provider's id is on the row, and the webhook or the sweep settles it. The amount is
    always sent explicitly: the row's, never the provider's "everything captured".

    When the provider refuses for good (an ``InvalidRequestError``: the client read the
    id back and no refund exists), the row is marked ``failed`` so its amount is
    refundable again, and the error is raised. Any other failure leaves the row
    ``pending`` (its outcome is unknown; the sweep finds out) and is raised.

    Args:
        ledger: The ledger.
        hyperswitch: The client; its ``refund_id_for`` derives the stored id.
        order_id: The paid order.
        amount: Minor units, or ``None`` for everything left.
        reason: Kept on the row and sent to the provider.
        refund_id: The row's id, the call's idempotency key (default: a new id).

    Raises:
        veza_ledger.RefundExceedsCapturedError: The amount does not fit.
        veza_ledger.IllegalTransitionError: The order is not refundable.
        FlowConflictError: The order has no provider payment id.
        veza_payments.PaymentsError: The provider call failed.
    """
    payment_id, row = _refund_row(
        ledger, hyperswitch, order_id=order_id, amount=amount, reason=reason, refund_id=refund_id
    )
    try:
        provider_refund = hyperswitch.create_refund(
            row.id, payment_id=payment_id, amount=row.amount, reason=reason
        )
    except InvalidRequestError:
        ledger.refunds.failed(row.id)
        raise
    return RefundStarted(row, provider_refund)


def _refund_row(
    ledger: Ledger,
    hyperswitch: HyperswitchClient | AsyncHyperswitchClient,
    *,
    order_id: str,
    amount: int | None,
    reason: str | None,
    refund_id: str | None,
) -> tuple[str, Refund]:
    """The order's payment id and the new refund row, its provider id already stored."""
    order = ledger.orders.get(order_id)
    if not order.psp_payment_id:
        msg = f"order {order_id!r} has no provider payment id; start its payment first"
        raise FlowConflictError(msg)
    row = ledger.refunds.create(order.id, amount, refund_id=refund_id, reason=reason)
    return order.psp_payment_id, ledger.refunds.set_provider_id(
        row.id, hyperswitch.refund_id_for(row.id)
    )


async def astart_payment(
    ledger: Ledger,
    hyperswitch: AsyncHyperswitchClient,
    *,
    buyer_id: str,
    seller_id: str,
    amount: int,
    currency: str,
    fee_amount: int = 0,
    order_id: str | None = None,
    customer_id: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    return_url: str | None = None,
) -> PaymentStarted:
    """:func:`start_payment` with ``AsyncHyperswitchClient``.

    The ledger is synchronous: its writes run in a worker thread
    (``asyncio.to_thread``), never on the event loop; the provider call is awaited.
    Same order of steps, same arguments, same errors.
    """
    order = await asyncio.to_thread(
        functools.partial(
            _order_for_payment,
            ledger,
            hyperswitch,
            order_id=order_id or new_id(),
            buyer_id=buyer_id,
            seller_id=seller_id,
            amount=amount,
            currency=currency,
            fee_amount=fee_amount,
        )
    )
    payment = await hyperswitch.create_payment(
        order.id,
        amount=order.amount,
        currency=order.currency,
        customer_id=customer_id or buyer_id,
        description=description,
        metadata={**(metadata or {}), "order_id": order.id},
        return_url=return_url,
    )
    return PaymentStarted(order, payment)


async def astart_refund(
    ledger: Ledger,
    hyperswitch: AsyncHyperswitchClient,
    *,
    order_id: str,
    amount: int | None = None,
    reason: str | None = None,
    refund_id: str | None = None,
) -> RefundStarted:
    """:func:`start_refund` with ``AsyncHyperswitchClient`` (ledger writes in a thread)."""
    payment_id, row = await asyncio.to_thread(
        _refund_row,
        ledger,
        hyperswitch,
        order_id=order_id,
        amount=amount,
        reason=reason,
        refund_id=refund_id,
    )
    try:
        provider_refund = await hyperswitch.create_refund(
            row.id, payment_id=payment_id, amount=row.amount, reason=reason
        )
    except InvalidRequestError:
        await asyncio.to_thread(ledger.refunds.failed, row.id)
        raise
    return RefundStarted(row, provider_refund)


def seller_transfer_id(order_id: str) -> str:
    """The id :func:`queue_seller_transfer` gives an order's transfer (its Stripe key)."""
    return f"{order_id}-seller"


def queue_seller_transfer(
    ledger: Ledger,
    order_id: str,
    *,
    destination: str,
    transfer_id: str | None = None,
) -> SellerTransfer | None:
    """Queue the seller's transfer of the order's unpaid share, once.

    The amount is :func:`~veza_ledger.seller_share` minus what the order's transfers
    already carry. Refunds are not subtracted: the ledger recovers a refunded seller
    share from the order's transfers by reversal (one allocation rule), so a transfer
    queued after a partial refund is born owing that share (``reversal_due``) and is
    reversed by it once paid.

    Idempotent: a second call (a webhook delivered twice, two instances at once)
    answers the transfer already queued under ``transfer_id``.

    Args:
        ledger: The ledger.
        order_id: A paid order.
        destination: The seller's Stripe connected account.
        transfer_id: The row's id, the Stripe call's key (default:
            :func:`seller_transfer_id`).

    Returns:
        The transfer row, or ``None`` when the order owes nothing (not paid, fully
        refunded, or its share already paid by other transfers).
    """
    row_id = transfer_id or seller_transfer_id(order_id)
    order = ledger.orders.get(order_id)
    existing = {t.id: t for t in ledger.transfers.of_order(order.id)}
    if row_id in existing:
        return existing[row_id]
    room = seller_share(order) - sum(t.amount + t.netted_amount for t in existing.values())
    if order.status not in PAYABLE or room <= 0:
        return None
    try:
        return ledger.transfers.create(
            seller_id=order.seller_id,
            destination=destination,
            amount=room,
            currency=order.currency,
            order_id=order.id,
            transfer_id=row_id,
        )
    except (TransferExceedsShareError, IntegrityError):
        # another caller queued it between the read and the order's lock
        try:
            return ledger.transfers.get(row_id)
        except RecordNotFoundError:
            return None
