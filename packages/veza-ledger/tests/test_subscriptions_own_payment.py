"""Issue 15, item 5: subscriptions that only their own payment activates.

On SQLite and PostgreSQL unless named ``pg_``: the trigger checks are PostgreSQL-only
behaviour (SQLite relies on the library's check, tested on both).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from hypothesis import given, strategies as st
from sqlalchemy.exc import IntegrityError

from veza_ledger import (
    ActivationRefusedError,
    EligibilityReason,
    IllegalTransitionError,
    Ledger,
    LedgerError,
    Order,
    Subscription,
    schema_drift,
)
from veza_ledger._subscription_guards import SUBSCRIPTION_GUARDS
from veza_ledger._subscriptions import order_problem

PRICES = {"creator": (990, "EUR"), "pro": (2990, "EUR")}


@pytest.fixture
def priced(engine: sa.Engine) -> Ledger:
    return Ledger(engine, plan_prices=PRICES)


def paid(ledger: Ledger, order_id: str, *, buyer: str = "u1", amount: int = 990) -> str:
    ledger.orders.create(
        order_id=order_id,
        buyer_id=buyer,
        seller_id="platform",
        amount=amount,
        currency="EUR",
        fee_amount=amount,
        psp_payment_id=f"pay_{order_id}",
    )
    ledger.orders.mark_paid(order_id)
    return order_id


# --------------------------------------------------------------------------- pending ones


@pytest.mark.parametrize("end", ["cancel", "expire"])
def test_a_pending_subscription_can_be_cancelled_and_expired(priced: Ledger, end: str) -> None:
    sub = priced.subscriptions.create(user_id="u1", plan="creator")
    getattr(priced.subscriptions, end)(sub.id)  # main: the CHECK refused what the machine allows
    assert priced.subscriptions.get(sub.id).status in ("canceled", "expired")


# --------------------------------------------------------------------------- activation


def test_another_users_order_does_not_activate(priced: Ledger) -> None:
    paid(priced, "theirs", buyer="someone-else")
    sub = priced.subscriptions.create(user_id="u1", plan="creator")
    with pytest.raises(ActivationRefusedError, match="another user") as caught:
        priced.subscriptions.activate(sub.id, order_id="theirs")
    assert isinstance(caught.value, IllegalTransitionError)
    assert priced.subscriptions.get(sub.id).status == "pending_payment"


def test_a_one_cent_order_does_not_activate_a_priced_plan(priced: Ledger) -> None:
    paid(priced, "cent", amount=1)
    sub = priced.subscriptions.create(user_id="u1", plan="creator")
    with pytest.raises(ActivationRefusedError, match="holds 1 of the plan's price 990"):
        priced.subscriptions.activate(sub.id, order_id="cent")
    paid(priced, "enough", amount=990)
    assert priced.subscriptions.activate(sub.id, order_id="enough").status == "active"


def test_one_order_activates_one_subscription(priced: Ledger) -> None:
    paid(priced, "o1")
    first = priced.subscriptions.create(user_id="u1", plan="creator", order_id="o1")
    assert first.status == "active"
    second = priced.subscriptions.create(user_id="u1", plan="creator")
    with pytest.raises(ActivationRefusedError, match=f"already activated subscription {first.id}"):
        priced.subscriptions.activate(second.id, order_id="o1")
    priced.subscriptions.cancel(first.id)  # a canceled one keeps its order: still used
    with pytest.raises(ActivationRefusedError):
        priced.subscriptions.activate(second.id, order_id="o1")


def test_the_schema_refuses_one_order_for_two_subscriptions(priced: Ledger) -> None:
    """The unique index, on both databases, whoever writes (here: raw SQL)."""
    paid(priced, "o1")
    priced.subscriptions.create(user_id="u1", plan="creator", order_id="o1")
    other = priced.subscriptions.create(user_id="u1", plan="creator")
    with pytest.raises(IntegrityError), priced.engine.begin() as c:
        c.execute(
            sa.text("UPDATE ledger_subscriptions SET payment_order_id = 'o1' WHERE id = :i"),
            {"i": other.id},
        )


def test_a_payment_for_an_unfit_order_is_booked_and_leaves_the_subscription_pending(
    priced: Ledger,
) -> None:
    priced.orders.create(
        order_id="small", buyer_id="u1", seller_id="platform", amount=5, currency="EUR"
    )
    sub = priced.subscriptions.create(user_id="u1", plan="creator", order_id="small")
    assert sub.price_amount == 990  # the plan's price, not the order's
    priced.orders.mark_paid("small")  # the payment is booked whatever the subscription's fate
    assert priced.orders.get("small").status == "paid"
    assert priced.subscriptions.get(sub.id).status == "pending_payment"
    answer = priced.subscriptions.distribution_eligibility("u1")
    assert answer.reason is EligibilityReason.PAYMENT_INCOMPLETE


# --------------------------------------------------------------------------- follows its order


def test_eligibility_follows_a_refund_at_once(priced: Ledger) -> None:
    paid(priced, "o1")
    sub = priced.subscriptions.create(user_id="u1", plan="creator", order_id="o1")
    assert priced.subscriptions.distribution_eligibility("u1").eligible
    priced.refunds.succeeded(priced.refunds.create("o1", 1).id)  # holds 989 < 990
    # no sweep ran: the refund's own transaction moved the subscription
    assert priced.subscriptions.get(sub.id).status == "past_due"
    assert (
        priced.subscriptions.distribution_eligibility("u1").reason
        is EligibilityReason.PAYMENT_INCOMPLETE
    )
    assert priced.reconciliation.findings(rule="unpaid_active_subscriptions") == []


def test_eligibility_follows_a_dispute_at_once(priced: Ledger) -> None:
    paid(priced, "o1")
    sub = priced.subscriptions.create(user_id="u1", plan="creator", order_id="o1")
    dispute = priced.disputes.open("o1", "dp_1", amount=990)
    assert priced.subscriptions.get(sub.id).status == "past_due"
    assert not priced.subscriptions.distribution_eligibility("u1").eligible
    priced.disputes.update(dispute.id, "challenged")
    assert not priced.subscriptions.distribution_eligibility("u1").eligible
    priced.disputes.update(dispute.id, "won")  # the payment stands again: re-activated
    again = priced.subscriptions.get(sub.id)
    assert (again.status, again.payment_order_id) == ("active", "o1")
    assert priced.subscriptions.distribution_eligibility("u1").eligible
    lost = priced.disputes.open("o1", "dp_2", amount=990)
    priced.disputes.update(lost.id, "lost")
    assert priced.subscriptions.get(sub.id).status == "past_due"
    assert not priced.subscriptions.distribution_eligibility("u1").eligible


def test_a_disputed_order_cannot_activate(priced: Ledger) -> None:
    paid(priced, "o1")
    priced.disputes.open("o1", "dp_1", amount=10)
    sub = priced.subscriptions.create(user_id="u1", plan="creator")
    with pytest.raises(ActivationRefusedError, match="disputed"):
        priced.subscriptions.activate(sub.id, order_id="o1")


# --------------------------------------------------------------------------- PostgreSQL trigger


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other_user", "paid by another user"),
        ("refunded", "is refunded, not paid"),
        ("too_small", "of the plan's price"),
        ("disputed", "is disputed"),
    ],
)
def test_pg_trigger_refuses_an_unfit_active_row(
    pg_only: sa.Engine, case: str, message: str
) -> None:
    """PostgreSQL only: a console UPDATE cannot activate with an unfit order."""
    ledger = Ledger(pg_only, plan_prices=PRICES)
    paid(ledger, "o1", buyer="someone-else" if case == "other_user" else "u1")
    if case == "refunded":
        ledger.refunds.succeeded(ledger.refunds.create("o1").id)
    if case == "too_small":
        ledger.refunds.succeeded(ledger.refunds.create("o1", 5).id)
    if case == "disputed":
        ledger.disputes.open("o1", "dp_1", amount=5)
    sub = ledger.subscriptions.create(user_id="u1", plan="creator")
    with pytest.raises(IntegrityError, match=message), pg_only.begin() as c:
        c.execute(
            sa.text(
                "UPDATE ledger_subscriptions SET status = 'active', payment_order_id = 'o1' "
                "WHERE id = :i"
            ),
            {"i": sub.id},
        )
    with pytest.raises(LedgerError):  # the audited override cannot either
        ledger.operator.force_transition(
            "subscription", sub.id, to_status="active", reason="r", actor="a"
        )


def test_pg_trigger_accepts_the_subscribers_own_paid_order(pg_only: sa.Engine) -> None:
    ledger = Ledger(pg_only, plan_prices=PRICES)
    paid(ledger, "o1")
    sub = ledger.subscriptions.create(user_id="u1", plan="creator")
    with pg_only.begin() as c:
        c.execute(
            sa.text(
                "UPDATE ledger_subscriptions SET status = 'active', payment_order_id = 'o1' "
                "WHERE id = :i"
            ),
            {"i": sub.id},
        )
    assert ledger.subscriptions.get(sub.id).status == "active"


# --------------------------------------------------------------------------- the rule, pure

ORDER_STATUSES = ["pending_payment", "paid", "partially_refunded", "refunded", "failed"]


@given(
    buyer=st.sampled_from(["u1", "u2"]),
    status=st.sampled_from(ORDER_STATUSES),
    currency=st.sampled_from(["EUR", "USD"]),
    captured=st.integers(0, 3000),
    refunded=st.integers(0, 3000),
    price=st.integers(0, 3000),
    disputed=st.booleans(),
    used_by=st.sampled_from([None, "s1", "s2"]),
)
def test_order_problem_property(
    buyer: str,
    status: str,
    currency: str,
    captured: int,
    refunded: int,
    price: int,
    disputed: bool,
    used_by: str | None,
) -> None:
    """An order qualifies iff every condition holds; the reason names the failing one."""
    refunded = min(refunded, captured)
    sub = Subscription(
        id="s1", user_id="u1", plan="creator", price_amount=price, price_currency="EUR"
    )
    order = Order(
        id="o1",
        buyer_id=buyer,
        status=status,
        currency=currency,
        captured_amount=captured,
        refunded_amount=refunded,
    )
    fits = (
        buyer == "u1"
        and status in ("paid", "partially_refunded")
        and currency == "EUR"
        and captured - refunded >= price
        and not disputed
        and used_by in (None, "s1")
    )
    problem = order_problem(sub, order, disputed=disputed, used_by=used_by)
    assert (problem is None) == fits
    if problem is not None:
        assert "o1" in problem


def test_two_concurrent_activations_with_one_order_leave_one_active(priced: Ledger) -> None:
    """Row lock on the order (PostgreSQL) or the single writer (SQLite), then the index."""
    paid(priced, "o1")
    subs = [priced.subscriptions.create(user_id="u1", plan="creator").id for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def activate(sid: str) -> None:
        barrier.wait()
        try:
            priced.subscriptions.activate(sid, order_id="o1")
            outcomes[sid] = "active"
        except ActivationRefusedError:
            outcomes[sid] = "refused"

    threads = [threading.Thread(target=activate, args=(sid,)) for sid in subs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["active", "refused"]
    statuses = sorted(priced.subscriptions.get(sid).status for sid in subs)
    assert statuses == ["active", "pending_payment"]


def test_db_check_names_a_dropped_activation_guard(pg_only: sa.Engine) -> None:
    """PostgreSQL: ``db check`` sees the trigger and the unique index go (drift)."""
    assert schema_drift(pg_only) == []
    try:
        with pg_only.begin() as c:
            c.execute(
                sa.text(
                    "DROP TRIGGER ledger_subscriptions_activation ON ledger_subscriptions; "
                    "DROP INDEX uq_ledger_subscriptions_payment_order_id"
                )
            )
        found = {(d.kind, d.name) for d in schema_drift(pg_only)}
        assert ("trigger", "ledger_subscriptions_activation") in found
        assert ("index", "uq_ledger_subscriptions_payment_order_id") in found
    finally:
        with pg_only.begin() as c:
            for spec in SUBSCRIPTION_GUARDS:
                for statement in spec.create:
                    c.execute(sa.text(statement))
            c.execute(
                sa.text(
                    "CREATE UNIQUE INDEX uq_ledger_subscriptions_payment_order_id ON "
                    "ledger_subscriptions (payment_order_id) WHERE payment_order_id IS NOT "
                    "NULL AND payment_order_id <> ''"
                )
            )
    assert schema_drift(pg_only) == []
