"""Issue 15: late captures booked and flagged, provider amounts verified, legacy backfill.

Every test runs on SQLite and on PostgreSQL (the ``ledger`` fixture).
"""

from __future__ import annotations

import collections
import datetime as dt
import uuid
from typing import Protocol

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import (
    Accounts,
    AmountMismatchError,
    EventOutcome,
    IllegalTransitionError,
    Ledger,
    LedgerConfigurationError,
    PaymentState,
    ProviderEvent,
    ReconcileSettings,
    RefundState,
    TransferState,
    bookable_capture,
    capture_amount_problem,
    event_from_hyperswitch,
    run_sweep,
)
from veza_ledger._schema import Refund


class Clock(Protocol):
    """The ``clock`` fixture (conftest): settable time for the ledger."""

    now: dt.datetime

    def advance(self, **delta: float) -> dt.datetime: ...


T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def ev(
    event_id: str, event_type: str, object_id: str, minutes: int = 0, amount: int | None = None
) -> ProviderEvent:
    return ProviderEvent(
        event_id, event_type, object_id, T0 + dt.timedelta(minutes=minutes), amount
    )


class View:
    """An in-memory provider view that can also find legacy transfers by order id."""

    def __init__(self) -> None:
        self.payments: dict[str, PaymentState] = {}
        self.refunds: dict[str, RefundState] = {}
        self.transfers: dict[str, TransferState] = {}
        self.legacy: dict[str, TransferState] = {}
        self.calls: collections.Counter[str] = collections.Counter()

    def payment(self, psp_payment_id: str) -> PaymentState | None:
        self.calls[psp_payment_id] += 1
        return self.payments.get(psp_payment_id)

    def payment_for_order(self, order_id: str) -> PaymentState | None:
        return self.payment(f"p_{order_id}")

    def refund(self, provider_refund_id: str) -> RefundState | None:
        return self.refunds.get(provider_refund_id)

    def refund_for_row(self, refund_row_id: str) -> RefundState | None:
        return self.refund(f"r_{refund_row_id}")

    def find_transfer(
        self, transfer_row_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        return self.transfers.get(transfer_row_id)

    def find_transfer_by_order(
        self, order_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        return self.legacy.get(order_id)


def _order(ledger: Ledger, oid: str, amount: int = 1000, fee: int = 100) -> None:
    ledger.orders.create(
        order_id=oid,
        buyer_id="b",
        seller_id="s",
        amount=amount,
        currency="EUR",
        fee_amount=fee,
        psp_payment_id=f"p_{oid}",
    )


def _open(ledger: Ledger, rule: str, object_id: str) -> list[dict[str, object]]:
    return [
        f.as_dict()
        for f in ledger.reconciliation.findings(status="open", rule=rule)
        if f.object_id == object_id
    ]


# ------------------------------------------------------------------ late captures: events


@pytest.mark.parametrize("closed", ["failed", "cancelled", "expired"])
def test_a_capture_on_a_closed_order_is_booked_and_flagged(ledger: Ledger, closed: str) -> None:
    _order(ledger, "o1")
    event = {"failed": "payment_failed", "cancelled": "payment_cancelled"}
    if closed == "expired":
        ledger.orders.expire("o1")  # the sweep's own expiry
    else:
        assert ledger.events.apply(ev("e1", event[closed], "p_o1", 10)) == EventOutcome.APPLIED
    # Hyperswitch retried the failed payment; the success may even carry an older time
    outcome = ledger.events.apply(ev("e2", "payment_succeeded", "p_o1", 5, amount=1000))
    assert outcome == EventOutcome.APPLIED
    order = ledger.orders.get("o1")
    assert (order.status, order.captured_amount) == ("paid", 1000)
    assert order.late_capture_from == closed
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 1000
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == -900
    [finding] = _open(ledger, "late_captures", "o1")
    assert finding["evidence"]["order_status"] == closed  # type: ignore[index]
    assert finding["evidence"]["psp_received"] == 1000  # type: ignore[index]
    assert [o.id for o in ledger.captures.late()] == ["o1"]


def test_mark_paid_still_refuses_a_closed_order(ledger: Ledger) -> None:
    _order(ledger, "o1")
    ledger.orders.mark_failed("o1")
    with pytest.raises(IllegalTransitionError):
        ledger.orders.mark_paid("o1")
    assert ledger.journal.trial_balance() == {}


def test_a_capture_of_zero_books_nothing_and_is_flagged(ledger: Ledger) -> None:
    _order(ledger, "pending")
    _order(ledger, "closed")
    ledger.orders.mark_failed("closed")
    assert (
        ledger.events.apply(ev("e1", "payment_succeeded", "p_pending", amount=0))
        == EventOutcome.FLAGGED
    )
    assert (
        ledger.events.apply(ev("e2", "payment_succeeded", "p_closed", amount=0))
        == EventOutcome.FLAGGED
    )
    assert ledger.orders.get("pending").status == "pending_payment"
    assert ledger.orders.get("closed").status == "failed"
    assert ledger.journal.balances() == {}
    assert _open(ledger, "stuck_orders", "pending")
    assert _open(ledger, "late_captures", "closed")


def test_more_than_the_order_is_booked_up_to_the_order_and_flagged(ledger: Ledger) -> None:
    _order(ledger, "o1")
    assert (
        ledger.events.apply(ev("e1", "payment_succeeded", "p_o1", amount=1500))
        == EventOutcome.FLAGGED
    )
    assert ledger.orders.get("o1").captured_amount == 1000
    [finding] = _open(ledger, "money_mismatch", "o1")
    evidence = finding["evidence"]
    assert (evidence["psp_received"], evidence["booked"]) == (1500, 1000)  # type: ignore[index]


def test_a_paid_order_told_another_amount_is_flagged(ledger: Ledger) -> None:
    _order(ledger, "o1")
    assert ledger.events.apply(ev("e1", "payment_succeeded", "p_o1", amount=600)) == (
        EventOutcome.APPLIED
    )
    assert ledger.events.apply(ev("e2", "payment_succeeded", "p_o1", 1, amount=600)) == (
        EventOutcome.NO_CHANGE
    )
    assert ledger.events.apply(ev("e3", "payment_captured", "p_o1", 2, amount=900)) == (
        EventOutcome.FLAGGED
    )
    [finding] = _open(ledger, "money_mismatch", "o1")
    assert finding["evidence"]["ledger_captured"] == 600  # type: ignore[index]
    assert finding["evidence"]["psp_received"] == 900  # type: ignore[index]


# ------------------------------------------------------------------ late captures: the sweep


def test_the_sweep_books_a_capture_on_an_order_it_expired(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _order(ledger, "o1")
    clock.advance(days=2)
    run_sweep(ledger, view, rules=["stuck_orders"], now=clock.now)  # no payment: expired
    assert ledger.orders.get("o1").status == "expired"
    # the buyer completes the payment afterwards; no webhook reaches us
    view.payments["p_o1"] = PaymentState("p_o1", "succeeded", 1000, 1000, "EUR")
    clock.advance(hours=1)
    report = run_sweep(ledger, view, rules=["late_captures"], now=clock.now)
    assert report.applied == 1
    order = ledger.orders.get("o1")
    assert (order.status, order.late_capture_from, order.captured_amount) == (
        "paid",
        "expired",
        1000,
    )
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 1000
    [finding] = _open(ledger, "late_captures", "o1")  # booked, still open: a human decides
    assert finding["evidence"]["psp_status"] == "succeeded"  # type: ignore[index]
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["late_captures"], now=clock.now)
    assert _open(ledger, "late_captures", "o1")
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 1000  # booked once
    assert ledger.captures.decide("o1", "fulfil", actor="ops", reason="in stock") is None
    assert not _open(ledger, "late_captures", "o1")
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["late_captures"], now=clock.now)
    assert not _open(ledger, "late_captures", "o1")
    assert ledger.operator.overrides("o1")[0].reason.startswith("late capture: fulfil")


def test_refusing_a_late_capture_creates_its_refund(ledger: Ledger) -> None:
    _order(ledger, "o1")
    ledger.orders.mark_failed("o1")
    ledger.events.apply(ev("e1", "payment_succeeded", "p_o1", amount=700))
    with pytest.raises(LedgerConfigurationError):
        ledger.captures.decide("o1", "keep", actor="ops", reason="x")
    refund = ledger.captures.decide("o1", "refund", actor="ops", reason="sold out")
    assert refund is not None
    assert (refund.amount, refund.status) == (700, "pending")
    with pytest.raises(LedgerConfigurationError):  # decided once
        ledger.captures.decide("o1", "fulfil", actor="ops", reason="x")


def test_a_closed_order_without_money_at_the_psp_is_healthy(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _order(ledger, "o1")
    ledger.orders.mark_failed("o1")
    view.payments["p_o1"] = PaymentState("p_o1", "failed", 1000, 0, "EUR")
    clock.advance(hours=1)
    report = run_sweep(ledger, view, rules=["late_captures"], now=clock.now)
    assert report.examined["late_captures"] == 1
    assert report.problem_count == 0
    assert ledger.orders.get("o1").status == "failed"


# ------------------------------------------------------------------ amounts: refunds


def _paid_with_pending_refund(ledger: Ledger, amount: int) -> str:
    _order(ledger, "o1")
    ledger.orders.mark_paid("o1")
    refund = ledger.refunds.create("o1", amount, refund_id="rf1")
    ledger.refunds.set_provider_id(refund.id, "hr_1")
    return refund.id


def test_stuck_refunds_books_what_the_psp_refunded(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _paid_with_pending_refund(ledger, 500)
    view.refunds["hr_1"] = RefundState("hr_1", "succeeded", 300)
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["stuck_refunds"], now=clock.now)
    refund = ledger.refunds.get("rf1")
    assert (refund.status, refund.amount, refund.requested_amount) == ("succeeded", 300, 500)
    assert ledger.orders.get("o1").refunded_amount == 300
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 700
    [finding] = _open(ledger, "stuck_refunds", "rf1")
    evidence = finding["evidence"]
    assert (evidence["requested"], evidence["psp_refunded"]) == (500, 300)  # type: ignore[index]
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["stuck_refunds"], now=clock.now)
    assert _open(ledger, "stuck_refunds", "rf1")  # stays until acknowledged


def test_a_psp_refund_that_does_not_fit_is_booked_nowhere(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _paid_with_pending_refund(ledger, 500)
    view.refunds["hr_1"] = RefundState("hr_1", "succeeded", 1200)
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["stuck_refunds"], now=clock.now)
    assert ledger.refunds.get("rf1").status == "pending"
    assert ledger.orders.get("o1").refunded_amount == 0
    assert _open(ledger, "stuck_refunds", "rf1")


def test_a_refund_webhook_with_another_amount_books_the_psp_amount(ledger: Ledger) -> None:
    _paid_with_pending_refund(ledger, 500)
    assert ledger.events.apply(ev("e1", "refund_succeeded", "hr_1", amount=450)) == (
        EventOutcome.APPLIED
    )
    assert ledger.refunds.get("rf1").amount == 450
    assert ledger.orders.get("o1").refunded_amount == 450
    assert _open(ledger, "stuck_refunds", "rf1")


def test_the_refund_amount_is_checked_before_any_write(ledger: Ledger) -> None:
    _paid_with_pending_refund(ledger, 500)
    with ledger.transaction() as session:
        from veza_ledger._schema import Order, Refund

        refund = session.get(Refund, "rf1")
        order = session.get(Order, "o1")
        assert refund is not None and order is not None
        with pytest.raises(AmountMismatchError) as caught:
            ledger.refunds._take_provider_refund_amount(session, order, refund, 0)
    assert (caught.value.ledger_amount, caught.value.provider_amount) == (500, 0)


# ------------------------------------------------------------------ amounts: money_mismatch


def test_money_mismatch_sees_a_payment_failed_at_the_psp(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _order(ledger, "o1")
    ledger.orders.mark_paid("o1")
    # a failed payment states no amount received: only its status tells
    view.payments["p_o1"] = PaymentState("p_o1", "failed", 1000, None, "EUR")
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now)
    [finding] = _open(ledger, "money_mismatch", "o1")
    assert finding["evidence"]["psp_status"] == "failed"  # type: ignore[index]
    assert finding["evidence"]["captured"] == 1000  # type: ignore[index]


def test_money_mismatch_sees_a_refund_made_in_the_dashboard(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _paid_with_pending_refund(ledger, 200)
    ledger.refunds.succeeded("rf1")
    mine = RefundState("hr_1", "succeeded", 200)
    view.payments["p_o1"] = PaymentState("p_o1", "succeeded", 1000, 1000, "EUR", (mine,))
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now)
    assert not _open(ledger, "money_mismatch", "o1")
    dashboard = RefundState("hr_dash", "succeeded", 300)
    view.payments["p_o1"] = PaymentState("p_o1", "succeeded", 1000, 1000, "EUR", (mine, dashboard))
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now)
    [finding] = _open(ledger, "money_mismatch", "o1")
    unknown = finding["evidence"]["psp_refunds_unknown_here"]  # type: ignore[index]
    assert unknown == [{"refund_id": "hr_dash", "status": "succeeded", "amount": 300}]


