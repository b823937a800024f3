"""Orders, refunds, transfers, reversals and payouts: state, journal and fee policy."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, strategies as st

from veza_ledger import (
    ORDER,
    Accounts,
    IllegalTransitionError,
    Ledger,
    LedgerConfigurationError,
    RecordNotFoundError,
    RefundExceedsCapturedError,
    TransitionConflictError,
    reversal_key,
)
from veza_ledger._orders import refund_split
from veza_ledger._schema import Order


def paid_order(ledger: Ledger, amount: int = 1000, fee: int = 150, **kw: object) -> Order:
    order = ledger.orders.create(
        buyer_id="buyer", seller_id="seller", amount=amount, currency="EUR", fee_amount=fee, **kw
    )  # type: ignore[arg-type]
    return ledger.orders.mark_paid(order.id)


def test_payment_posts_a_balanced_capture(ledger: Ledger) -> None:
    order = paid_order(ledger)
    assert order.status == "paid" and order.captured_amount == 1000
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 1000
    assert ledger.journal.balance(Accounts.seller_payable("seller"), "EUR") == -850
    assert ledger.journal.balance(Accounts.PLATFORM_FEES, "EUR") == -150
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_partial_refunds_carry_real_amounts_and_never_exceed_captured(ledger: Ledger) -> None:
    order = paid_order(ledger)
    first = ledger.refunds.create(order.id, 300, refund_id="rf-1")
    assert (first.amount, first.status) == (300, "pending")
    with pytest.raises(RefundExceedsCapturedError, match="700 of 1000"):
        ledger.refunds.create(order.id, 701)  # pending refunds count against the cap
    second = ledger.refunds.create(order.id, refund_id="rf-2")  # None: everything left
    assert second.amount == 700
    with pytest.raises(RefundExceedsCapturedError):
        ledger.refunds.create(order.id, 1)
    ledger.refunds.failed(second.id)  # a failed refund frees its amount again
    third = ledger.refunds.create(order.id, 700, refund_id="rf-3")
    ledger.refunds.succeeded(first.id)
    assert ledger.orders.get(order.id).status == "partially_refunded"
    ledger.refunds.succeeded(third.id)
    final = ledger.orders.get(order.id)
    assert (final.status, final.refunded_amount, final.fee_refunded) == ("refunded", 1000, 150)
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 0
    assert ledger.journal.balance(Accounts.PLATFORM_FEES, "EUR") == 0
    assert ledger.journal.balance(Accounts.seller_payable("seller"), "EUR") == 0
    assert ledger.journal.trial_balance() == {"EUR": 0}


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10"])
def test_refund_amounts_are_positive_ints(ledger: Ledger, bad: object) -> None:
    order = paid_order(ledger)
    with pytest.raises(LedgerConfigurationError):
        ledger.refunds.create(order.id, bad)  # type: ignore[arg-type]


def test_unpaid_orders_are_not_refundable(ledger: Ledger) -> None:
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=10, currency="EUR")
    with pytest.raises(IllegalTransitionError):
        ledger.refunds.create(order.id, 5)


def test_illegal_transitions_raise(ledger: Ledger) -> None:
    order = paid_order(ledger)
    with pytest.raises(IllegalTransitionError) as info:
        ledger.orders.mark_failed(order.id)
    assert (info.value.from_status, info.value.to_status) == ("paid", "failed")
    with pytest.raises(IllegalTransitionError):
        ledger.orders.mark_paid(order.id)  # paid once
    with pytest.raises(RecordNotFoundError):
        ledger.orders.mark_paid("no-such-order")


def test_compare_and_set_refuses_a_stale_writer(ledger: Ledger, engine: sa.Engine) -> None:
    """A writer that read the old status cannot apply its transition after another did."""
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=10, currency="EUR")
    with ledger.transaction() as session:
        row = session.get(Order, order.id)
        assert row is not None and row.status == "pending_payment"
        if engine.dialect.name == "postgresql":  # someone else moves it first and commits
            with engine.begin() as other:
                other.execute(
                    sa.update(Order).where(Order.id == order.id).values(status="cancelled")
                )
        else:  # SQLite has one writer: move it in this transaction behind the ORM's back
            session.execute(
                sa.update(Order)
                .where(Order.id == order.id)
                .values(status="cancelled")
                .execution_options(synchronize_session=False)
            )
        with pytest.raises(TransitionConflictError):
            ledger._move(session, Order, ORDER, row, "paid")


def test_fee_scales_down_on_partial_capture(ledger: Ledger) -> None:
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=100
    )
    ledger.orders.mark_paid(order.id, captured_amount=500)
    assert ledger.journal.balance(Accounts.PLATFORM_FEES, "EUR") == -50
    with pytest.raises(RefundExceedsCapturedError):
        ledger.refunds.create(order.id, 501)


@given(
    st.integers(min_value=1, max_value=10**9),
    st.data(),
)
def test_fee_policy_returns_exactly_the_fee_over_any_partition(
    amount: int, data: st.DataObject
) -> None:
    fee = data.draw(st.integers(min_value=0, max_value=amount))
    parts = data.draw(st.lists(st.integers(min_value=1, max_value=amount), max_size=12))
    order = Order(
        id="o",
        amount=amount,
        fee_amount=fee,
        captured_amount=amount,
        refunded_amount=0,
        fee_refunded=0,
    )
    fee_total = seller_total = 0
    for wanted in [*parts, amount]:  # the last one refunds whatever is left
        part = min(wanted, amount - order.refunded_amount)
        if part <= 0:
            break
        fee_share, seller_share = refund_split(order, part)
        assert fee_share >= 0 and seller_share >= 0 and fee_share + seller_share == part
        order.refunded_amount += part
        order.fee_refunded += fee_share
        fee_total += fee_share
        seller_total += seller_share
    assert fee_total == fee and seller_total == amount - fee


# --------------------------------------------------------------------------- transfers


def test_transfer_then_refund_makes_the_seller_share_due_for_reversal(ledger: Ledger) -> None:
    order = paid_order(ledger)
    transfer = ledger.transfers.create(
        seller_id="seller",
        destination="acct_1",
        amount=850,
        currency="EUR",
        order_id=order.id,
        transfer_id="tr-row-1",
    )
    ledger.transfers.completed(transfer.id, "tr_stripe_1")
    assert ledger.journal.balance(Accounts.seller_payable("seller"), "EUR") == 0
    refund = ledger.refunds.create(order.id, 400)
    ledger.refunds.succeeded(refund.id)
    due = ledger.transfers.get(transfer.id)
    assert due.status == "reversal_pending" and due.reversal_due == 340  # 400 - 60 fee
    assert reversal_key(due) == "tr-row-1"  # the first reversal is keyed by the row id
    done = ledger.transfers.reversal_completed(transfer.id, "trr_1", amount=340)
    assert (done.status, done.reversed_amount) == ("partially_reversed", 340)
    assert reversal_key(done) == "tr-row-1-r340"  # the next one has its own stable key
    rest = ledger.refunds.create(order.id)
    ledger.refunds.succeeded(rest.id)
    again = ledger.transfers.get(transfer.id)
    assert again.status == "reversal_pending" and again.reversal_due == 850
    final = ledger.transfers.reversal_completed(transfer.id, "trr_2", amount=510)
    assert (final.status, final.reversed_amount) == ("reversed", 850)
    for account in (
        Accounts.seller_payable("seller"),
        Accounts.STRIPE_BALANCE,
        Accounts.connected_balance("seller"),
        Accounts.PSP_CLEARING,
    ):
        assert ledger.journal.balance(account, "EUR") == 0, account
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_a_refund_before_the_transfer_completes_is_reversed_after(ledger: Ledger) -> None:
    order = paid_order(ledger)
    transfer = ledger.transfers.create(
        seller_id="seller", destination="acct_1", amount=850, currency="EUR", order_id=order.id
    )
    refund = ledger.refunds.create(order.id, 1000)
    ledger.refunds.succeeded(refund.id)  # the buyer is never blocked by the seller side
    assert ledger.transfers.get(transfer.id).status == "pending"
    completed = ledger.transfers.completed(transfer.id, "tr_9")
    assert completed.status == "reversal_pending" and completed.reversal_due == 850


def test_failed_transfers_are_retried_with_the_same_row(ledger: Ledger, clock: object) -> None:
    transfer = ledger.transfers.create(
        seller_id="s", destination="acct_1", amount=5, currency="EUR"
    )
    failed = ledger.transfers.failed(transfer.id, "stripe 503" + "x" * 1000)
    assert (
        failed.status == "failed" and failed.attempts == 1 and len(failed.last_error or "") == 500
    )
    assert ledger.transfers.retry(transfer.id).status == "pending"
    assert ledger.transfers.completed(transfer.id, "tr_1").stripe_transfer_id == "tr_1"


def test_reversal_failures_keep_the_row_pending(ledger: Ledger) -> None:
    order = paid_order(ledger)
    transfer = ledger.transfers.create(
        seller_id="seller", destination="acct_1", amount=850, currency="EUR", order_id=order.id
    )
    ledger.transfers.completed(transfer.id, "tr_1")
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 100).id)
    after = ledger.transfers.reversal_failed(transfer.id, "stripe down")
    assert (after.status, after.attempts, after.last_error) == (
        "reversal_pending",
        1,
        "stripe down",
    )


def test_provider_ids_are_unique_only_when_present(ledger: Ledger, engine: sa.Engine) -> None:
    a = ledger.transfers.create(seller_id="s", destination="acct_1", amount=5, currency="EUR")
    b = ledger.transfers.create(seller_id="s", destination="acct_1", amount=5, currency="EUR")
    c = ledger.transfers.create(seller_id="s", destination="acct_1", amount=5, currency="EUR")
    with engine.begin() as connection:  # several rows without an id, or with '', are fine
        connection.execute(
            sa.text(
                "UPDATE ledger_seller_transfers SET stripe_transfer_id = '' WHERE id IN (:a, :b)"
            ),
            {"a": a.id, "b": b.id},
        )
    ledger.transfers.completed(a.id, "tr_same")
    with pytest.raises(sa.exc.IntegrityError):
        ledger.transfers.completed(c.id, "tr_same")


def test_payouts(ledger: Ledger) -> None:
    funding = ledger.transfers.create(
        seller_id="s", destination="acct_1", amount=705, currency="EUR"
    )
    ledger.transfers.completed(funding.id, "tr_funding")  # a payout never exceeds the balance
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_1", amount=700, currency="EUR"
    )
    ledger.payouts.submitted(payout.id, "po_1")
    paid = ledger.payouts.paid(payout.id)
    assert (paid.status, paid.external_payout_id) == ("paid", "po_1")
    assert ledger.journal.balance(Accounts.connected_paid_out("s"), "EUR") == 700
    other = ledger.payouts.create(seller_id="s", stripe_account="acct_1", amount=5, currency="EUR")
    ledger.payouts.failed(other.id, "bank closed")
    assert ledger.payouts.retry(other.id).status == "pending"
    assert ledger.journal.trial_balance() == {"EUR": 0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 10.0}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"fee_amount": 11}, "fee_amount"),
        ({"fee_amount": -1}, "fee_amount"),
        ({"buyer_id": ""}, "buyer_id"),
        ({"order_id": "x" * 65}, "order_id"),
    ],
)
def test_orders_are_validated(ledger: Ledger, kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"buyer_id": "b", "seller_id": "s", "amount": 10, "currency": "EUR"}
    with pytest.raises(LedgerConfigurationError, match=match):
        ledger.orders.create(**{**base, **kwargs})  # type: ignore[arg-type]


def test_times_are_aware_utc_on_both_databases(ledger: Ledger, clock: object) -> None:
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=10, currency="EUR")
    stored = ledger.orders.get(order.id)
    assert stored.created_at.tzinfo is not None
    assert stored.created_at == order.created_at
