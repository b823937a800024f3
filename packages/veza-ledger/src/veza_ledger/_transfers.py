"""Seller transfers (with reversals) and payouts.

A transfer row exists **before** the Stripe call, and its id is the call's idempotency
key; the Stripe transfer id is recorded with the state change to ``completed``, in one
transaction. A crash between Stripe's answer and that commit leaves a ``pending`` row
whose retry (same key) gets Stripe's replay of the same transfer: never a second one.

Reversals are recorded one by one (:class:`SellerTransferReversal`, keyed by the provider's
reversal id); a transfer's ``reversed_amount`` is their sum, recomputed under the row
lock, so recording the same reversal twice changes nothing. Every write to a transfer
row happens under its row lock (PostgreSQL) or the database's single writer (SQLite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value as setattr_committed

from veza_ledger import _journal
from veza_ledger._allocation import allocate_reversals, refunded_seller_share
from veza_ledger._base import (
    Accounts,
    Service,
    check_aware,
    check_id,
    check_money,
    new_id,
)
from veza_ledger._compat import positional_deprecated
from veza_ledger._errors import (
    IllegalTransitionError,
    LedgerConfigurationError,
    LedgerError,
    RecordNotFoundError,
    TransferCurrencyMismatchError,
    TransferExceedsShareError,
    TransferNotAllowedError,
)
from veza_ledger._machines import INTENT, PAYOUT, TRANSFER
from veza_ledger._orders import seller_share
from veza_ledger._schema import (
    JournalTransaction,
    Order,
    ProviderIntent,
    SellerPayout,
    SellerTransfer,
    SellerTransferReversal,
)

MAX_ERROR = 500

METADATA_KEY = "veza_idempotency_key"
"""Where veza-payments writes the caller's key (the intent's id) on Stripe objects."""


COVERED = ("written_off", "netted")
"""Statuses of reversal intents whose amount is settled without a provider reversal."""


@attrs.define
class ReversalFacts:
    """What recording reversals needs to read, read once for a batch of locked transfers.

    The reversal worker records up to a batch of outcomes in one transaction; reading
    these per outcome cost three statements each. Read *after* the transfers' row locks
    are taken (every write to them happens under those locks), they stay true for the
    transaction; :meth:`Transfers._record_reversal` keeps them current.

    Attributes:
        reversals: Recorded reversals by provider id: every one of the locked transfers
            and every one carrying a provider id about to be recorded.
        reversed: The sum of the recorded reversals per locked transfer.
        covered: What written-off or netted reversal intents settled per locked transfer.
    """

    reversals: dict[str, SellerTransferReversal] = attrs.field(factory=dict)
    reversed: dict[str, int] = attrs.field(factory=dict)
    covered: dict[str, int] = attrs.field(factory=dict)


def reversal_key(transfer: SellerTransfer) -> str:
    """A key for a reversal made by hand, derived from what the row has reversed.

    Deprecated for workers: a key derived from the row changes meaning when a refund
    lands between a crash and the retry (issue 13, finding 2). The reversal worker keys
    each call by its durable intent's id instead (:class:`ProviderIntent`).
    """
    if transfer.reversed_amount == 0:
        return transfer.id
    return f"{transfer.id}-r{transfer.reversed_amount}"


class Transfers(Service):
    """Seller transfers and their reversals (``ledger.transfers``)."""

    # ------------------------------------------------------------------ transfers

    def create(
        self,
        *,
        seller_id: str,
        destination: str,
        amount: int,
        currency: str,
        order_id: str | None = None,
        transfer_id: str | None = None,
    ) -> SellerTransfer:
        """Create a ``pending`` transfer row; call Stripe with its id as the key after.

        Reversals an operator chose to net (:meth:`net_intent`) are withheld from this
        transfer, oldest first, as long as something is left to pay: the row's
        ``amount`` is what Stripe will move, ``netted_amount`` what was withheld, and
        each netted intent records this transfer's id (``netted_into``).

        A transfer for an order is bound to it: same seller, same currency, and the
        order's transfers (gross: ``amount + netted_amount`` of each) never add up to
        more than :func:`~veza_ledger.seller_share` of the order, checked under the
        order's row lock so two concurrent transfers cannot both fit. Refunds do not
        lower that cap: the refunded seller share is recovered from the transfers by
        reversals (:func:`~veza_ledger.allocate_reversals`), and subtracting it here
        too would take it from the seller twice; a transfer created after a partial refund
        is born with its part of the refunded share as ``reversal_due`` (the same
        allocation), so it goes to ``reversal_pending`` as it completes.

        Raises:
            TransferCurrencyMismatchError: ``currency`` is not the order's.
            TransferExceedsShareError: The order's share has no room for ``amount``
                (nothing captured yet: the share is 0).
            TransferNotAllowedError: ``seller_id`` is not the order's seller.
            RecordNotFoundError: No order ``order_id``.
        """
        amount, currency = check_money(amount, currency)
        row_id = check_id(transfer_id or new_id(), "transfer_id")
        with self._transaction() as session:
            order = (
                None
                if order_id is None
                else self._check_order_room(session, order_id, seller_id, amount, currency)
            )
            netted = self._net_parked(session, seller_id, currency, amount, row_id)
            transfer = self._new_transfer(
                row_id,
                order_id,
                seller_id=seller_id,
                destination=destination,
                amount=amount - netted,
                currency=currency,
            )
            transfer.netted_amount = netted
            if order is not None:
                transfer.reversal_due = self._due_at_creation(session, order, transfer)
            session.add(transfer)
        return transfer

    @staticmethod
    def _due_at_creation(session: Session, order: Order, transfer: SellerTransfer) -> int:
        """The new transfer's part of the refunded seller share already on the order.

        The one allocation rule (:func:`allocate_reversals`, what a refund and the
        ``unreversed_refunds`` rule apply) over the order's transfers with this one: a
        transfer made after a partial refund is born owing its part, so it moves to
        ``reversal_pending`` when it completes instead of waiting for a finding.
        """
        rows = [
            (created, tid, amount)
            for tid, amount, created in session.execute(
                sa.select(
                    SellerTransfer.id, SellerTransfer.amount, SellerTransfer.created_at
                ).where(SellerTransfer.order_id == order.id)
            ).all()
        ]
        rows.append((transfer.created_at, transfer.id, transfer.amount))
        rows.sort(key=lambda row: (row[0], row[1]))
        dues = allocate_reversals(
            refunded_seller_share(order), [(tid, amount) for _, tid, amount in rows]
        )
        return dues[transfer.id]

    def _check_order_room(
        self, session: Session, order_id: str, seller_id: str, amount: int, currency: str
    ) -> Order:
        """Refuse a transfer its order cannot carry (see :meth:`create_transfer`)."""
        order = self._get(session, Order, order_id, lock=True)
        if currency != order.currency:
            raise TransferCurrencyMismatchError(
                order.id, order_currency=order.currency, currency=currency
            )
        if seller_id != order.seller_id:
            msg = f"transfer to seller {seller_id!r} on order {order.id} of another seller"
            raise TransferNotAllowedError(order.id, msg)
        transferred = int(
            session.scalar(
                sa.select(
                    sa.func.coalesce(
                        sa.func.sum(SellerTransfer.amount + SellerTransfer.netted_amount), 0
                    )
                ).where(SellerTransfer.order_id == order.id)
            )
            or 0
        )
        share = seller_share(order)
        if transferred + amount > share:
            raise TransferExceedsShareError(
                order.id, share=share, transferred=transferred, requested=amount
            )
        return order

    def _net_parked(
        self, session: Session, seller_id: str, currency: str, amount: int, into: str
    ) -> int:
        query = (
            sa.select(ProviderIntent)
            .where(
                ProviderIntent.seller_id == seller_id,
                ProviderIntent.status == "netted",
                ProviderIntent.netted_into.is_(None),
                ProviderIntent.currency == currency,
            )
            .order_by(ProviderIntent.created_at, ProviderIntent.id)
        )
        if self._pg:
            query = query.with_for_update()
        taken = 0
        for intent in session.scalars(query):
            if taken + intent.amount >= amount:
                continue  # it does not fit; a later (larger) transfer takes it
            taken += intent.amount
            intent.netted_into = into
            intent.updated_at = self._now()
        return taken

    def _new_transfer(
        self,
        row_id: str,
        order_id: str | None,
        *,
        seller_id: str,
        destination: str,
        amount: int,
        currency: str,
    ) -> SellerTransfer:
        return SellerTransfer(
            id=row_id,
            order_id=order_id,
            seller_id=check_id(seller_id, "seller_id"),
            destination=check_id(destination, "destination"),
            amount=amount,
            currency=currency,
            status=TRANSFER.initial,
            reversal_due=0,
            reversed_amount=0,
            netted_amount=0,
            attempts=0,
            created_at=self._now(),
            updated_at=self._now(),
        )

    def reversals_of(self, transfer_id: str) -> list[SellerTransferReversal]:
        """The reversals recorded for a transfer, oldest first."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    sa.select(SellerTransferReversal)
                    .where(SellerTransferReversal.transfer_id == transfer_id)
                    .order_by(
                        SellerTransferReversal.created_at,
                        SellerTransferReversal.provider_reversal_id,
                    )
                )
            )

    def get(self, transfer_id: str) -> SellerTransfer:
        """Read a transfer."""
        with self._transaction() as session:
            return self._get(session, SellerTransfer, transfer_id)

    def of_order(self, order_id: str) -> list[SellerTransfer]:
        """An order's transfers, oldest first."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    sa.select(SellerTransfer)
                    .where(SellerTransfer.order_id == order_id)
                    .order_by(SellerTransfer.created_at, SellerTransfer.id)
                )
            )

    def completed(self, transfer_id: str, stripe_transfer_id: str) -> SellerTransfer:
        """``pending -> completed`` with the Stripe id, posting the payment to the seller.

        If refunds made part of it due for reversal meanwhile, the transfer moves on to
        ``reversal_pending`` in the same transaction.
        """
        with self._transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._transfer_completed(session, transfer, stripe_transfer_id)
            return transfer

    def _transfer_completed(
        self,
        session: Session,
        transfer: SellerTransfer,
        stripe_transfer_id: str,
        *,
        extra: dict[str, object] | None = None,
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
                **(extra or {}),
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

    def failed(
        self, transfer_id: str, error: str, *, retry_at: dt.datetime | None = None
    ) -> SellerTransfer:
        """``pending -> failed``, counting the attempt; ``retry_transfer`` re-queues it."""
        retry_at = check_aware(retry_at, "retry_at")
        with self._transaction() as session:
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

    def retry(self, transfer_id: str) -> SellerTransfer:
        """``failed -> pending``: the next attempt reuses the same key (the row id)."""
        with self._transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._move(session, SellerTransfer, TRANSFER, transfer, "pending")
            return transfer

    @positional_deprecated
    def reversal_completed(
        self, transfer_id: str, stripe_reversal_id: str, *, amount: int
    ) -> SellerTransfer:
        """Record a Stripe reversal of ``amount`` (once: keyed by ``stripe_reversal_id``).

        ``reversed_amount`` becomes the sum of the recorded reversals and the status
        follows: ``reversed`` when all of it came back, ``reversal_pending`` while more
        is due, ``partially_reversed`` otherwise. Recording the same reversal again
        changes nothing, in the journal or on the row.
        """
        with self._transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            self._record_reversal(session, transfer, stripe_reversal_id, amount)
            return transfer

    def _reversal_completed(
        self, session: Session, transfer: SellerTransfer, stripe_reversal_id: str, amount: int
    ) -> None:
        """Kept for callers of the old private name: :meth:`_record_reversal`."""
        self._record_reversal(session, transfer, stripe_reversal_id, amount)

    def _record_reversal(
        self,
        session: Session,
        transfer: SellerTransfer,
        provider_reversal_id: str,
        amount: int,
        *,
        intent_id: str | None = None,
        extra: dict[str, object] | None = None,
        facts: ReversalFacts | None = None,
    ) -> bool:
        """Record one provider reversal on a transfer locked by the caller.

        ``facts`` (read under the same locks, in this transaction) spares the reads of
        the existing reversal, the reversed sum and the covered sum.

        Returns:
            Whether it was new (``False``: already recorded; nothing changed).
        """
        check_id(provider_reversal_id, "stripe_reversal_id")
        amount, _ = check_money(amount, transfer.currency)
        if transfer.status in ("pending", "failed"):
            raise IllegalTransitionError("transfer", transfer.id, transfer.status, "reversed")
        existing = (
            session.get(SellerTransferReversal, provider_reversal_id)
            if facts is None
            else facts.reversals.get(provider_reversal_id)
        )
        if existing is not None:
            if existing.transfer_id != transfer.id or existing.amount != amount:
                msg = (
                    f"reversal {provider_reversal_id} is recorded for transfer "
                    f"{existing.transfer_id} ({existing.amount}), not {transfer.id} ({amount})"
                )
                raise LedgerConfigurationError(msg)
            return False
        if transfer.reversed_amount + amount > transfer.amount:
            msg = f"reversing {amount} would exceed transfer {transfer.id}'s {transfer.amount}"
            raise LedgerConfigurationError(msg)
        reversal = SellerTransferReversal(
            provider_reversal_id=provider_reversal_id,
            transfer_id=transfer.id,
            intent_id=intent_id,
            amount=amount,
            currency=transfer.currency,
            created_at=self._now(),
        )
        session.add(reversal)
        covered = None
        if facts is None:
            session.flush()
            reversed_amount = int(
                session.scalar(
                    sa.select(
                        sa.func.coalesce(sa.func.sum(SellerTransferReversal.amount), 0)
                    ).where(SellerTransferReversal.transfer_id == transfer.id)
                )
                or 0
            )
        else:  # flushed with the journal's insert below
            reversed_amount = facts.reversed.get(transfer.id, 0) + amount
            facts.reversals[provider_reversal_id] = reversal
            facts.reversed[transfer.id] = reversed_amount
            covered = facts.covered.get(transfer.id, 0)
        seller, currency = transfer.seller_id, transfer.currency
        legs = [
            _journal.debit(Accounts.STRIPE_BALANCE, currency, amount),
            _journal.credit(Accounts.seller_payable(seller), currency, amount),
            _journal.debit(Accounts.connected_funding(seller), currency, amount),
            _journal.credit(Accounts.connected_balance(seller), currency, amount),
        ]
        _journal.post(
            session, f"transfer:{transfer.id}:reversal:{provider_reversal_id}", "reversal", legs
        )
        self._settle_transfer(
            session,
            transfer,
            {
                "stripe_reversal_id": provider_reversal_id,
                "reversed_amount": reversed_amount,
                "reversal_due": max(transfer.reversal_due, reversed_amount),
                "last_error": None,
                "next_attempt_at": None,
                "attempts": 0,
                **(extra or {}),
            },
            covered=covered,
        )
        return True

    def _covered(self, session: Session, transfer_id: str) -> int:
        """What parked reversals settled without Stripe (written off or netted)."""
        return int(
            session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(ProviderIntent.amount), 0)).where(
                    ProviderIntent.kind == "reversal",
                    ProviderIntent.object_id == transfer_id,
                    ProviderIntent.status.in_(COVERED),
                )
            )
            or 0
        )

    def _settle_transfer(
        self,
        session: Session,
        transfer: SellerTransfer,
        values: dict[str, object],
        *,
        covered: int | None = None,
    ) -> None:
        """Write ``values`` and move the (locked) transfer to the status they imply.

        ``covered``: :meth:`_covered` when the caller already read it under the lock.
        """
        if transfer.status in ("pending", "failed"):
            target = transfer.status
        else:
            reversed_amount = _as_int(values.get("reversed_amount", transfer.reversed_amount))
            due = _as_int(values.get("reversal_due", transfer.reversal_due))
            if covered is None:
                covered = self._covered(session, transfer.id)
            settled = reversed_amount + covered
            if reversed_amount == transfer.amount:
                target = "reversed"
            elif due > settled:
                target = "reversal_pending"
            elif settled > 0:
                target = "partially_reversed"
            else:
                target = transfer.status
        path = _path(transfer.status, target)
        if not path:
            changes = {**values, "updated_at": self._now()}
            session.execute(
                sa.update(SellerTransfer).where(SellerTransfer.id == transfer.id).values(**changes)
            )
            for name, value in changes.items():
                setattr_committed(transfer, name, value)
            return
        for index, status in enumerate(path):
            self._move(
                session,
                SellerTransfer,
                TRANSFER,
                transfer,
                status,
                values=values if index == 0 else None,
            )

    def reversal_failed(
        self, transfer_id: str, error: str, *, retry_at: dt.datetime | None = None
    ) -> SellerTransfer:
        """Keep the transfer ``reversal_pending``, counting the attempt and backing off."""
        retry_at = check_aware(retry_at, "retry_at")
        with self._transaction() as session:
            transfer = self._get(session, SellerTransfer, transfer_id, lock=True)
            if transfer.status != "reversal_pending":
                TRANSFER.check(transfer.id, transfer.status, to_status="reversal_pending")
            session.execute(
                sa.update(SellerTransfer)
                .where(
                    SellerTransfer.id == transfer.id, SellerTransfer.status == "reversal_pending"
                )
                .values(
                    attempts=SellerTransfer.attempts + 1,
                    last_error=error[:MAX_ERROR],
                    next_attempt_at=retry_at,
                    updated_at=self._now(),
                )
            )
            return self._get(session, SellerTransfer, transfer_id)


class Payouts(Service):
    """Seller payouts from the connected account to the bank (``ledger.payouts``).

    A payout is a row (its status follows Stripe's payout) plus its intents: the
    first one (id = the row id, the key payouts always had) is written with the row,
    a retry after a failed payout writes the next (a fresh id: Stripe replays a key's
    first answer, the failed payout, for 24 h). ``run_payout_worker`` makes the calls.
    """

    #
    # A payout is a row (its status follows Stripe's payout) plus its intents: the
    # first one (id = the row id, the key payouts always had) is written with the row,
    # a retry after a failed payout writes the next (a fresh id: Stripe replays a key's
    # first answer, the failed payout, for 24 h). ``run_payout_worker`` makes the calls.

    def create(
        self,
        *,
        seller_id: str,
        stripe_account: str,
        amount: int,
        currency: str,
        payout_id: str | None = None,
    ) -> SellerPayout:
        """Create a ``pending`` payout row and its intent, if the seller can pay it out.

        The intent (amount, currency, the key: the row id, the destination account on
        the row) is committed here, before any call; ``run_payout_worker`` makes the
        call. Checked under a per-seller lock against :meth:`payout_available`, so two
        concurrent payouts cannot both spend the same balance.

        Raises:
            PayoutExceedsBalanceError: ``amount`` is more than the seller may pay out now.
            LedgerConfigurationError: Bad ids, or ``payout_id`` already keys an intent.
        """
        amount, currency = check_money(amount, currency)
        row_id = check_id(payout_id or new_id(), "payout_id")
        seller = check_id(seller_id, "seller_id")
        account = check_id(stripe_account, "stripe_account")
        with self._transaction() as session:
            self._check_payable(session, seller, currency, amount)
            if session.get(ProviderIntent, row_id) is not None:
                msg = f"payout_id {row_id!r} already keys a provider intent; use another id"
                raise LedgerConfigurationError(msg)
            payout = SellerPayout(
                id=row_id,
                seller_id=seller,
                stripe_account=account,
                amount=amount,
                currency=currency,
                status=PAYOUT.initial,
                attempts=0,
                created_at=self._now(),
                updated_at=self._now(),
            )
            session.add(payout)
            session.add(self._payout_intent(payout, intent_id=row_id, seq=1))
        return payout

    def available(self, seller_id: str, currency: str) -> int:
        """What the seller may pay out now, in minor units (see :meth:`create_payout`).

        The seller's connected balance in the journal, less payouts not yet journaled
        (``pending`` / ``in_transit``: Stripe already took them from the balance) and
        less the claw-backs still due on the seller's transfers (the connected account
        must keep them for the reversals; written-off or netted ones excepted).
        """
        _, currency = check_money(1, currency)
        with self._transaction() as session:
            return self._payout_available(session, seller_id, currency)

    def _check_payable(self, session: Session, seller: str, currency: str, amount: int) -> None:
        if self._pg:  # one payout decision per seller at a time (SQLite: one writer)
            session.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"payout:{seller}")))
            )
        available = self._payout_available(session, seller, currency)
        if amount > available:
            raise PayoutExceedsBalanceError(seller, currency, amount, available)

    def _payout_available(self, session: Session, seller: str, currency: str) -> int:
        connected = _journal.balance(session, Accounts.connected_balance(seller), currency)
        in_flight = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(SellerPayout.amount), 0)).where(
                SellerPayout.seller_id == seller,
                SellerPayout.currency == currency,
                SellerPayout.status.in_(("pending", "in_transit")),
            )
        )
        due = session.scalar(
            sa.select(
                sa.func.coalesce(
                    sa.func.sum(SellerTransfer.reversal_due - SellerTransfer.reversed_amount), 0
                )
            ).where(
                SellerTransfer.seller_id == seller,
                SellerTransfer.currency == currency,
                SellerTransfer.status.in_(("completed", "reversal_pending", "partially_reversed")),
            )
        )
        covered = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ProviderIntent.amount), 0)).where(
                ProviderIntent.seller_id == seller,
                ProviderIntent.currency == currency,
                ProviderIntent.kind == "reversal",
                ProviderIntent.status.in_(COVERED),
            )
        )
        owed = max(0, int(due or 0) - int(covered or 0))
        return connected - int(in_flight or 0) - owed

    def _payout_intent(self, payout: SellerPayout, *, intent_id: str, seq: int) -> ProviderIntent:
        return ProviderIntent(
            id=intent_id,
            kind="payout",
            object_id=payout.id,
            seq=seq,
            seller_id=payout.seller_id,
            amount=payout.amount,
            currency=payout.currency,
            status=INTENT.initial,
            attempts=0,
            created_at=self._now(),
            updated_at=self._now(),
        )

    @staticmethod
    def _payout_intents(session: Session, payout_id: str) -> list[ProviderIntent]:
        """The payout's intents by ``seq`` (read under the payout row's lock)."""
        return list(
            session.scalars(
                sa.select(ProviderIntent)
                .where(ProviderIntent.kind == "payout", ProviderIntent.object_id == payout_id)
                .order_by(ProviderIntent.seq)
                .execution_options(populate_existing=True)
            )
        )

    def _payout_sent(self, session: Session, payout: SellerPayout, external_id: str) -> None:
        """Record Stripe's payout id on the payout's open intent (one record per object)."""
        intents = self._payout_intents(session, payout.id)
        if any(intent.provider_object_id == external_id for intent in intents):
            return
        if intents and intents[-1].status == "pending":
            self._move(
                session,
                ProviderIntent,
                INTENT,
                intents[-1],
                "succeeded",
                values={"provider_object_id": external_id, "last_error": None},
            )

    def get(self, payout_id: str) -> SellerPayout:
        """Read a payout."""
        with self._transaction() as session:
            return self._get(session, SellerPayout, payout_id)

    def submitted(self, payout_id: str, external_payout_id: str) -> SellerPayout:
        """``pending -> in_transit`` with Stripe's payout id (recorded on its intent)."""
        with self._transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            external = check_id(external_payout_id, "external_payout_id")
            self._move(
                session,
                SellerPayout,
                PAYOUT,
                payout,
                "in_transit",
                values={"external_payout_id": external, "leased_until": None},
            )
            self._payout_sent(session, payout, external)
            return payout

    @staticmethod
    def _payout_returns(session: Session, payout_id: str) -> int:
        """How many bank returns of the payout were journaled (each has its own entry)."""
        prefix = f"payout:{payout_id}:returned:"
        count = session.scalar(
            sa.select(sa.func.count()).where(
                JournalTransaction.id.startswith(prefix, autoescape=True)
            )
        )
        return int(count or 0)

    def paid(self, payout_id: str, external_payout_id: str | None = None) -> SellerPayout:
        """``pending|in_transit -> paid``, posting the payout to the seller's memo accounts.

        The first payment is journaled as ``payout:<id>:paid``; a payment after ``n``
        bank returns (the row retried) as ``payout:<id>:paid:<n + 1>``, so each is
        posted once and none is mistaken for a replay of the one before.
        """
        with self._transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            self._payout_paid(session, payout, external_payout_id)
            return payout

    def _payout_paid(
        self, session: Session, payout: SellerPayout, external_payout_id: str | None
    ) -> None:
        values: dict[str, object] = {}
        if external_payout_id is not None:
            values["external_payout_id"] = check_id(external_payout_id, "external_payout_id")
        self._move(session, SellerPayout, PAYOUT, payout, "paid", values=values)
        if external_payout_id is not None:
            self._payout_sent(session, payout, external_payout_id)
        seller, currency, amount = payout.seller_id, payout.currency, payout.amount
        legs = [
            _journal.debit(Accounts.connected_paid_out(seller), currency, amount),
            _journal.credit(Accounts.connected_balance(seller), currency, amount),
        ]
        returns = self._payout_returns(session, payout.id)
        suffix = "" if returns == 0 else f":{returns + 1}"
        _journal.post(session, f"payout:{payout.id}:paid{suffix}", "payout", legs)

    def failed(self, payout_id: str, error: str) -> SellerPayout:
        """``pending|in_transit|paid -> failed``, counting the attempt.

        From ``paid`` it is a bank return: the money came back to the connected
        account, so the payout's posting is reversed (``payout:<id>:returned:<n>``,
        debit ``connected_balance``, credit ``connected_paid_out``). ``retry_payout``
        re-queues the row either way.
        """
        with self._transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            self._payout_failed(session, payout, error)
            return payout

    def _payout_failed(self, session: Session, payout: SellerPayout, error: str) -> None:
        returned = payout.status == "paid"
        self._move(
            session,
            SellerPayout,
            PAYOUT,
            payout,
            "failed",
            values={"attempts": payout.attempts + 1, "last_error": error[:MAX_ERROR]},
        )
        if returned:
            seller, currency, amount = payout.seller_id, payout.currency, payout.amount
            legs = [
                _journal.debit(Accounts.connected_balance(seller), currency, amount),
                _journal.credit(Accounts.connected_paid_out(seller), currency, amount),
            ]
            number = self._payout_returns(session, payout.id) + 1
            _journal.post(session, f"payout:{payout.id}:returned:{number}", "payout", legs)

    def retry(self, payout_id: str) -> SellerPayout:
        """``failed -> pending`` with the payout's next intent, if the seller can pay it.

        A failed payout cannot be retried with its old key (Stripe would replay the
        failed payout): the next intent has a fresh id, written here with the balance
        check of :meth:`create_payout`. An intent that never reached Stripe is reused.

        Raises:
            PayoutExceedsBalanceError: The seller cannot pay it out now.
            LedgerConfigurationError: The last call's outcome is still unknown (its
                intent was sent and nothing recorded): record it first.
        """
        with self._transaction() as session:
            payout = self._get(session, SellerPayout, payout_id, lock=True)
            PAYOUT.check(payout.id, payout.status, to_status="pending")
            intents = self._payout_intents(session, payout.id)
            last = intents[-1] if intents else None
            if last is not None and last.status in ("pending", "parked"):
                if last.first_sent_at is not None:
                    msg = (
                        f"payout {payout.id}: the outcome of intent {last.id} is unknown; "
                        "record the Stripe payout it made (payout_submitted) first"
                    )
                    raise LedgerConfigurationError(msg)
            else:
                self._check_payable(session, payout.seller_id, payout.currency, payout.amount)
                seq = last.seq + 1 if last is not None else 1
                intent_id = new_id() if last is not None else payout.id
                session.add(self._payout_intent(payout, intent_id=intent_id, seq=seq))
            self._move(
                session,
                SellerPayout,
                PAYOUT,
                payout,
                "pending",
                values={"external_payout_id": None, "next_attempt_at": None},
            )
            return payout

    def apply_event(self, event: Mapping[str, Any]) -> SellerPayout | None:
        """Apply a Stripe ``payout.paid`` / ``payout.failed`` / ``payout.canceled`` event.

        The payout is found by Stripe's id or, while the worker's call is still in
        flight (the id not recorded yet), by the key in its metadata
        (``veza_idempotency_key``: the intent's id). The id is recorded on the intent,
        then the row moves and the journal posts (``paid``; ``failed`` after ``paid`` is
        a bank return). A replay, or an event about an earlier attempt of a retried
        payout, changes nothing.

        Returns:
            The payout, or ``None`` for another event type.

        Raises:
            RecordNotFoundError: No payout carries that id or key (yet): answer 500, Stripe
                delivers it again later.
        """
        parsed = _parse_payout_event(event)
        if parsed is None:
            return None
        target, external_id, key, error = parsed
        with self._transaction() as session:
            intent = session.scalars(
                sa.select(ProviderIntent).where(
                    ProviderIntent.kind == "payout",
                    sa.or_(
                        ProviderIntent.provider_object_id == external_id,
                        ProviderIntent.id == key,
                    ),
                )
            ).first()
            if intent is None:
                msg = f"no payout intent for Stripe payout {external_id!r} (key {key!r})"
                raise RecordNotFoundError(msg)
            payout = self._get(session, SellerPayout, intent.object_id, lock=True)
            intents = self._payout_intents(session, payout.id)
            current = next(i for i in intents if i.id == intent.id)
            if current is not intents[-1]:
                return payout  # an earlier attempt's event: the row has moved on
            if current.status == "pending":
                self._move(
                    session,
                    ProviderIntent,
                    INTENT,
                    current,
                    "succeeded",
                    values={"provider_object_id": external_id, "last_error": None},
                )
            if payout.external_payout_id is None:
                session.execute(
                    sa.update(SellerPayout)
                    .where(SellerPayout.id == payout.id)
                    .values(external_payout_id=external_id, updated_at=self._now())
                )
                setattr_committed(payout, "external_payout_id", external_id)
            if payout.status == target or not PAYOUT.allows(payout.status, target):
                return payout  # a replay, or news older than what the row knows
            if target == "paid":
                self._payout_paid(session, payout, None)
            elif target == "failed":
                self._payout_failed(session, payout, error)
            else:
                self._move(session, SellerPayout, PAYOUT, payout, "canceled")
            return payout


