"""Each reconciliation rule, as a pure function, on fixtures."""

from __future__ import annotations

import datetime as dt

import pytest

from veza_ledger import PaymentState, RefundState, TransferState
from veza_ledger._rules import (
    MoneyState,
    ReconcileSettings,
    check_money,
    check_refund_without_id,
    check_stuck_order,
    check_stuck_refund,
    check_transfer_without_id,
    check_unpaid_subscription,
    check_unreversed_refund,
)
from veza_ledger._schema import Order, Refund, SellerTransfer, Subscription

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
S = ReconcileSettings()


def order(age_minutes: float = 60, **kw: object) -> Order:
    base: dict[str, object] = {
        "id": "o1",
        "status": "pending_payment",
        "amount": 1000,
        "currency": "EUR",
        "fee_amount": 100,
        "captured_amount": 0,
        "refunded_amount": 0,
        "fee_refunded": 0,
        "psp_payment_id": "p1",
        "updated_at": NOW - dt.timedelta(minutes=age_minutes),
    }
    return Order(**{**base, **kw})


def pay(status: str, received: int | None = None) -> PaymentState:
    return PaymentState("p1", status, 1000, received, "EUR")


@pytest.mark.parametrize(
    ("state", "severity", "action"),
    [
        (pay("succeeded", 1000), "warning", "mark_paid"),
        (pay("failed"), "warning", "mark_failed"),
        (pay("cancelled"), "warning", "cancel_order"),
        (pay("expired"), "warning", "expire_order"),
        (pay("processing"), "info", None),
        (pay("requires_customer_action"), "info", None),
        (pay("conflicted"), "critical", None),
        (None, "info", None),
    ],
)
def test_stuck_orders(state: PaymentState | None, severity: str, action: str | None) -> None:
    problem = check_stuck_order(order(), state, NOW, S)
    assert problem is not None
    assert (problem.severity, problem.action) == (severity, action)
    if action == "mark_paid":
        assert problem.params == {"captured_amount": 1000}


def test_stuck_order_bands() -> None:
    assert check_stuck_order(order(age_minutes=10), pay("succeeded"), NOW, S) is None  # too young
    assert check_stuck_order(order(status="paid"), pay("succeeded"), NOW, S) is None
    stale = check_stuck_order(order(age_minutes=25 * 60), pay("processing"), NOW, S)
    assert stale is not None and stale.severity == "critical"
    gone = check_stuck_order(order(age_minutes=25 * 60), None, NOW, S)
    assert gone is not None and gone.action == "expire_order"


def refund(age_minutes: float = 60, **kw: object) -> Refund:
    base: dict[str, object] = {
        "id": "r1",
        "order_id": "o1",
        "amount": 300,
        "currency": "EUR",
        "status": "pending",
        "hyperswitch_refund_id": "hr1",
        "updated_at": NOW - dt.timedelta(minutes=age_minutes),
    }
    return Refund(**{**base, **kw})


@pytest.mark.parametrize(
    ("status", "action", "severity"),
    [
        ("succeeded", "refund_succeeded", "warning"),
        ("failed", "refund_failed", "warning"),
        ("pending", None, "info"),
        ("review", None, "info"),
    ],
)
def test_stuck_refunds(status: str, action: str | None, severity: str) -> None:
    problem = check_stuck_refund(refund(), RefundState("hr1", status, 300), NOW, S)
    assert problem is not None and (problem.action, problem.severity) == (action, severity)


def test_stuck_refund_bands() -> None:
    assert (
        check_stuck_refund(refund(age_minutes=5), RefundState("hr1", "succeeded", 300), NOW, S)
        is None
    )
    old = check_stuck_refund(
        refund(age_minutes=4 * 24 * 60), RefundState("hr1", "pending", 300), NOW, S
    )
    assert old is not None and old.severity == "critical"
    missing = check_stuck_refund(refund(), None, NOW, S)
    assert missing is not None and missing.action is None


def test_refund_without_provider_id() -> None:
    bare = refund(hyperswitch_refund_id=None)
    found = check_refund_without_id(bare, RefundState("r_derived", "pending", 300), NOW, S)
    assert found is not None and found.action == "set_refund_provider_id"
    assert found.params == {"provider_id": "r_derived"}
    other = check_refund_without_id(bare, RefundState("r_derived", "pending", 301), NOW, S)
    assert other is not None and other.severity == "critical" and other.action is None
    none = check_refund_without_id(bare, None, NOW, S)
    assert none is not None and none.action is None
    assert check_refund_without_id(refund(), None, NOW, S) is None  # has its id
    assert (
        check_refund_without_id(refund(age_minutes=1, hyperswitch_refund_id=""), None, NOW, S)
        is None
    )


def transfer(**kw: object) -> SellerTransfer:
    base: dict[str, object] = {
        "id": "t1",
        "order_id": "o1",
        "amount": 900,
        "currency": "EUR",
        "status": "completed",
        "stripe_transfer_id": None,
        "destination": "acct_1",
        "reversal_due": 0,
        "reversed_amount": 0,
    }
    return SellerTransfer(**{**base, **kw})


def test_transfer_without_stripe_id() -> None:
    found = check_transfer_without_id(transfer(), TransferState("tr_1", 900), NOW, S)
    assert found is not None and found.params == {"stripe_transfer_id": "tr_1"}
    assert check_transfer_without_id(transfer(), TransferState("tr_1", 899), NOW, S).action is None  # type: ignore[union-attr]
    assert check_transfer_without_id(transfer(), None, NOW, S).severity == "critical"  # type: ignore[union-attr]
    assert check_transfer_without_id(transfer(stripe_transfer_id="tr_0"), None, NOW, S) is None


def test_unreversed_refunds_move_the_proportional_amount() -> None:
    refunded = order(
        status="partially_refunded", captured_amount=1000, refunded_amount=500, fee_refunded=50
    )
    problem = check_unreversed_refund(transfer(), refunded, NOW, S)
    assert problem is not None and problem.params == {"reversal_due": 450}
    assert check_unreversed_refund(transfer(reversal_due=450), refunded, NOW, S) is None
    assert check_unreversed_refund(transfer(status="pending"), refunded, NOW, S) is None


def test_unpaid_active_subscriptions() -> None:
    sub = Subscription(id="s1", user_id="u", plan="creator", status="active", payment_order_id="o1")
    assert check_unpaid_subscription(sub, order(status="paid"), NOW, S) is None
    refunded = check_unpaid_subscription(sub, order(status="refunded"), NOW, S)
    assert refunded is not None and refunded.action == "mark_past_due"
    assert check_unpaid_subscription(sub, None, NOW, S) is not None


def test_money_mismatch() -> None:
    paid = order(status="paid", captured_amount=1000)
    assert check_money(paid, MoneyState(pay("succeeded", 1000), 0), NOW, S) is None
    for state in (
        MoneyState(pay("succeeded", 900), 0),
        MoneyState(pay("conflicted", 1000), 0),
        MoneyState(None, 0),
        MoneyState(pay("succeeded", 1000), 10),
        MoneyState(PaymentState("p1", "succeeded", 1000, 1000, "USD"), 0),
    ):
        problem = check_money(paid, state, NOW, S)
        assert problem is not None and problem.severity == "critical" and problem.action is None
