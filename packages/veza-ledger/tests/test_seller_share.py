"""One source for shares (issue 15): ``seller_share`` and transfers bound to their order.

Every test runs on SQLite and PostgreSQL (the ``ledger`` fixture). Before this, a USD
transfer on an EUR order and a 5,000 transfer against a seller share of 850 were both
accepted, and the reference app paid ``captured - fee`` computed by hand, which
overpays on a partial capture (the fee policy scales the fee down).
"""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import (
    Accounts,
    Ledger,
    LedgerError,
    RecordNotFoundError,
    TransferCurrencyMismatchError,
    TransferExceedsShareError,
    TransferNotAllowedError,
    fee_captured,
    seller_share,
)
from veza_ledger._rules import ReconcileSettings, check_unreversed_refund
from veza_ledger._schema import Order


def _order(
    ledger: Ledger, *, amount: int = 1000, fee: int = 150, captured: int | None = None
) -> Order:
    order = ledger.orders.create(
        buyer_id="buyer",
        seller_id="seller",
        amount=amount,
        currency="EUR",
        fee_amount=fee,
        order_id=uuid.uuid4().hex,
    )
    return ledger.orders.mark_paid(order.id, captured_amount=captured)


def _transfer(ledger: Ledger, order: Order, amount: int, *, currency: str = "EUR") -> str:
    return ledger.transfers.create(
        seller_id=order.seller_id,
        destination="acct_seller",
        amount=amount,
        currency=currency,
        order_id=order.id,
    ).id


def test_seller_share_is_the_capture_minus_the_scaled_fee(ledger: Ledger) -> None:
    full = _order(ledger)
    assert seller_share(full) == 850
    partial = _order(ledger, amount=1000, fee=150, captured=333)
    assert fee_captured(partial) == 49  # floor(150 * 333 / 1000)
    assert seller_share(partial) == 284  # not 333 - 150 = 183, nor 1000 - 150
    unpaid = ledger.orders.create(
        buyer_id="b", seller_id="seller", amount=1000, currency="EUR", fee_amount=150
    )
    assert seller_share(unpaid) == 0


def test_the_capture_journals_exactly_the_seller_share(ledger: Ledger) -> None:
    order = _order(ledger, amount=999, fee=100, captured=500)
    assert ledger.journal.balance(Accounts.seller_payable("seller"), "EUR") == -seller_share(order)


def test_a_transfer_in_another_currency_is_refused_and_writes_nothing(ledger: Ledger) -> None:
    order = _order(ledger)
    with pytest.raises(TransferCurrencyMismatchError) as caught:
        _transfer(ledger, order, 100, currency="USD")
    assert (caught.value.order_currency, caught.value.currency) == ("EUR", "USD")
    assert isinstance(caught.value, LedgerError) and caught.value.order_id == order.id
    assert ledger.transfers.of_order(order.id) == []


def test_a_transfer_beyond_the_share_is_refused(ledger: Ledger) -> None:
    order = _order(ledger)
    with pytest.raises(TransferExceedsShareError) as caught:
        _transfer(ledger, order, 5000)
    assert (caught.value.share, caught.value.transferred, caught.value.requested) == (850, 0, 5000)
    first = _transfer(ledger, order, 600)
    with pytest.raises(TransferExceedsShareError, match="600 already transferred"):
        _transfer(ledger, order, 251)
    second = _transfer(ledger, order, 250)  # exactly the rest fits
    assert {t.id: t.amount for t in ledger.transfers.of_order(order.id)} == {
        first: 600,
        second: 250,
    }


def test_a_partial_capture_caps_at_its_scaled_share(ledger: Ledger) -> None:
    """Half captured: the fee scales to 75, the seller's share is 425 (not 500 - 150)."""
    order = _order(ledger, amount=1000, fee=150, captured=500)
    with pytest.raises(TransferExceedsShareError):
        _transfer(ledger, order, 426)
    _transfer(ledger, order, 425)


def test_an_unpaid_order_carries_no_transfer(ledger: Ledger) -> None:
    order = ledger.orders.create(
        buyer_id="b", seller_id="seller", amount=1000, currency="EUR", fee_amount=150
    )
    with pytest.raises(TransferExceedsShareError) as caught:
        _transfer(ledger, order, 1)
    assert caught.value.share == 0