def test_money_mismatch_checks_old_orders_at_a_slower_cadence(ledger: Ledger, clock: Clock) -> None:
    view = View()
    for oid in ("old1", "old2", "old3"):
        _order(ledger, oid)
        ledger.orders.mark_paid(oid)
        view.payments[f"p_{oid}"] = PaymentState(f"p_{oid}", "succeeded", 1000, 900, "EUR")
    clock.advance(days=10)  # far past amount_lookback (2 days)
    settings = ReconcileSettings(old_order_recheck=dt.timedelta(days=1))
    run_sweep(
        ledger, view, rules=["money_mismatch"], now=clock.now, settings=settings, batch_size=2
    )
    assert (
        len(ledger.reconciliation.findings(status="open", rule="money_mismatch")) == 3
    )  # every age
    assert all(view.calls[f"p_{o}"] >= 1 for o in ("old1", "old2", "old3"))
    before = dict(view.calls)
    clock.advance(hours=1)  # past recheck_after, within old_order_recheck
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now, settings=settings)
    # only the second pass over open findings polls again; the claim skipped them
    assert all(view.calls[f"p_{o}"] - before[f"p_{o}"] <= 1 for o in ("old1", "old2", "old3"))
    view.payments = {k: PaymentState(k, "succeeded", 1000, 1000, "EUR") for k in view.payments}
    clock.advance(days=1, minutes=1)
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now, settings=settings)
    assert ledger.reconciliation.findings(status="open", rule="money_mismatch") == []


