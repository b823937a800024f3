"""Issue 15 item 8: payouts returned by the bank, out-of-range input, the refund sign."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import (
    PAYOUT,
    Accounts,
    IllegalTransitionError,
    InvalidAmountError,
    Ledger,
    LedgerError,
    NaiveDatetimeError,
    run_sweep,
    sweep_webhook_log,
)

BIGINT_MAX = 2**63 - 1
NAIVE = dt.datetime(2026, 11, 26, 12, 0)  # noqa: DTZ001 - the hostile input under test


def _fund(ledger: Ledger, seller: str, amount: int) -> None:
    """Give the seller's connected account ``amount`` (a payout never exceeds it)."""
    order = ledger.orders.create(buyer_id="b", seller_id=seller, amount=amount, currency="EUR")
    ledger.orders.mark_paid(order.id)
    transfer = ledger.transfers.create(
        seller_id=seller, destination="acct_1", amount=amount, currency="EUR", order_id=order.id
    )
    ledger.transfers.completed(transfer.id, f"tr_{uuid.uuid4().hex[:24]}")


def _paid_payout(ledger: Ledger, payout_id: str = "po-row-1", amount: int = 700) -> str:
    _fund(ledger, "seller", amount)
    payout = ledger.payouts.create(
        seller_id="seller",
        stripe_account="acct_1",
        amount=amount,
        currency="EUR",
        payout_id=payout_id,
    )
    ledger.payouts.submitted(payout.id, f"po_{payout_id}")
    ledger.payouts.paid(payout.id)
    return payout.id


# --------------------------------------------------------------------------- bank returns


def test_a_paid_payout_can_fail_later_and_its_posting_is_reversed(ledger: Ledger) -> None:
    payout_id = _paid_payout(ledger)
    paid_out = Accounts.connected_paid_out("seller")
    balance = Accounts.connected_balance("seller")
    assert ledger.journal.balance(paid_out, "EUR") == 700
    assert ledger.journal.balance(balance, "EUR") == 0  # the funding transfer, paid out
    returned = ledger.payouts.failed(payout_id, "bank return: account closed")
    assert (returned.status, returned.attempts) == ("failed", 1)
    assert returned.last_error == "bank return: account closed"
    assert (
        ledger.journal.balance(paid_out, "EUR") == 0
    )  # the money is back in the connected account
    assert ledger.journal.balance(balance, "EUR") == 700
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_a_returned_payout_retried_and_paid_again_is_journaled_each_time(ledger: Ledger) -> None:
    payout_id = _paid_payout(ledger)
    paid_out = Accounts.connected_paid_out("seller")
    for attempt in range(1, 3):
        ledger.payouts.failed(payout_id, f"return {attempt}")
        assert ledger.journal.balance(paid_out, "EUR") == 0
        ledger.payouts.retry(payout_id)
        assert ledger.payouts.paid(payout_id).status == "paid"
        assert ledger.journal.balance(paid_out, "EUR") == 700, (
            attempt
        )  # paid once more, not skipped
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_a_payout_that_failed_before_paid_posts_nothing(ledger: Ledger) -> None:
    _fund(ledger, "seller", 5)
    payout = ledger.payouts.create(
        seller_id="seller", stripe_account="acct_1", amount=5, currency="EUR"
    )
    ledger.payouts.failed(payout.id, "rejected")
    assert ledger.journal.balance(Accounts.connected_paid_out("seller"), "EUR") == 0
    assert ledger.journal.balance(Accounts.connected_balance("seller"), "EUR") == 5
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_the_payout_table_has_the_bank_return_edge() -> None:
    assert PAYOUT.allows("paid", "failed")
    assert not PAYOUT.allows("paid", "pending")  # a return goes through failed
    assert PAYOUT.terminal == frozenset({"canceled"})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.sampled_from(["submit", "paid", "failed", "retry"]), max_size=12))