def test_another_sellers_transfer_and_an_unknown_order_are_refused(ledger: Ledger) -> None:
    order = _order(ledger)
    with pytest.raises(TransferNotAllowedError, match="another seller"):
        ledger.transfers.create(
            seller_id="mallory", destination="acct_m", amount=1, currency="EUR", order_id=order.id
        )
    with pytest.raises(RecordNotFoundError):
        ledger.transfers.create(
            seller_id="seller", destination="acct_s", amount=1, currency="EUR", order_id="nope"
        )
    assert ledger.transfers.of_order(order.id) == []


def test_refunds_do_not_lower_the_cap_they_are_reversed(ledger: Ledger) -> None:
    """The documented choice: the refunded seller share comes back by reversal.

    A refund before the transfer leaves the cap at the share of the capture; the
    order's transfers are then due for the refunded share (the allocation rule), so
    the seller ends with exactly the unrefunded share, never less (no double claw-back).
    """
    order = _order(ledger)
    refund = ledger.refunds.create(order.id, 500)
    ledger.refunds.succeeded(refund.id)
    transfer = _transfer(ledger, order, 850)
    assert ledger.transfers.get(transfer).reversal_due == 425  # born owing the refunded share
    with pytest.raises(TransferExceedsShareError):
        _transfer(ledger, order, 1)
    completed = ledger.transfers.completed(transfer, "tr_1")
    assert (completed.status, completed.reversal_due) == ("reversal_pending", 425)
    assert (
        check_unreversed_refund(
            completed, ledger.orders.get(order.id), ledger.now(), ReconcileSettings()
        )
        is None
    )
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 100).id)
    row = ledger.transfers.get(transfer)
    refunded_share = (
        ledger.orders.get(order.id).refunded_amount - ledger.orders.get(order.id).fee_refunded
    )
    assert row.reversal_due == refunded_share == 510


def test_concurrent_transfers_cannot_both_fit(ledger: Ledger) -> None:
    """Each fits alone, not both: the order's row lock serialises the check."""
    order = _order(ledger)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def attempt() -> None:
        barrier.wait()
        try:
            _transfer(ledger, order, 500)
            results.append("ok")
        except TransferExceedsShareError:
            results.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok", "refused"]
    assert [t.amount for t in ledger.transfers.of_order(order.id)] == [500]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amount=st.integers(1, 10**6),
    fee_ratio=st.fractions(0, 1),
    capture_ratio=st.fractions(0, 1),
    attempts=st.lists(
        st.tuples(st.integers(1, 10**6), st.sampled_from(["EUR", "EUR", "EUR", "USD"])),
        max_size=8,
    ),
    refund_before=st.integers(0, 3),
)
def test_accepted_transfers_never_exceed_the_share(
    ledger: Ledger,
    amount: int,
    fee_ratio: object,
    capture_ratio: object,
    attempts: list[tuple[int, str]],
    refund_before: int,
) -> None:
    fee = int(amount * fee_ratio)  # type: ignore[operator]
    captured = max(1, int(amount * capture_ratio))  # type: ignore[operator]
    order = _order(ledger, amount=amount, fee=fee, captured=captured)
    share = seller_share(order)
    assert share == captured - fee_captured(order) and 0 <= share <= captured
    accepted = 0
    for index, (value, currency) in enumerate(attempts):
        if index == refund_before and ledger.orders.get(order.id).refunded_amount < captured:
            ledger.refunds.succeeded(ledger.refunds.create(order.id, 1).id)
        if currency != "EUR":
            with pytest.raises(TransferCurrencyMismatchError):
                _transfer(ledger, order, value, currency=currency)
        elif accepted + value > share:
            with pytest.raises(TransferExceedsShareError) as refused:
                _transfer(ledger, order, value)
            assert (refused.value.share, refused.value.transferred) == (share, accepted)
        else:
            _transfer(ledger, order, value)
            accepted += value
        assert accepted <= share
    with ledger.engine.connect() as connection:
        stored = connection.scalar(
            sa.text(
                "SELECT COALESCE(SUM(amount + netted_amount), 0) FROM ledger_seller_transfers"
                " WHERE order_id = :o"
            ),
            {"o": order.id},
        )
    assert stored == accepted <= share
