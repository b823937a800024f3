"""Intents, recorded reversals, parked failures and the operator's actions (issue 13).

Findings 3 and 4: a reversal recorded twice counts once; a permanent provider failure
(or the retry budget) parks the intent with a finding and a metric, and nobody calls
the provider again until an operator retries, writes off or nets it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from veza_ledger import (
    PARKED_RULE,
    Accounts,
    IllegalTransitionError,
    Ledger,
    LedgerConfigurationError,
    classify_provider_error,
    run_reversal_worker,
    run_transfer_worker,
)
from veza_ledger._metrics import LedgerMetrics
from veza_payments import (
    IdempotencyConflictError,
    InvalidRequestError,
    ServerError,
    StripeConnect,
)
from veza_payments.testing import FakeStripe

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def stripe(stripe_client: Callable[..., StripeConnect]) -> StripeConnect:
    return stripe_client(timeout=10, retries=0)


def _paid_and_transferred(ledger: Ledger, stripe: StripeConnect, seller: str = "s") -> str:
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
    assert len(run_transfer_worker(ledger, stripe, now=NOW).done) == 1
    return order.id


def _reversal_posts(fake: FakeStripe) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path.endswith("/reversals"))


def test_recording_a_reversal_twice_changes_nothing(ledger: Ledger) -> None:
    """Finding 3: the row's reversed total is the sum of reversals keyed by provider id."""
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    t = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=850, currency="EUR", order_id=order.id
    )
    ledger.transfers.completed(t.id, "tr_1")
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 400).id)  # 340 due
    ledger.transfers.reversal_completed(t.id, "trr_1", amount=340)
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 100).id)  # 85 more due
    assert ledger.transfers.get(t.id).status == "reversal_pending"
    again = ledger.transfers.reversal_completed(
        t.id, "trr_1", amount=340
    )  # a replayed webhook, a retry
    assert (again.reversed_amount, again.reversal_due, again.status) == (
        340,
        425,
        "reversal_pending",
    )
    assert [(r.provider_reversal_id, r.amount) for r in ledger.transfers.reversals_of(t.id)] == [
        ("trr_1", 340)
    ]
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 85  # the seller owes 85
    with pytest.raises(LedgerConfigurationError, match="recorded for transfer"):
        ledger.transfers.reversal_completed(t.id, "trr_1", amount=85)  # one provider id, one amount
    done = ledger.transfers.reversal_completed(t.id, "trr_2", amount=85)
    assert (done.reversed_amount, done.status) == (425, "partially_reversed")
    pending = ledger.transfers.create(seller_id="s", destination="acct_s", amount=5, currency="EUR")
    with pytest.raises(IllegalTransitionError):
        ledger.transfers.reversal_completed(
            pending.id, "trr_3", amount=5
        )  # nothing was paid to reverse