def test_recent_orders_only_are_not_polled_beyond_cadence(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _order(ledger, "old")
    ledger.orders.mark_paid("old")
    view.payments["p_old"] = PaymentState("p_old", "succeeded", 1000, 1000, "EUR")
    clock.advance(days=10)
    settings = ReconcileSettings(old_order_recheck=dt.timedelta(days=1))
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now, settings=settings)
    assert view.calls["p_old"] == 1
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now, settings=settings)
    assert view.calls["p_old"] == 1  # healthy and old: once a day, not every 5 minutes
    clock.advance(days=1)
    run_sweep(ledger, view, rules=["money_mismatch"], now=clock.now, settings=settings)
    assert view.calls["p_old"] == 2


# ------------------------------------------------------------------ legacy backfill


def _legacy_transfer(ledger: Ledger) -> None:
    _order(ledger, "o1")
    ledger.orders.mark_paid("o1")
    ledger.transfers.create(
        seller_id="s",
        destination="acct_s",
        amount=900,
        currency="EUR",
        order_id="o1",
        transfer_id="legacy-row",
    )
    with ledger.engine.begin() as c:  # imported from the original platform: no Stripe id
        import sqlalchemy as sa

        c.execute(
            sa.text("UPDATE ledger_seller_transfers SET status = 'completed' WHERE id = :i"),
            {"i": "legacy-row"},
        )


