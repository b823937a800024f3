"""What reconciliation reads from the providers, and what the workers ask of them.

The ledger imports no provider SDK. Rules read provider state through
:class:`ProviderView`; the reversal and transfer workers call a
:class:`TransferReverser` / :class:`TransferCreator`. veza-payments' clients satisfy
them through :mod:`veza_ledger.adapters` (the ``[payments]`` extra); tests use fixtures.

Providers do not tell you everything: Hyperswitch sends no webhook for pending or
in-review refunds nor for non-terminal payments (poll them, with ``force_sync``); Stripe
refunds do not reverse transfers unless asked; Stripe's Events API reaches back 30 days,
so backfills page the list endpoints (``find_transfer``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs


@attrs.frozen
class RefundState:
    """A refund as the PSP sees it."""

    refund_id: str
    status: str
    amount: int
    payment_id: str = ""


@attrs.frozen
class PaymentState:
    """A payment as the PSP sees it.

    Attributes:
        payment_id: The PSP's id.
        status: ``succeeded``, ``failed``, ``cancelled``, ``expired``, ``processing``,
            ``requires_*``, ``conflicted``, or whatever the PSP said.
        amount: The amount asked for, in minor units.
        amount_received: What was captured.
        currency: ISO 4217 code.
        refunds: The refunds the PSP lists for this payment (Hyperswitch's payment
            object carries them), ``None`` when the view cannot tell: ``money_mismatch``
            reports the ones the ledger lacks (made in the PSP's dashboard).
    """

    payment_id: str
    status: str
    amount: int
    amount_received: int | None = None
    currency: str = ""
    refunds: tuple[RefundState, ...] | None = None


@attrs.frozen
class TransferState:
    """A Stripe transfer (found by id or by the row id in its metadata)."""

    transfer_id: str
    amount: int
    amount_reversed: int = 0
    destination: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)


@runtime_checkable
class ProviderView(Protocol):
    """Read-only provider state for the rules. ``None`` means "the provider has none"."""

    def payment(self, psp_payment_id: str) -> PaymentState | None:
        """The payment with that PSP id (polled with ``force_sync``)."""
        ...

    def payment_for_order(self, order_id: str) -> PaymentState | None:
        """The payment created for an order (its id derived from the order id)."""
        ...

    def refund(self, provider_refund_id: str) -> RefundState | None:
        """The refund with that PSP id."""
        ...

    def refund_for_row(self, refund_row_id: str) -> RefundState | None:
        """The refund created for a refund row (its id derived from the row id)."""
        ...

    def find_transfer(
        self, transfer_row_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        """The Stripe transfer created for a transfer row, found by its metadata."""
        ...


@runtime_checkable
class LegacyTransferFinder(Protocol):
    """A view that can also find transfers the original platform made.

    The original platform wrote its order id into each transfer's ``metadata[order_id]``
    and kept no Stripe id: ``transfers_without_stripe_id`` looks a row up by its own
    key first (``veza_idempotency_key``) and then, for a row with an order, by this.
    """

    def find_transfer_by_order(
        self, order_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        """The Stripe transfer to ``destination`` whose ``metadata[order_id]`` is ``order_id``."""
        ...


class ReversalResult(Protocol):
    """What a reversal call returns (veza-payments' ``SellerTransferReversal`` fits)."""

    @property
    def id(self) -> str:
        """The provider's reversal id."""
        ...


class TransferResult(Protocol):
    """What a transfer call returns (veza-payments' ``Transfer`` fits)."""

    @property
    def id(self) -> str:
        """The provider's transfer id."""
        ...


class TransferReverser(Protocol):
    """Reverses (part of) a transfer, idempotently by key (``StripeConnect`` fits)."""

    def reverse_transfer(
        self, idempotency_key: str, transfer_id: str, *, amount: int | None = None
    ) -> ReversalResult:
        """Reverse ``amount`` of ``transfer_id``; the same key never reverses twice."""
        ...


class TransferCreator(Protocol):
    """Creates a transfer, idempotently by key (``StripeConnect`` fits)."""

    def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
    ) -> TransferResult:
        """Transfer ``amount`` to ``destination``; the same key never pays twice."""
        ...


@runtime_checkable
class ReversalFinder(Protocol):
    """A reverser that can also find a reversal it made, by the key in its metadata."""

    def find_reversal(self, transfer_id: str, idempotency_key: str) -> str | None:
        """The id of ``transfer_id``'s reversal made with ``idempotency_key``, if any."""
        ...


@runtime_checkable
class TransferFinder(Protocol):
    """A creator that can also find a transfer it made, by the key in its metadata."""

    def find_transfer_by_key(
        self, idempotency_key: str, *, destination: str, created_after: dt.datetime
    ) -> str | None:
        """The id of the transfer made with ``idempotency_key`` (destination, window)."""
        ...
