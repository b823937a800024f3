"""Issue 13, payouts: an intent committed before the call, a worker, parking, the cap.

Against the Stripe fake over HTTP (``StripeConnect``), on SQLite and PostgreSQL. The
money rule: a payout never exceeds what the seller may pay out
(:meth:`Ledger.payout_available`): the connected balance in the journal, less payouts
not yet journaled, less the claw-backs still due.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from prometheus_client import CollectorRegistry

from veza_ledger import (
    PARKED_RULE,
    Accounts,
    IllegalTransitionError,
    Ledger,
    LedgerConfigurationError,
    PayoutExceedsBalanceError,
    cancel_parked_payout,
    run_payout_worker,
    run_transfer_worker,
)
from veza_ledger._metrics import LedgerMetrics
from veza_payments import StripeConnect
from veza_payments.testing import FakeStripe, Fault

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def stripe(stripe_client: Callable[..., StripeConnect]) -> StripeConnect:
    return stripe_client(timeout=10, retries=0)


def _funded(ledger: Ledger, stripe: StripeConnect, seller: str = "s") -> str:
    """An order of 1000 (fee 150) paid and its 850 transferred to ``acct_<seller>``."""
    order = ledger.orders.create(
        buyer_id="b", seller_id=seller, amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    ledger.transfers.create(
        seller_id=seller,
        destination=f"acct_{seller}",
        amount=850,
        currency="EUR",
        order_id=order.id,
    )
    assert len(run_transfer_worker(ledger, stripe).done) == 1
    return order.id


def _payout_posts(fake: FakeStripe) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == "/v1/payouts")


def test_a_payout_goes_through_its_intent_and_is_journaled_when_paid(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=500, currency="EUR", payout_id="po-row-1"
    )
    [intent] = ledger.provider_intents.find(kind="payout")  # committed before any call
    assert (intent.id, intent.object_id, intent.amount, intent.status) == (
        "po-row-1",
        "po-row-1",
        500,
        "pending",
    )
    assert _payout_posts(fake) == 0
    assert run_payout_worker(ledger, stripe).done == [payout.id]
    row = ledger.payouts.get(payout.id)
    assert row.status == "in_transit" and row.external_payout_id in fake.payouts
    assert ledger.provider_intents.get(intent.id).provider_object_id == row.external_payout_id
    assert fake.payouts[row.external_payout_id]["metadata"]["veza_idempotency_key"] == intent.id
    assert run_payout_worker(ledger, stripe).done == []  # nothing due: no second call
    assert _payout_posts(fake) == 1
    event = fake.settle_payout(row.external_payout_id or "", "paid")
    assert ledger.payouts.apply_event(event) is not None
    assert ledger.payouts.apply_event(event) is not None  # a replay changes nothing
    assert ledger.payouts.get(payout.id).status == "paid"
    assert ledger.journal.balance(Accounts.connected_balance("s"), "EUR") == fake.balance(
        "acct_s", "eur"
    )
    assert ledger.journal.balance(Accounts.connected_paid_out("s"), "EUR") == 500
    assert ledger.payouts.apply_event({"type": "payout.created"}) is None


def test_a_payout_never_exceeds_the_payable_balance(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    order_id = _funded(ledger, stripe)
    ledger.refunds.succeeded(ledger.refunds.create(order_id, 400).id)  # 340 to claw back
    assert ledger.payouts.available("s", "EUR") == 510
    with pytest.raises(PayoutExceedsBalanceError) as raised:
        ledger.payouts.create(seller_id="s", stripe_account="acct_s", amount=511, currency="EUR")
    assert (raised.value.available, raised.value.amount) == (510, 511)
    assert ledger.provider_intents.find(kind="payout") == []  # nothing written
    ledger.payouts.create(seller_id="s", stripe_account="acct_s", amount=510, currency="EUR")
    assert ledger.payouts.available("s", "EUR") == 0  # the pending payout is reserved
    with pytest.raises(PayoutExceedsBalanceError):
        ledger.payouts.create(seller_id="s", stripe_account="acct_s", amount=1, currency="EUR")
    ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=5, currency="EUR", transfer_id="t-x"
    )
    run_transfer_worker(ledger, stripe)  # 5 more to pay out; "t-x" keys the transfer's intent
    with pytest.raises(LedgerConfigurationError, match="already keys"):
        ledger.payouts.create(
            seller_id="s", stripe_account="acct_s", amount=1, currency="EUR", payout_id="t-x"
        )


def test_a_refused_payout_is_parked_with_a_finding_and_a_metric(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """Stripe's balance_insufficient is permanent: one call, parked, ten runs call nobody."""
    ledger = Ledger(engine)
    _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=850, currency="EUR"
    )
    stripe.create_payout("elsewhere", amount=100, currency="EUR", stripe_account="acct_s")
    assert run_payout_worker(ledger, stripe, now=NOW).parked == [payout.id]
    for minute in range(1, 11):
        run_payout_worker(ledger, stripe, now=NOW + dt.timedelta(minutes=minute))
    assert _payout_posts(fake) == 2  # the one by hand and the worker's one
    [intent] = ledger.provider_intents.find(kind="payout", status="parked")
    assert intent.error_class == "permanent" and "balance_insufficient" in (intent.last_error or "")
    [finding] = ledger.reconciliation.findings(rule=PARKED_RULE, status="open")
    assert finding.object_id == intent.id and finding.proposed_action is not None
    assert "cancel_parked_payout" in finding.proposed_action
    registry = CollectorRegistry()
    LedgerMetrics(engine, registry)
    assert registry.get_sample_value("veza_ledger_parked_intents", {"kind": "payout"}) == 1
    with pytest.raises(LedgerConfigurationError, match="reason and an actor"):
        cancel_parked_payout(ledger, payout.id, actor="ops", reason=" ")
    assert cancel_parked_payout(ledger, payout.id, actor="ops", reason="paid by hand").status == (
        "canceled"
    )
    assert ledger.provider_intents.get(intent.id).status == "written_off"
    assert ledger.reconciliation.findings(rule=PARKED_RULE, status="open") == []
    assert registry.get_sample_value("veza_ledger_parked_intents", {"kind": "payout"}) == 0
    assert [o.to_status for o in ledger.operator.overrides() if o.machine == "intent"] == [
        "written_off"
    ]
    assert ledger.payouts.available("s", "EUR") == 850  # nothing reserved any more