def test_legacy_transfers_are_found_by_their_order_id(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _legacy_transfer(ledger)
    view.legacy["o1"] = TransferState("tr_legacy", 900, 0, "acct_s", {"order_id": "o1"})
    clock.advance(hours=1)
    report = run_sweep(ledger, view, rules=["transfers_without_stripe_id"], now=clock.now)
    assert report.applied == 1
    assert ledger.transfers.get("legacy-row").stripe_transfer_id == "tr_legacy"
    [finding] = ledger.reconciliation.findings(rule="transfers_without_stripe_id")
    assert finding.evidence["matched_by"] == "order_id"


def test_a_refunded_legacy_row_keeps_its_finding_until_backfilled(
    ledger: Ledger, clock: Clock
) -> None:
    view = View()
    _legacy_transfer(ledger)
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["transfers_without_stripe_id"], now=clock.now)
    assert _open(ledger, "transfers_without_stripe_id", "legacy-row")
    refund = ledger.refunds.create("o1", 1000)
    ledger.refunds.succeeded(refund.id)
    assert ledger.transfers.get("legacy-row").status == "reversal_pending"
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["transfers_without_stripe_id"], now=clock.now)
    assert _open(ledger, "transfers_without_stripe_id", "legacy-row")  # no auto-resolve
    view.legacy["o1"] = TransferState("tr_legacy", 900, 0, "acct_s", {"order_id": "o1"})
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["transfers_without_stripe_id"], now=clock.now)
    row = ledger.transfers.get("legacy-row")
    assert (row.status, row.stripe_transfer_id, row.reversal_due) == (
        "reversal_pending",
        "tr_legacy",
        900,
    )  # the reversal worker now claws it back as any transfer
    assert not _open(ledger, "transfers_without_stripe_id", "legacy-row")


