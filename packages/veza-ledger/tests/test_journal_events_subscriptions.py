"""The journal's rules, provider events (dedupe, staleness), subscriptions and overrides."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from veza_ledger import (
    EligibilityReason,
    EventOutcome,
    JournalConflictError,
    Ledger,
    LedgerConfigurationError,
    LedgerError,
    ProviderEvent,
    RecordNotFoundError,
    UnbalancedTransactionError,
    credit,
    debit,
    event_from_hyperswitch,
)
from veza_ledger._journal import _normalise

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def ev(
    event_id: str, event_type: str, object_id: str, minutes: int = 0, amount: int | None = None
) -> ProviderEvent:
    return ProviderEvent(
        event_id, event_type, object_id, T0 + dt.timedelta(minutes=minutes), amount
    )


# --------------------------------------------------------------------------- journal


def test_corrections_are_idempotent_by_id(ledger: Ledger) -> None:
    legs = [debit("cash", "EUR", 500), credit("equity", "EUR", 500)]
    assert ledger.journal.post_correction("c-1", legs, description="opening balance")
    assert not ledger.journal.post_correction("c-1", legs, description="opening balance")
    with pytest.raises(JournalConflictError):
        ledger.journal.post_correction(
            "c-1", [debit("cash", "EUR", 501), credit("equity", "EUR", 501)], description="typo"
        )
    assert ledger.journal.balance("cash", "EUR") == 500 and ledger.journal.trial_balance() == {
        "EUR": 0
    }


@pytest.mark.parametrize(
    "legs",
    [
        [debit("a", "EUR", 5), credit("b", "EUR", 4)],
        [debit("a", "EUR", 5), credit("b", "USD", 5)],  # balanced overall, not per currency
        [],
        [debit("a", "EUR", 5), credit("a", "EUR", 5)],  # nets to nothing
        [debit("a", "EUR", 5.0), credit("b", "EUR", 5.0)],  # type: ignore[arg-type]
    ],
)
def test_unbalanced_transactions_are_refused(ledger: Ledger, legs: list[object]) -> None:
    with pytest.raises(UnbalancedTransactionError):
        ledger.journal.post_correction("bad", legs, description="x")  # type: ignore[arg-type]
    assert ledger.journal.trial_balance() == {}


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcde"),
            st.sampled_from(["EUR", "JPY"]),
            st.integers(-(10**12), 10**12),
        ),
        max_size=12,
    )
)
def test_normalised_legs_balance_or_are_refused(raw: list[tuple[str, str, int]]) -> None:
    legs = [debit(a, c, v) if v >= 0 else credit(a, c, -v) for a, c, v in raw]
    sums: dict[str, int] = {}
    for _, c, v in raw:
        sums[c] = sums.get(c, 0) + v
    if any(sums.values()):
        with pytest.raises(UnbalancedTransactionError):
            _normalise(legs)
    else:
        out = _normalise(legs)
        assert all(leg.amount != 0 for leg in out)
        assert sum(leg.amount for leg in out) == 0


# --------------------------------------------------------------------------- events


def test_events_apply_once_and_duplicates_change_nothing(ledger: Ledger) -> None:
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=900, currency="EUR", psp_payment_id="pay_1"
    )
    assert (
        ledger.events.apply(ev("e1", "payment_succeeded", "pay_1", amount=900))
        == EventOutcome.APPLIED
    )
    before = ledger.journal.balances()
    assert (
        ledger.events.apply(ev("e1", "payment_succeeded", "pay_1", amount=900))
        == EventOutcome.DUPLICATE
    )
    assert ledger.events.apply(ev("e2", "payment_succeeded", "pay_1", 1)) == EventOutcome.NO_CHANGE
    assert ledger.journal.balances() == before
    assert ledger.orders.get(order.id).status == "paid"
    assert ledger.events.processed("e1").outcome == "applied"  # type: ignore[union-attr]


def test_an_older_event_never_regresses_a_newer_state(ledger: Ledger) -> None:
    ledger.orders.create(
        buyer_id="b", seller_id="s", amount=900, currency="EUR", psp_payment_id="pay_2"
    )
    assert (
        ledger.events.apply(ev("new", "payment_succeeded", "pay_2", minutes=10))
        == EventOutcome.APPLIED
    )
    before = ledger.journal.balances()
    assert (
        ledger.events.apply(ev("old", "payment_failed", "pay_2", minutes=5)) == EventOutcome.STALE
    )
    assert ledger.orders.by_payment_id("pay_2").status == "paid"
    assert ledger.journal.balances() == before
    # (An older *capture* after a failure is never stale: money was captured. See
    # test_late_captures.py.)


def test_unknown_objects_are_not_recorded_so_the_provider_retries(ledger: Ledger) -> None:
    with pytest.raises(RecordNotFoundError):
        ledger.events.apply(ev("e9", "payment_succeeded", "pay_unknown"))
    assert ledger.events.processed("e9") is None
    ledger.orders.create(
        buyer_id="b", seller_id="s", amount=5, currency="EUR", psp_payment_id="pay_unknown"
    )
    assert ledger.events.apply(ev("e9", "payment_succeeded", "pay_unknown")) == EventOutcome.APPLIED


def test_refund_events_and_partial_capture_amounts(ledger: Ledger) -> None:
    order = ledger.orders.create(
        buyer_id="b",
        seller_id="s",
        amount=1000,
        currency="EUR",
        fee_amount=100,
        psp_payment_id="pay_3",
    )
    ledger.events.apply(ev("p", "payment_succeeded", "pay_3", amount=800))
    assert ledger.orders.get(order.id).captured_amount == 800
    refund = ledger.refunds.create(order.id, 200)
    ledger.refunds.set_provider_id(refund.id, "ref_3")
    assert ledger.events.apply(ev("r", "refund_succeeded", "ref_3", 1)) == EventOutcome.APPLIED
    assert ledger.events.apply(ev("r2", "refund_failed", "ref_3", 2)) == EventOutcome.NO_CHANGE
    opened = attrs.evolve(ev("d", "dispute_opened", "dp_3", 3, 300), payment_id="pay_3")
    assert ledger.events.apply(opened) == EventOutcome.APPLIED  # journaled, no longer ignored
    assert ledger.journal.balance("psp_disputed", "EUR") == 300
    assert ledger.refunds.get(refund.id).status == "succeeded"
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_reading_a_hyperswitch_webhook_body() -> None:
    body = {
        "event_id": "evt_1",
        "event_type": "refund_succeeded",
        "timestamp": "2026-11-26T12:00:00Z",
        "content": {"type": "refund_details", "object": {"refund_id": "r_1", "payment_id": "p_1"}},
    }
    event = event_from_hyperswitch(body)
    assert event is not None and (event.object_id, event.occurred_at) == ("r_1", T0)
    pay = {
        **body,
        "event_type": "payment_succeeded",
        "content": {"object": {"payment_id": "p_1", "amount_received": 500}},
    }
    assert event_from_hyperswitch(pay).amount == 500  # type: ignore[union-attr]
    assert event_from_hyperswitch({"event_type": "x"}) is None


# --------------------------------------------------------------------------- subscriptions


def test_a_subscription_is_never_created_active_and_only_payment_activates(ledger: Ledger) -> None:
    order = ledger.orders.create(
        buyer_id="u1",
        seller_id="platform",
        amount=990,
        currency="EUR",
        fee_amount=990,
        psp_payment_id="pay_sub",
    )
    sub = ledger.subscriptions.create(user_id="u1", plan="creator", order_id=order.id)
    assert sub.status == "pending_payment"
    eligibility = ledger.subscriptions.distribution_eligibility("u1")
    assert eligibility.reason is EligibilityReason.PAYMENT_INCOMPLETE
    assert "complete payment" in eligibility.message and "requires" not in eligibility.message
    with pytest.raises(LedgerError):  # even an admin override cannot activate it unpaid
        ledger.operator.force_transition(
            "subscription", sub.id, to_status="active", reason="customer asked", actor="ops"
        )
    ledger.events.apply(ev("sub-paid", "payment_succeeded", "pay_sub"))
    active = ledger.subscriptions.get(sub.id)
    assert (active.status, active.payment_order_id) == ("active", order.id)
    assert ledger.subscriptions.distribution_eligibility("u1").eligible


def test_eligibility_reasons(ledger: Ledger) -> None:
    assert (
        ledger.subscriptions.distribution_eligibility("nobody").reason is EligibilityReason.NO_PLAN
    )
    order = ledger.orders.create(buyer_id="u2", seller_id="platform", amount=5, currency="EUR")
    ledger.orders.mark_paid(order.id)
    ledger.subscriptions.create(user_id="u2", plan="free", order_id=order.id)
    low = ledger.subscriptions.distribution_eligibility("u2")
    assert low.reason is EligibilityReason.PLAN_TOO_LOW and "upgrade to creator" in low.message
    assert ledger.subscriptions.distribution_eligibility("u2", required_plan="free").eligible
    with pytest.raises(LedgerConfigurationError):
        ledger.subscriptions.create(user_id="u2", plan="platinum")


def test_past_due_renewal_reactivates_only_with_payment(ledger: Ledger) -> None:
    first = ledger.orders.create(buyer_id="u3", seller_id="platform", amount=5, currency="EUR")
    ledger.orders.mark_paid(first.id)
    sub = ledger.subscriptions.create(user_id="u3", plan="pro", order_id=first.id)
    assert sub.status == "active"
    renewal = ledger.orders.create(buyer_id="u3", seller_id="platform", amount=5, currency="EUR")
    ledger.subscriptions.mark_past_due(sub.id, renewal_order_id=renewal.id)
    assert (
        ledger.subscriptions.distribution_eligibility("u3").reason
        is EligibilityReason.PAYMENT_INCOMPLETE
    )
    ledger.orders.mark_paid(renewal.id)
    again = ledger.subscriptions.get(sub.id)
    assert (again.status, again.payment_order_id) == ("active", renewal.id)


# --------------------------------------------------------------------------- overrides


def test_force_transition_writes_an_audit_row(ledger: Ledger) -> None:
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=5, currency="EUR")
    override = ledger.operator.force_transition(
        "order", order.id, to_status="expired", reason="stuck 30 days", actor="alice"
    )
    assert (override.from_status, override.to_status, override.actor) == (
        "pending_payment",
        "expired",
        "alice",
    )
    assert ledger.orders.get(order.id).status == "expired"
    assert [o.reason for o in ledger.operator.overrides(order.id)] == ["stuck 30 days"]
    for bad in ({"reason": ""}, {"actor": " "}):
        with pytest.raises(LedgerConfigurationError):
            ledger.operator.force_transition(
                "order", order.id, to_status="failed", **{"reason": "r", "actor": "a", **bad}
            )
    with pytest.raises(LedgerConfigurationError):
        ledger.operator.force_transition(
            "order", order.id, to_status="teleported", reason="r", actor="a"
        )
    with pytest.raises(LedgerConfigurationError):
        ledger.operator.force_transition(
            "invoice", order.id, to_status="paid", reason="r", actor="a"
        )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sampled_from(["payment_succeeded", "payment_failed", "payment_cancelled"]),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_any_order_of_payment_events_ends_in_one_legal_state(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str], rnd: object
) -> None:
    from veza_ledger import create_engine, upgrade

    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('ev') / 'l.db'}")
    upgrade(engine)
    ledger = Ledger(engine)
    ledger.orders.create(buyer_id="b", seller_id="s", amount=10, currency="EUR", psp_payment_id="p")
    events = [ev(f"e{i}", kind, "p", minutes=i) for i, kind in enumerate(kinds)]
    rnd.shuffle(events)  # type: ignore[attr-defined]
    for event in events + events:  # delivered in any order, each twice
        ledger.events.apply(event)
    final = ledger.orders.by_payment_id("p").status
    assert final in {"paid", "failed", "cancelled"}
    assert ledger.journal.trial_balance() in ({}, {"EUR": 0})
    engine.dispose()
