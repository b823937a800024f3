"""Finding 5: an order's refunded seller share is spread over its transfers by one rule.

Oldest transfer first, each up to its amount: the total due equals the refunded seller
share exactly, in the refund path (``reversal_due``) and in the ``unreversed_refunds``
rule alike.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import Ledger, allocate_reversals, run_sweep
from veza_ledger._rules import expected_reversal

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


@given(
    st.integers(min_value=0, max_value=10_000),
    st.lists(st.integers(min_value=1, max_value=3_000), max_size=6),
)
def test_the_allocation_sums_to_the_share_and_fits_each_transfer(
    share: int, amounts: list[int]
) -> None:
    transfers = [(f"t{i}", a) for i, a in enumerate(amounts)]
    dues = allocate_reversals(share, transfers)
    assert sum(dues.values()) == min(share, sum(amounts))
    assert all(0 <= dues[t] <= a for t, a in transfers)
    more = allocate_reversals(share + 1, transfers)
    assert all(more[t] >= dues[t] for t, _ in transfers)  # a later refund only adds


def test_two_transfers_and_a_refund_of_one_share(ledger: Ledger) -> None:
    """The reviewer's case: transfers of 400 and 400, a refund whose seller share is 400."""
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=200
    )
    ledger.orders.mark_paid(order.id)
    first = ledger.transfers.create(
        seller_id="s",
        destination="acct_s",
        amount=400,
        currency="EUR",
        order_id=order.id,
        transfer_id="t-a",
    )
    second = ledger.transfers.create(
        seller_id="s",
        destination="acct_s",
        amount=400,
        currency="EUR",
        order_id=order.id,
        transfer_id="t-b",
    )
    ledger.transfers.completed(first.id, "tr_a")
    ledger.transfers.completed(second.id, "tr_b")
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 500).id)  # seller share 400
    dues = [ledger.transfers.get(t).reversal_due for t in (first.id, second.id)]
    assert dues == [400, 0]
    ordered = [(first.id, 400), (second.id, 400)]
    o = ledger.orders.get(order.id)
    assert [expected_reversal(o, ledger.transfers.get(t), ordered) for t in ("t-a", "t-b")] == [
        400,
        0,
    ]
    report = run_sweep(ledger, None, rules=["unreversed_refunds"], now=LATER)
    assert report.problems == []  # the rule agrees with the refund path: nothing more due
    assert sum(ledger.transfers.get(t).reversal_due for t in ("t-a", "t-b")) == 400


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    splits=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=4),
    refunds=st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=4),
)
def test_dues_equal_the_refunded_seller_share_in_rules_and_refunds(
    engine: sa.Engine, splits: list[int], refunds: list[int]
) -> None:
    ledger = Ledger(engine)
    fee = 137
    seller_share = sum(splits)
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=seller_share + fee, currency="EUR", fee_amount=fee
    )
    ledger.orders.mark_paid(order.id)
    ids = []
    for amount in splits:
        t = ledger.transfers.create(
            seller_id="s", destination="acct_s", amount=amount, currency="EUR", order_id=order.id
        )
        ledger.transfers.completed(t.id, f"tr_{t.id}")
        ids.append(t.id)
    for amount in refunds:
        left = (
            ledger.orders.get(order.id).captured_amount
            - ledger.orders.get(order.id).refunded_amount
        )
        if left <= 0:
            break
        ledger.refunds.succeeded(ledger.refunds.create(order.id, min(amount, left)).id)
    o = ledger.orders.get(order.id)
    total_due = sum(ledger.transfers.get(t).reversal_due for t in ids)
    assert total_due == o.refunded_amount - o.fee_refunded
    assert run_sweep(ledger, None, rules=["unreversed_refunds"], now=LATER).problems == []