def test_a_permanent_failure_is_parked_with_a_finding_and_written_off(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """Finding 4: the seller was paid out, the reversal is refused; one call, then parked."""
    ledger = Ledger(engine)
    order_id = _paid_and_transferred(ledger, stripe)
    stripe.create_payout("payout-1", amount=850, currency="EUR", stripe_account="acct_s")
    ledger.refunds.succeeded(ledger.refunds.create(order_id, 400).id)  # 340 due
    report = run_reversal_worker(ledger, stripe, now=NOW)
    assert len(report.parked) == 1
    for minute in range(1, 11):  # ten further runs, a minute apart
        run_reversal_worker(ledger, stripe, now=NOW + dt.timedelta(minutes=minute))
    assert _reversal_posts(fake) == 1
    [intent] = ledger.provider_intents.find(status="parked")
    assert (intent.kind, intent.amount, intent.error_class) == ("reversal", 340, "permanent")
    assert "balance_insufficient" in (intent.last_error or "")
    [finding] = ledger.reconciliation.findings(rule=PARKED_RULE, status="open")
    assert finding.object_id == intent.id and finding.severity == "critical"
    registry = CollectorRegistry()
    LedgerMetrics(engine, registry)
    assert registry.get_sample_value("veza_ledger_parked_intents", {"kind": "reversal"}) == 1
    with pytest.raises(LedgerConfigurationError, match="reason and an actor"):
        ledger.provider_intents.write_off(intent.id, actor="ops", reason=" ")
    ledger.provider_intents.write_off(
        intent.id, actor="ops@example", reason="seller left the platform"
    )
    assert ledger.provider_intents.get(intent.id).status == "written_off"
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 0
    assert ledger.journal.balance(Accounts.WRITE_OFFS, "EUR") == 340
    assert ledger.transfers.get(intent.object_id).status == "partially_reversed"
    assert ledger.reconciliation.findings(rule=PARKED_RULE, status="open") == []
    assert registry.get_sample_value("veza_ledger_parked_intents", {"kind": "reversal"}) == 0
    [audit] = [o for o in ledger.operator.overrides() if o.machine == "intent"]
    assert (audit.from_status, audit.to_status, audit.actor) == (
        "parked",
        "written_off",
        "ops@example",
    )
    for minute in range(11, 14):
        run_reversal_worker(ledger, stripe, now=NOW + dt.timedelta(minutes=minute))
    assert _reversal_posts(fake) == 1 and ledger.journal.trial_balance() == {"EUR": 0}


def test_the_retry_budget_parks_transient_failures_and_retry_now_resumes(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """A 503 Stripe saved for the key is replayed on every retry: the budget ends it."""
    ledger = Ledger(engine)
    order_id = _paid_and_transferred(ledger, stripe)
    ledger.refunds.succeeded(ledger.refunds.create(order_id, 400).id)
    fake.fail_inside(503, path_prefix="/v1/transfers/")
    at = NOW
    for _ in range(13):
        run_reversal_worker(ledger, stripe, now=at, max_attempts=3)
        at += dt.timedelta(hours=2)  # past every backoff
    assert _reversal_posts(fake) == 3
    [intent] = ledger.provider_intents.find(status="parked")
    assert (intent.attempts, intent.error_class) == (3, "transient")
    assert len(ledger.reconciliation.findings(rule=PARKED_RULE, status="open")) == 1
    with pytest.raises(LedgerConfigurationError, match="provider_checked"):
        ledger.provider_intents.write_off(intent.id, actor="ops", reason="unknown outcome")
    fake.advance(25 * 3600)  # Stripe forgot the key and its saved 503
    ledger.provider_intents.retry(intent.id, actor="ops", reason="Stripe incident over")
    assert run_reversal_worker(ledger, stripe, now=at).done == [intent.object_id]
    done = ledger.provider_intents.get(intent.id)
    assert (done.status, done.amount) == ("succeeded", 340)  # same key, same amount
    t = ledger.transfers.get(intent.object_id)
    assert fake.transfers[t.stripe_transfer_id or ""]["amount_reversed"] == 340
    assert (
        t.reversed_amount == 340
        and ledger.reconciliation.findings(rule=PARKED_RULE, status="open") == []
    )


def test_a_parked_reversal_is_netted_against_the_next_transfer(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    order_id = _paid_and_transferred(ledger, stripe)
    stripe.create_payout("payout-1", amount=850, currency="EUR", stripe_account="acct_s")
    ledger.refunds.succeeded(ledger.refunds.create(order_id, 400).id)
    run_reversal_worker(ledger, stripe, now=NOW)
    [intent] = ledger.provider_intents.find(status="parked")
    with pytest.raises(IllegalTransitionError):
        ledger.provider_intents.write_off(
            ledger.provider_intents.find(kind="transfer")[0].id, actor="o", reason="r"
        )
    ledger.provider_intents.net(intent.id, actor="ops", reason="take it from the next sale")
    assert ledger.transfers.get(intent.object_id).status == "partially_reversed"
    second = ledger.orders.create(
        buyer_id="b2", seller_id="s", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(second.id)
    small = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=300, currency="EUR"
    )  # 340 does not fit in 300: left for a later transfer
    assert (small.amount, small.netted_amount) == (300, 0)
    nxt = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=550, currency="EUR", order_id=second.id
    )
    assert (nxt.amount, nxt.netted_amount) == (210, 340)
    assert ledger.provider_intents.get(intent.id).netted_into == nxt.id
    run_transfer_worker(ledger, stripe, now=NOW)
    assert sorted(t["amount"] for t in fake.transfers.values()) == [210, 300, 850]
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 0
    assert ledger.journal.trial_balance() == {"EUR": 0}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRequestError("refused", status=400, code="balance_insufficient"), "permanent"),
        (
            IdempotencyConflictError("other params", status=400, existing=None, requested={}),
            "permanent",
        ),
        (ServerError("down", status=503), "transient"),
        (ServerError("lock", status=409), "transient"),
        (TimeoutError("timed out"), "transient"),
    ],
)
def test_provider_errors_are_classified(error: Exception, expected: str) -> None:
    assert classify_provider_error(error) == expected