# ------------------------------------------------------------------ money rules: properties


@given(order_amount=st.integers(1, 10**12), received=st.none() | st.integers(-(10**3), 10**13))
def test_capture_amounts_are_never_clipped_silently(
    order_amount: int, received: int | None
) -> None:
    problem = capture_amount_problem(order_amount, received)
    booked = bookable_capture(order_amount, received)
    if received is None:
        assert problem is None and booked is None
        return
    assert booked is not None and booked <= order_amount
    # clipped (booked != received) or nothing capturable => there is a problem to report
    assert (problem is None) == (0 < received <= order_amount)
    if problem is None:
        assert booked == received


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    captured=st.integers(1, 10_000),
    asked_pct=st.integers(1, 100),
    other_pct=st.integers(0, 100),
    psp=st.integers(-5, 12_000),
)
def test_a_refund_books_the_psp_amount_exactly_when_it_fits(
    ledger: Ledger, captured: int, asked_pct: int, other_pct: int, psp: int
) -> None:
    """Property: what the PSP refunded is booked iff 0 < it <= what is left; never clipped."""
    oid = f"o{uuid.uuid4().hex[:10]}"
    ledger.orders.create(
        order_id=oid, buyer_id="b", seller_id="s", amount=captured, currency="EUR", fee_amount=0
    )
    ledger.orders.mark_paid(oid)
    other = captured * other_pct // 100
    if other:
        ledger.refunds.succeeded(ledger.refunds.create(oid, other).id)
    left = captured - other
    if left <= 0:
        return
    asked = max(1, left * asked_pct // 100)
    refund = ledger.refunds.create(oid, asked)
    before = ledger.journal.balance(Accounts.PSP_CLEARING, "EUR")
    if 0 < psp <= left:
        with ledger.transaction() as session:
            ledger.refunds._succeeded(session, session.get(Refund, refund.id), psp)  # type: ignore[arg-type]
        row = ledger.refunds.get(refund.id)
        assert (row.amount, row.status) == (psp, "succeeded")
        assert row.requested_amount == (None if psp == asked else asked)
        assert ledger.orders.get(oid).refunded_amount == other + psp
        assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == before - psp
    else:
        with pytest.raises(AmountMismatchError), ledger.transaction() as session:
            ledger.refunds._succeeded(session, session.get(Refund, refund.id), psp)  # type: ignore[arg-type]
        assert ledger.refunds.get(refund.id).status == "pending"
        assert ledger.orders.get(oid).refunded_amount == other
        assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == before


def test_stuck_orders_never_books_a_zero_capture(ledger: Ledger, clock: Clock) -> None:
    view = View()
    _order(ledger, "zero")
    _order(ledger, "part")
    view.payments["p_zero"] = PaymentState("p_zero", "succeeded", 1000, 0, "EUR")
    view.payments["p_part"] = PaymentState("p_part", "partially_captured", 1000, 400, "EUR")
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["stuck_orders"], now=clock.now)
    assert ledger.orders.get("zero").status == "pending_payment"
    assert _open(ledger, "stuck_orders", "zero")
    assert ledger.orders.get("part").captured_amount == 400
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 400


