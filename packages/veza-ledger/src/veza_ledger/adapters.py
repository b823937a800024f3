"""Adapters from veza-payments' clients to the ledger's protocols (``[payments]`` extra).

``PaymentsProviderView`` is the :class:`~veza_ledger.ProviderView` the reconciliation
rules read; veza-payments' ``StripeConnect`` already is a ``TransferReverser`` and a
``TransferCreator``, so the workers take it as it is. The reference application wires
these; your code can too::

    from veza_ledger.adapters import PaymentsProviderView

    view = PaymentsProviderView(hyperswitch_client, stripe_connect)
    run_sweep(engine, view)
    run_reversal_worker(engine, stripe_connect)
"""

from __future__ import annotations

import datetime as dt

from veza_ledger._provider import PaymentState, RefundState, TransferState
from veza_payments import (
    HyperswitchClient,
    NotFoundError,
    StripeConnect,
    payment_id_for,
    refund_id_for,
)

__all__ = ["PaymentsProviderView"]


class PaymentsProviderView:
    """Provider state through veza-payments' clients.

    Payments are read with ``force_sync`` (Hyperswitch sends no webhook for non-terminal
    payments, and its stored status can lag the connector's). Transfers are found by the
    row id veza-payments writes into each transfer's metadata, paging the list endpoint
    (Stripe's Events API only reaches back 30 days).

    Args:
        hyperswitch: The Hyperswitch client (its idempotency namespace derives ids).
        stripe: The Stripe Connect client; without it, ``find_transfer`` finds nothing.
    """

    def __init__(self, hyperswitch: HyperswitchClient, stripe: StripeConnect | None = None) -> None:
        self.hyperswitch = hyperswitch
        self.stripe = stripe

    def payment(self, psp_payment_id: str) -> PaymentState | None:
        """The payment, polled with ``force_sync``; ``None`` when Hyperswitch has none."""
        try:
            payment = self.hyperswitch.retrieve_payment(psp_payment_id, force_sync=True)
        except NotFoundError:
            return None
        return PaymentState(
            payment.payment_id,
            payment.status,
            payment.amount,
            payment.amount_received,
            payment.currency,
        )

    def payment_for_order(self, order_id: str) -> PaymentState | None:
        """The payment ``create_payment(order_id, …)`` made (same id derivation)."""
        namespace = self.hyperswitch.idempotency_namespace
        return self.payment(payment_id_for(order_id, namespace=namespace))

    def refund(self, provider_refund_id: str) -> RefundState | None:
        """The refund; ``None`` when Hyperswitch has none."""
        try:
            refund = self.hyperswitch.retrieve_refund(provider_refund_id)
        except NotFoundError:
            return None
        return RefundState(refund.refund_id, refund.status, refund.amount, refund.payment_id)

    def refund_for_row(self, refund_row_id: str) -> RefundState | None:
        """The refund ``create_refund(refund_row_id, …)`` made."""
        namespace = self.hyperswitch.idempotency_namespace
        return self.refund(refund_id_for(refund_row_id, namespace=namespace))

    def find_transfer(
        self, transfer_row_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        """The Stripe transfer whose metadata carries ``transfer_row_id``."""
        if self.stripe is None:
            return None
        created = {"gte": int(created_after.timestamp())} if created_after else None
        for transfer in self.stripe.find_transfers(
            destination=destination,
            created=created,
            metadata={"veza_idempotency_key": transfer_row_id},
        ):
            return TransferState(
                transfer.id,
                transfer.amount,
                transfer.amount_reversed,
                transfer.destination,
                dict(transfer.metadata),
            )
        return None
