"""Seller transfers (with reversals) and payouts.

A transfer row exists **before** the Stripe call, and its id is the call's idempotency
key; the Stripe transfer id is recorded with the state change to ``completed``, in one
transaction. A crash between Stripe's answer and that commit leaves a ``pending`` row
whose retry (same key) gets Stripe's replay of the same transfer: never a second one.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger import _journal
from veza_ledger._base import Accounts, LedgerBase, check_id, check_money, new_id
from veza_ledger._errors import LedgerConfigurationError
from veza_ledger._machines import PAYOUT, TRANSFER
from veza_ledger._schema import SellerPayout, SellerTransfer

MAX_ERROR = 500


def reversal_key(transfer: SellerTransfer) -> str:
    """The idempotency key of the next reversal of ``transfer``.

    The first reversal uses the transfer row's id itself; later partial reversals add
    the amount already reversed, which makes each step's key distinct and stable
    across retries of that step.
    """
    if transfer.reversed_amount == 0:
        return transfer.id
    return f"{transfer.id}-r{transfer.reversed_amount}"


class TransfersMixin(LedgerBase):
    """Seller transfers and payouts."""

    # ------------------------------------------------------------------ transfers

    def create_transfer(
        self,
        *,
        seller_id: str,
        destination: str,
        amount: int,
        currency: str,
        order_id: str | None = None,
        transfer_id: str | None = None,
    ) -> SellerTransfer:
        """Create a ``pending`` transfer row; call Stripe with its id as the key after."""
        amount, currency = check_money(amount, currency)
        transfer = SellerTransfer(
            id=check_id(transfer_id or new_id(), "transfer_id"),
            order_id=order_id,
            seller_id=check_id(seller_id, "seller_id"),
            destination=check_id(destination, "destination"),
            amount=amount,
            currency=currency,
            status=TRANSFER.initial,
            reversal_due=0,
            reversed_amount=0,
            attempts=0,
            created_at=self.now(),
            updated_at=self.now(),
        )
        with self.transaction() as session:
            session.add(transfer)
        return transfer

    def transfer(self, transfer_id: str) -> SellerTransfer:
        """Read a transfer."""
        with self.transaction() as session:
            return self._get(session, SellerTransfer, transfer_id)

    def transfers_of(self, order_id: str) -> list[SellerTransfer]:
        """An order's transfers, oldest first."""
        with self.transaction() as session:
            return list(
                session.scalars(
                    sa.select(SellerTransfer)
                    .where(SellerTransfer.order_id == order_id)
                    .order_by(SellerTransfer.created_at, SellerTransfer.id)
                )
            )

    def transfer_completed(self, transfer_id: str, stripe_transfer_id: str) -> SellerTransfer:
        """``pending -> completed`` with the Stripe id, posting the payment to the seller.

        If refunds made part of it due for reversal meanwhile, the transfer moves on to
        ``reversal_pending`` in the same transaction.
        """
        with self.transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._transfer_completed(session, transfer, stripe_transfer_id)
            return transfer

    def _transfer_completed(
        self, session: Session, transfer: SellerTransfer, stripe_transfer_id: str
    ) -> None:
        check_id(stripe_transfer_id, "stripe_transfer_id")
        self._move(
            session,
            SellerTransfer,
            TRANSFER,
            transfer,
            "completed",
            values={
                "stripe_transfer_id": stripe_transfer_id,
                "last_error": None,
                "next_attempt_at": None,
            },
        )
        seller, currency, amount = transfer.seller_id, transfer.currency, transfer.amount
        legs = [
            _journal.debit(Accounts.seller_payable(seller), currency, amount),
            _journal.credit(Accounts.STRIPE_BALANCE, currency, amount),
            _journal.debit(Accounts.connected_balance(seller), currency, amount),
            _journal.credit(Accounts.connected_funding(seller), currency, amount),
        ]
        _journal.post(session, f"transfer:{transfer.id}:completed", "transfer", legs)
        if transfer.reversal_due > transfer.reversed_amount:
            self._move(session, SellerTransfer, TRANSFER, transfer, "reversal_pending")

    def transfer_failed(
        self, transfer_id: str, error: str, *, retry_at: dt.datetime | None = None
    ) -> SellerTransfer:
        """``pending -> failed``, counting the attempt; ``retry_transfer`` re-queues it."""
        with self.transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._move(
                session,
                SellerTransfer,
                TRANSFER,
                transfer,
                "failed",
                values={
                    "attempts": transfer.attempts + 1,
                    "last_error": error[:MAX_ERROR],
                    "next_attempt_at": retry_at,
                },
            )
            return transfer

    def retry_transfer(self, transfer_id: str) -> SellerTransfer:
        """``failed -> pending``: the next attempt reuses the same key (the row id)."""
        with self.transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._move(session, SellerTransfer, TRANSFER, transfer, "pending")
            return transfer

    def reversal_completed(
        self, transfer_id: str, stripe_reversal_id: str, amount: int
    ) -> SellerTransfer:
        """Record a Stripe reversal of ``amount``: ``reversal_pending -> (partially_)reversed``.

        A transfer reversed in full is ``reversed``; otherwise ``partially_reversed``,
        and straight back to ``reversal_pending`` if more became due meanwhile.
        """
        with self.transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._reversal_completed(session, transfer, stripe_reversal_id, amount)
            return transfer

    def _reversal_completed(
        self, session: Session, transfer: SellerTransfer, stripe_reversal_id: str, amount: int
    ) -> None:
        check_id(stripe_reversal_id, "stripe_reversal_id")
        amount, _ = check_money(amount, transfer.currency)
        reversed_amount = transfer.reversed_amount + amount
        if reversed_amount > transfer.amount:
            msg = f"reversing {amount} would exceed transfer {transfer.id}'s {transfer.amount}"
            raise LedgerConfigurationError(msg)
        status = "reversed" if reversed_amount == transfer.amount else "partially_reversed"
        self._move(
            session,
            SellerTransfer,
            TRANSFER,
            transfer,
            status,
            values={
                "stripe_reversal_id": stripe_reversal_id,
                "reversed_amount": reversed_amount,
                "reversal_due": max(transfer.reversal_due, reversed_amount),
                "last_error": None,
                "next_attempt_at": None,
                "attempts": 0,
            },
        )
        seller, currency = transfer.seller_id, transfer.currency
        legs = [
            _journal.debit(Accounts.STRIPE_BALANCE, currency, amount),
            _journal.credit(Accounts.seller_payable(seller), currency, amount),
            _journal.debit(Accounts.connected_funding(seller), currency, amount),
            _journal.credit(Accounts.connected_balance(seller), currency, amount),
        ]
        _journal.post(
            session, f"transfer:{transfer.id}:reversal:{stripe_reversal_id}", "reversal", legs
        )
        if status == "partially_reversed" and transfer.reversal_due > reversed_amount:
            self._move(session, SellerTransfer, TRANSFER, transfer, "reversal_pending")

    def reversal_failed(
        self, transfer_id: str, error: str, *, retry_at: dt.datetime | None = None
    ) -> SellerTransfer:
        """Keep the transfer ``reversal_pending``, counting the attempt and backing off."""
        with self.transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            if transfer.status != "reversal_pending":
                TRANSFER.check(transfer.id, transfer.status, "reversal_pending")
            session.execute(
                sa.update(SellerTransfer)
                .where(
                    SellerTransfer.id == transfer.id, SellerTransfer.status == "reversal_pending"
                )
                .values(
                    attempts=SellerTransfer.attempts + 1,
                    last_error=error[:MAX_ERROR],
                    next_attempt_at=retry_at,
                    updated_at=self.now(),
                )
            )
            return self._get(session, SellerTransfer, transfer_id)

    # ------------------------------------------------------------------ payouts

    def create_payout(
        self,
        *,
        seller_id: str,
        stripe_account: str,
        amount: int,
        currency: str,
        payout_id: str | None = None,
    ) -> SellerPayout:
        """Create a ``pending`` payout row; its id keys the Stripe call."""
        amount, currency = check_money(amount, currency)
        payout = SellerPayout(
            id=check_id(payout_id or new_id(), "payout_id"),
            seller_id=check_id(seller_id, "seller_id"),
            stripe_account=check_id(stripe_account, "stripe_account"),
            amount=amount,
            currency=currency,
            status=PAYOUT.initial,
            attempts=0,
            created_at=self.now(),
            updated_at=self.now(),
        )
        with self.transaction() as session:
            session.add(payout)
        return payout

    def payout(self, payout_id: str) -> SellerPayout:
        """Read a payout."""
        with self.transaction() as session:
            return self._get(session, SellerPayout, payout_id)

    def payout_submitted(self, payout_id: str, external_payout_id: str) -> SellerPayout:
        """``pending -> in_transit`` with Stripe's payout id."""
        with self.transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            self._move(
                session,
                SellerPayout,
                PAYOUT,
                payout,
                "in_transit",
                values={"external_payout_id": check_id(external_payout_id, "external_payout_id")},
            )
            return payout

    def payout_paid(self, payout_id: str, external_payout_id: str | None = None) -> SellerPayout:
        """``pending|in_transit -> paid``, posting the payout to the seller's memo accounts."""
        with self.transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            values = {}
            if external_payout_id is not None:
                values["external_payout_id"] = check_id(external_payout_id, "external_payout_id")
            self._move(session, SellerPayout, PAYOUT, payout, "paid", values=values)
            seller, currency, amount = payout.seller_id, payout.currency, payout.amount
            legs = [
                _journal.debit(Accounts.connected_paid_out(seller), currency, amount),
                _journal.credit(Accounts.connected_balance(seller), currency, amount),
            ]
            _journal.post(session, f"payout:{payout.id}:paid", "payout", legs)
            return payout

    def payout_failed(self, payout_id: str, error: str) -> SellerPayout:
        """``pending|in_transit -> failed``."""
        with self.transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            self._move(
                session,
                SellerPayout,
                PAYOUT,
                payout,
                "failed",
                values={"attempts": payout.attempts + 1, "last_error": error[:MAX_ERROR]},
            )
            return payout

    def retry_payout(self, payout_id: str) -> SellerPayout:
        """``failed -> pending`` (same key on the next attempt)."""
        with self.transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            self._move(session, SellerPayout, PAYOUT, payout, "pending")
            return payout