def test_a_refund_webhook_carries_the_refunded_amount() -> None:
    event = event_from_hyperswitch(
        {
            "event_id": "evt_1",
            "event_type": "refund_succeeded",
            "timestamp": "2026-11-26T12:00:00Z",
            "content": {"type": "refund_details", "object": {"refund_id": "hr_1", "amount": 450}},
        }
    )
    assert event is not None and (event.object_id, event.amount) == ("hr_1", 450)


# ------------------------------------------------------------------ over-captures: the excess


@pytest.mark.parametrize("path", ["webhook", "sweep"])
def test_a_late_over_capture_refunded_by_the_operator_keeps_its_excess_flagged(
    ledger: Ledger, clock: Clock, path: str
) -> None:
    """The model's minimal case: the part above the order stays an open finding.

    The PSP holds 1007 for a 1000 order that had failed. The ledger books 1000 (the
    schema keeps ``captured <= amount``) and the operator's ``refund`` returns those
    1000: the 7 the buyer paid on top is booked nowhere, so an open ``money_mismatch``
    finding must carry it, whichever path saw the capture.
    """
    view = View()
    _order(ledger, "o1")
    ledger.orders.mark_failed("o1")
    view.payments["p_o1"] = PaymentState("p_o1", "succeeded", 1000, 1007, "EUR")
    if path == "webhook":
        ledger.events.apply(ev("e1", "payment_succeeded", "p_o1", amount=1007))
    else:
        clock.advance(hours=1)
        run_sweep(ledger, view, rules=["late_captures"], now=clock.now)
    assert ledger.orders.get("o1").captured_amount == 1000
    [finding] = _open(ledger, "money_mismatch", "o1")
    evidence = finding["evidence"]
    assert (evidence["psp_received"], evidence["booked"]) == (1007, 1000)  # type: ignore[index]
    refund = ledger.captures.decide("o1", "refund", actor="ops", reason="sold out")
    assert refund is not None and refund.amount == 1000
    assert not _open(ledger, "late_captures", "o1")  # the decision is made ...
    assert _open(ledger, "money_mismatch", "o1")  # ... the 7 above the order is not


def test_the_sweep_flags_the_excess_of_an_over_capture_on_a_pending_order(
    ledger: Ledger, clock: Clock
) -> None:
    """``stuck_orders`` books the order's amount and resolves its own finding: the excess
    the PSP holds must stay an open ``money_mismatch`` finding with both amounts."""
    view = View()
    _order(ledger, "o1")
    view.payments["p_o1"] = PaymentState("p_o1", "succeeded", 1000, 1200, "EUR")
    clock.advance(hours=1)
    run_sweep(ledger, view, rules=["stuck_orders"], now=clock.now)
    order = ledger.orders.get("o1")
    assert (order.status, order.captured_amount) == ("paid", 1000)
    [finding] = _open(ledger, "money_mismatch", "o1")
    evidence = finding["evidence"]
    assert (evidence["psp_received"], evidence["booked"]) == (1200, 1000)  # type: ignore[index]