def test_payout_journal_follows_any_sequence_of_moves(ledger: Ledger, steps: list[str]) -> None:
    """Whatever the sequence, ``connected_paid_out`` holds the amount iff the row is paid."""
    seller = uuid.uuid4().hex  # the fixture's database outlives one example
    _fund(ledger, seller, 9)
    payout = ledger.payouts.create(
        seller_id=seller, stripe_account="acct_1", amount=9, currency="EUR"
    )
    calls = {
        "submit": lambda: ledger.payouts.submitted(payout.id, f"po_{payout.id}"),
        "paid": lambda: ledger.payouts.paid(payout.id),
        "failed": lambda: ledger.payouts.failed(payout.id, "x"),
        "retry": lambda: ledger.payouts.retry(payout.id),
    }
    for step in steps:
        with contextlib.suppress(IllegalTransitionError):
            calls[step]()
        status = ledger.payouts.get(payout.id).status
        paid_out = ledger.journal.balance(Accounts.connected_paid_out(seller), "EUR")
        assert paid_out == (9 if status == "paid" else 0), (steps, status)
        assert sum(ledger.journal.trial_balance().values()) == 0


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("amount", [BIGINT_MAX + 1, 10**30])
def test_amounts_above_bigint_raise_a_typed_error_naming_the_field(
    ledger: Ledger, amount: int
) -> None:
    with pytest.raises(InvalidAmountError, match="amount") as raised:
        ledger.orders.create(buyer_id="b", seller_id="s", amount=amount, currency="EUR")
    assert isinstance(raised.value, LedgerError) and raised.value.field == "amount"
    with pytest.raises(InvalidAmountError, match="amount"):
        ledger.transfers.create(seller_id="s", destination="acct_1", amount=amount, currency="EUR")
    with pytest.raises(InvalidAmountError, match="amount"):
        ledger.payouts.create(seller_id="s", stripe_account="acct_1", amount=amount, currency="EUR")
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=BIGINT_MAX, currency="EUR")
    assert ledger.orders.get(order.id).amount == BIGINT_MAX  # the largest BIGINT is stored
    ledger.orders.mark_paid(order.id)
    with pytest.raises(InvalidAmountError, match="amount"):
        ledger.refunds.create(order.id, amount)


def test_naive_datetimes_raise_a_typed_error_naming_the_field(
    ledger: Ledger, engine: sa.Engine
) -> None:
    transfer = ledger.transfers.create(
        seller_id="s", destination="acct_1", amount=5, currency="EUR"
    )
    with pytest.raises(NaiveDatetimeError, match="retry_at") as raised:
        ledger.transfers.failed(transfer.id, "503", retry_at=NAIVE)
    assert isinstance(raised.value, LedgerError) and raised.value.field == "retry_at"
    assert ledger.transfers.get(transfer.id).status == "pending"  # refused before any write
    with pytest.raises(NaiveDatetimeError, match="now"):
        run_sweep(engine, None, now=NAIVE)
    with pytest.raises(NaiveDatetimeError, match="now"):
        sweep_webhook_log(engine, now=NAIVE)
    naive_clock = Ledger(engine, clock=lambda: NAIVE)
    with pytest.raises(NaiveDatetimeError, match="clock"):
        naive_clock.orders.create(buyer_id="b", seller_id="s", amount=5, currency="EUR")


# --------------------------------------------------------------------------- the refund sign


def test_seller_payable_is_positive_after_a_refund_of_a_transferred_order(ledger: Ledger) -> None:
    """``balance`` is debits minus credits: the seller owing the platform is a debit."""
    order = ledger.orders.create(
        buyer_id="b", seller_id="seller", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    payable = Accounts.seller_payable("seller")
    assert ledger.journal.balance(payable, "EUR") == -850  # owed to the seller: a credit
    transfer = ledger.transfers.create(
        seller_id="seller", destination="acct_1", amount=850, currency="EUR", order_id=order.id
    )
    ledger.transfers.completed(transfer.id, "tr_1")
    assert ledger.journal.balance(payable, "EUR") == 0
    refund = ledger.refunds.create(order.id, 400)
    ledger.refunds.succeeded(refund.id)
    assert ledger.journal.balance(payable, "EUR") == 340  # the seller owes 340: positive
    ledger.transfers.reversal_completed(transfer.id, "trr_1", amount=340)
    assert ledger.journal.balance(payable, "EUR") == 0