class PayoutExceedsBalanceError(LedgerError, ValueError):
    """A payout larger than what the seller may pay out (:meth:`payout_available`).

    Attributes:
        seller_id: The seller.
        currency: The payout's currency.
        amount: What was asked.
        available: What the seller may pay out now.
    """

    def __init__(self, seller_id: str, currency: str, amount: int, available: int) -> None:
        super().__init__(
            f"a payout of {amount} {currency} exceeds what seller {seller_id} may pay out "
            f"({available})"
        )
        self.seller_id = seller_id
        self.currency = currency
        self.amount = amount
        self.available = available


PAYOUT_EVENTS = {"payout.paid": "paid", "payout.failed": "failed", "payout.canceled": "canceled"}


def _parse_payout_event(event: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """``(target status, Stripe payout id, key, error)`` of a payout event, or ``None``.

    Raises:
        LedgerConfigurationError: A payout event without a payout id.
    """
    target = PAYOUT_EVENTS.get(str(event.get("type")))
    if target is None:
        return None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str) or not obj["id"]:
        msg = "a payout event needs data.object.id"
        raise LedgerConfigurationError(msg)
    external_id = check_id(obj["id"], "payout id")
    metadata = obj.get("metadata")
    key = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    error = str(obj.get("failure_code") or obj.get("failure_message") or f"payout.{target}")
    return target, external_id, str(key) if isinstance(key, str) and key else "", error


def _path(start: str, end: str) -> list[str]:
    """The shortest chain of transfer moves from ``start`` to ``end`` (``[]`` if equal)."""
    if start == end:
        return []
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for state in frontier:
            for target in sorted(TRANSFER.transitions.get(state, frozenset())):
                if target in previous or target == start:
                    continue
                previous[target] = state
                if target == end:
                    chain = [end]
                    while chain[-1] != start and previous[chain[-1]] != start:
                        chain.append(previous[chain[-1]])
                    return list(reversed(chain))
                nxt.append(target)
        frontier = nxt
    TRANSFER.check("?", start, to_status=end)  # raises IllegalTransitionError
    return []


def _as_int(value: object) -> int:
    """An amount from a column or from the values about to be written to it (ints)."""
    return int(cast("int", value))
