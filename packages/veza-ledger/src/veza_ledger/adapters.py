"""Adapters from veza-payments' clients to the ledger's protocols (``[payments]`` extra).

``PaymentsProviderView`` is the :class:`~veza_ledger.ProviderView` the reconciliation
rules read; veza-payments' ``StripeConnect`` already is a ``TransferReverser``, a
``TransferCreator`` and a ``PayoutCreator``, so the workers take it as it is;
``StripeWorkerProvider`` adds the look-ups of lost objects. The reference application wires
these; your code can too::

    from veza_ledger.adapters import PaymentsProviderView

    view = PaymentsProviderView(hyperswitch_client, stripe_connect)
    run_sweep(engine, view)
    provider = StripeWorkerProvider(stripe_connect)
    run_reversal_worker(engine, provider)
    run_transfer_worker(engine, provider)
    run_payout_worker(engine, provider)
"""

from __future__ import annotations

import datetime as dt

from veza_ledger._provider import PaymentState, RefundState, TransferState
from veza_payments import (
    HyperswitchClient,
    NotFoundError,
    Payout,
    StripeConnect,
    Transfer,
    TransferReversal,
    payment_id_for,
    refund_id_for,
)

METADATA_KEY = "veza_idempotency_key"
"""Where veza-payments writes the caller's idempotency key on every Stripe object."""

LEGACY_ORDER_KEY = "order_id"
"""Where the original platform wrote its order id on the transfers it made."""

__all__ = ["PaymentsProviderView", "StripeWorkerProvider"]


class PaymentsProviderView:
    """Provider state through veza-payments' clients.

    Payments are read with ``force_sync`` (Hyperswitch sends no webhook for non-terminal
    payments, and its stored status can lag the connector's). Transfers are found by the
    row id veza-payments writes into each transfer's metadata, paging the list endpoint
    (Stripe's Events API only reaches back 30 days); the original platform's transfers by
    their ``metadata[order_id]`` (:class:`~veza_ledger.LegacyTransferFinder`). A payment's
    refunds are read from the list Hyperswitch returns with it, so ``money_mismatch`` can
    see refunds made in the dashboard.

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
            _listed_refunds(payment.raw.get("refunds"), payment.payment_id),
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

    def find_transfer_by_order(
        self, order_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        """The original platform's transfer: its ``metadata[order_id]`` is ``order_id``."""
        if self.stripe is None:
            return None
        created = {"gte": int(created_after.timestamp())} if created_after else None
        for transfer in self.stripe.find_transfers(
            destination=destination, created=created, metadata={LEGACY_ORDER_KEY: order_id}
        ):
            return TransferState(
                transfer.id,
                transfer.amount,
                transfer.amount_reversed,
                transfer.destination,
                dict(transfer.metadata),
            )
        return None


def _listed_refunds(value: object, payment_id: str) -> tuple[RefundState, ...] | None:
    """The refunds Hyperswitch lists on a payment (``None``: the response has no list)."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("refund_id"), str):
            return None  # an unexpected shape: do not guess (no false "made outside veza")
        amount = item.get("amount")
        out.append(
            RefundState(
                item["refund_id"],
                str(item.get("status", "")),
                amount if isinstance(amount, int) and not isinstance(amount, bool) else 0,
                payment_id,
            )
        )
    return tuple(out)


class StripeWorkerProvider:
    """``StripeConnect`` for the workers, able to find what a lost call made.

    The workers call :meth:`create_transfer` / :meth:`reverse_transfer` /
    :meth:`create_payout` as they would on ``StripeConnect``. When an intent's outcome
    is unknown and older than Stripe's key memory (24 h), they first ask
    :meth:`find_transfer_by_key` / :meth:`find_reversal` / :meth:`find_payout_by_key`
    (by the key veza-payments writes into the object's metadata) and adopt what exists
    instead of making a second one.

    Args:
        stripe: The Stripe Connect client.
    """

    def __init__(self, stripe: StripeConnect) -> None:
        self.stripe = stripe

    def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
    ) -> Transfer:
        """``StripeConnect.create_transfer``."""
        return self.stripe.create_transfer(
            idempotency_key,
            amount=amount,
            currency=currency,
            destination=destination,
            transfer_group=transfer_group,
        )

    def reverse_transfer(
        self, idempotency_key: str, transfer_id: str, *, amount: int | None = None
    ) -> TransferReversal:
        """``StripeConnect.reverse_transfer``."""
        return self.stripe.reverse_transfer(idempotency_key, transfer_id, amount=amount)

    def find_transfer_by_key(
        self, idempotency_key: str, *, destination: str, created_after: dt.datetime
    ) -> str | None:
        """The transfer to ``destination`` since ``created_after`` made with that key."""
        for transfer in self.stripe.find_transfers(
            destination=destination,
            created={"gte": int(created_after.timestamp())},
            metadata={METADATA_KEY: idempotency_key},
        ):
            return transfer.id
        return None

    def create_payout(
        self, idempotency_key: str, *, amount: int, currency: str, stripe_account: str
    ) -> Payout:
        """``StripeConnect.create_payout`` (on the connected account)."""
        return self.stripe.create_payout(
            idempotency_key, amount=amount, currency=currency, stripe_account=stripe_account
        )

    def find_reversal(self, transfer_id: str, idempotency_key: str) -> str | None:
        """The reversal of ``transfer_id`` made with that key, among all its reversals.

        Read through ``StripeConnect.list_reversals`` (paged): the transfer object
        embeds only its 10 most recent, and the lost one is the oldest by then when
        others were made by hand meanwhile.
        """
        try:
            for reversal in self.stripe.list_reversals(transfer_id):
                if reversal.metadata.get(METADATA_KEY) == idempotency_key:
                    return reversal.id
        except NotFoundError:
            return None
        return None

    def find_payout_by_key(
        self, idempotency_key: str, *, stripe_account: str, created_after: dt.datetime
    ) -> str | None:
        """The payout on ``stripe_account`` since ``created_after`` made with that key."""
        for payout in self.stripe.find_payouts(
            stripe_account=stripe_account,
            created={"gte": int(created_after.timestamp())},
            metadata={METADATA_KEY: idempotency_key},
        ):
            return payout.id
        return None