def test_a_transient_failure_backs_off_and_keeps_the_key(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=300, currency="EUR"
    )
    fake.inject(Fault("status", status=503, method="POST", path_prefix="/v1/payouts"))
    assert run_payout_worker(ledger, stripe, now=NOW).failed == [payout.id]
    assert run_payout_worker(ledger, stripe, now=NOW + dt.timedelta(seconds=30)).failed == []
    assert _payout_posts(fake) == 1  # backing off: not called again yet
    assert run_payout_worker(ledger, stripe, now=NOW + dt.timedelta(minutes=2)).done == [payout.id]
    keys = {r.headers.get("idempotency-key") for r in fake.requests if r.path == "/v1/payouts"}
    assert keys == {f"payout:{payout.id}"} and len(fake.payouts) == 1


def test_cancel_refuses_a_payout_that_is_not_parked(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    _funded(ledger, stripe)
    payout = ledger.payouts.create(seller_id="s", stripe_account="acct_s", amount=5, currency="EUR")
    with pytest.raises(LedgerConfigurationError, match="parked"):
        cancel_parked_payout(ledger, payout.id, actor="ops", reason="why not")


# --------------------------------------------------------------------------- the money rule


def _fund_by_hand(ledger: Ledger, seller: str, amount: int) -> None:
    order = ledger.orders.create(buyer_id="b", seller_id=seller, amount=amount, currency="EUR")
    ledger.orders.mark_paid(order.id)
    transfer = ledger.transfers.create(
        seller_id=seller, destination="acct_1", amount=amount, currency="EUR", order_id=order.id
    )
    ledger.transfers.completed(transfer.id, f"tr_{uuid.uuid4().hex[:24]}")


OPS = ["fund", "payout", "submit", "paid", "failed", "retry"]
STEP = st.tuples(st.sampled_from(OPS), st.integers(1, 400))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, max_size=14))
def test_payouts_never_exceed_what_the_seller_may_pay_out(
    ledger: Ledger, steps: list[tuple[str, int]]
) -> None:
    """Model: funded - paid - in flight, whatever the order of funding, payouts and news."""
    seller = uuid.uuid4().hex  # the fixture's database outlives one example
    funded = 0
    open_: list[str] = []
    for op, amount in steps:
        if op == "fund":
            _fund_by_hand(ledger, seller, amount)
            funded += amount
        elif op == "payout":
            rows = [ledger.payouts.get(p) for p in open_]
            taken = sum(r.amount for r in rows if r.status in ("pending", "in_transit", "paid"))
            fits = amount <= funded - taken
            try:
                made = ledger.payouts.create(
                    seller_id=seller, stripe_account="acct_1", amount=amount, currency="EUR"
                )
                open_.append(made.id)
            except PayoutExceedsBalanceError:
                assert not fits
            else:
                assert fits
        elif open_:
            target = open_[amount % len(open_)]
            calls = {
                "submit": lambda p: ledger.payouts.submitted(p, f"po_{uuid.uuid4().hex[:20]}"),
                "paid": ledger.payouts.paid,
                "failed": lambda p: ledger.payouts.failed(p, "bank"),
                "retry": ledger.payouts.retry,
            }
            with contextlib.suppress(IllegalTransitionError, PayoutExceedsBalanceError):
                calls[op](target)
        rows = [ledger.payouts.get(p) for p in open_]
        in_flight = sum(r.amount for r in rows if r.status in ("pending", "in_transit"))
        paid = sum(r.amount for r in rows if r.status == "paid")
        assert ledger.payouts.available(seller, "EUR") == funded - paid - in_flight >= 0
        assert ledger.journal.balance(Accounts.connected_paid_out(seller), "EUR") == paid


def test_concurrent_payouts_cannot_spend_the_same_balance(
    pg_only: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """Eight threads ask 200 each of 850 at once: the per-seller lock lets exactly four in."""
    ledger = Ledger(pg_only)
    _funded(ledger, stripe)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def ask() -> None:
        start.wait()
        try:
            ledger.payouts.create(
                seller_id="s", stripe_account="acct_s", amount=200, currency="EUR"
            )
        except PayoutExceedsBalanceError:
            outcomes.append("refused")
        else:
            outcomes.append("made")

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["made"] * 4 + ["refused"] * 4
    assert ledger.payouts.available("s", "EUR") == 50
