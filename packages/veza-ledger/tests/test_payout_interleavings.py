"""Payouts in flight while the rest of the ledger moves (issue 13), against the Stripe fake.

The fake holds the payout request inside its call (``hold``: before Stripe executes it,
or with ``after_commit`` after it made the payout, before the answer leaves) while the
test lands a refund's claw-back or the payout's own webhook; a worker process is killed
-9 after Stripe answered. Afterwards, per seller, what Stripe holds equals what the
ledger says, to the cent: the connected balance, what was paid out, what was reversed.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from veza_ledger import (
    PARKED_RULE,
    Accounts,
    Ledger,
    run_payout_worker,
    run_reversal_worker,
    run_transfer_worker,
)
from veza_ledger.adapters import StripeWorkerProvider
from veza_payments import StripeConnect
from veza_payments.testing import FakeStripe

DAY = 24 * 3600


@pytest.fixture
def stripe(stripe_client: Callable[..., StripeConnect]) -> StripeConnect:
    return stripe_client(timeout=30, retries=0)


def _funded(ledger: Ledger, stripe: StripeConnect) -> tuple[str, str]:
    """An order of 1000 (fee 150) paid, its 850 transferred to ``acct_s``."""
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    transfer = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=850, currency="EUR", order_id=order.id
    )
    assert run_transfer_worker(ledger, stripe).done == [transfer.id]
    return order.id, transfer.id


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _refund(ledger: Ledger, order_id: str, amount: int) -> None:
    ledger.refunds.succeeded(ledger.refunds.create(order_id, amount).id)


def _deliver_payout_events(ledger: Ledger, fake: FakeStripe) -> None:
    """The bank pays every payout still pending at Stripe; its webhook reaches the ledger."""
    for payout_id, payout in list(fake.payouts.items()):
        if payout["status"] == "pending":
            ledger.payouts.apply_event(fake.settle_payout(payout_id, "paid"))


def _assert_seller_totals(ledger: Ledger, fake: FakeStripe, transfer_id: str) -> None:
    """Per seller, to the cent: connected balance, paid out, reversed; one record each."""
    row = ledger.transfers.get(transfer_id)
    stored = fake.transfers[row.stripe_transfer_id or ""]
    assert ledger.journal.balance(Accounts.connected_balance("s"), "EUR") == fake.balance(
        "acct_s", "eur"
    )
    paid_at_stripe = sum(p["amount"] for p in fake.payouts.values() if p["status"] == "paid")
    assert ledger.journal.balance(Accounts.connected_paid_out("s"), "EUR") == paid_at_stripe
    assert row.reversed_amount == stored["amount_reversed"]
    assert (
        sum(r.amount for r in ledger.transfers.reversals_of(transfer_id))
        == stored["amount_reversed"]
    )
    recorded = {i.provider_object_id for i in ledger.provider_intents.find(kind="payout")} - {None}
    assert recorded == set(fake.payouts)  # every Stripe payout belongs to one intent
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_a_claw_back_during_a_payout_parks_the_payout(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """(a) The refund's reversal lands while the payout waits at Stripe: Stripe refuses it."""
    ledger = Ledger(engine)
    order_id, transfer_id = _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=850, currency="EUR"
    )
    gate = fake.hold("/v1/payouts")
    worker, worker_errors = _in_thread(lambda: run_payout_worker(ledger, stripe))
    assert gate.entered.wait(10)
    refund, refund_errors = _in_thread(lambda: _refund(ledger, order_id, 400))  # 340 due
    refund.join(5)
    alive = refund.is_alive()  # a refund never waits for a payout in flight
    reversed_ = run_reversal_worker(ledger, stripe)  # nor does the claw-back
    gate.release()
    worker.join(20)
    assert not alive and not worker_errors and not refund_errors
    assert reversed_.done == [transfer_id]
    [intent] = ledger.provider_intents.find(kind="payout")
    assert intent.status == "parked" and "balance_insufficient" in (intent.last_error or "")
    assert [
        f.object_id for f in ledger.reconciliation.findings(rule=PARKED_RULE, status="open")
    ] == [intent.id]
    assert ledger.payouts.get(payout.id).status == "pending" and fake.payouts == {}
    _assert_seller_totals(ledger, fake, transfer_id)
    assert ledger.journal.balance(Accounts.connected_balance("s"), "EUR") == 510
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 0


def test_a_refund_during_a_payout_is_parked_on_the_reversal_side(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """(a) The refund lands mid-payout, the payout wins at Stripe; the claw-back is parked."""
    ledger = Ledger(engine)
    order_id, transfer_id = _funded(ledger, stripe)
    ledger.payouts.create(seller_id="s", stripe_account="acct_s", amount=850, currency="EUR")
    gate = fake.hold("/v1/payouts")
    worker, worker_errors = _in_thread(lambda: run_payout_worker(ledger, stripe))
    assert gate.entered.wait(10)
    refund, refund_errors = _in_thread(lambda: _refund(ledger, order_id, 400))
    refund.join(5)
    alive = refund.is_alive()
    gate.release()
    worker.join(20)
    assert not alive and not worker_errors and not refund_errors
    assert run_reversal_worker(ledger, stripe).parked == [transfer_id]
    _deliver_payout_events(ledger, fake)
    [reversal] = ledger.provider_intents.find(kind="reversal")
    assert (reversal.status, reversal.amount) == ("parked", 340)
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 340  # the seller owes it
    _assert_seller_totals(ledger, fake, transfer_id)
    assert ledger.journal.balance(Accounts.connected_paid_out("s"), "EUR") == 850


@pytest.mark.parametrize("outcome", ["paid", "failed"])
def test_the_payouts_webhook_lands_while_its_call_is_in_flight(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect, outcome: str
) -> None:
    """(b) Stripe made the payout and its ``payout.<outcome>`` arrives before the answer."""
    ledger = Ledger(engine)
    _, transfer_id = _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=850, currency="EUR"
    )
    gate = fake.hold("/v1/payouts", after_commit=True)
    worker, worker_errors = _in_thread(lambda: run_payout_worker(ledger, stripe))
    assert gate.entered.wait(10)
    [made] = fake.payouts
    event = fake.settle_payout(made, outcome)
    ledger.payouts.apply_event(event)  # found by the key in its metadata: no id recorded yet
    assert ledger.payouts.get(payout.id).status == outcome
    gate.release()
    worker.join(20)
    assert not worker_errors
    row = ledger.payouts.get(payout.id)
    assert (row.status, row.external_payout_id, row.leased_until) == (outcome, made, None)
    assert ledger.provider_intents.get(payout.id).provider_object_id == made
    ledger.payouts.apply_event(event)  # a replay changes nothing
    _assert_seller_totals(ledger, fake, transfer_id)
    if outcome == "failed":  # the money is back: retried under a new key, then paid
        ledger.payouts.retry(payout.id)
        assert run_payout_worker(ledger, stripe).done == [payout.id]
        ledger.payouts.apply_event(event)  # the first attempt's event: stale now
        assert ledger.payouts.get(payout.id).status == "in_transit"
        _deliver_payout_events(ledger, fake)
        assert len(fake.payouts) == 2 and ledger.payouts.get(payout.id).status == "paid"
        _assert_seller_totals(ledger, fake, transfer_id)
    assert ledger.journal.balance(Accounts.connected_paid_out("s"), "EUR") == 850
    assert ledger.journal.balance(Accounts.connected_balance("s"), "EUR") == 0


@pytest.mark.parametrize("finder", [True, False], ids=["adopts", "plain-client-pays-twice"])
def test_a_payout_worker_killed_after_stripe_answered_is_adopted_after_the_key_ttl(
    pg_only: sa.Engine, fake: FakeStripe, stripe: StripeConnect, finder: bool
) -> None:
    """kill -9 after Stripe made the payout; restart after Stripe forgot the key."""
    ledger = Ledger(pg_only)
    _, transfer_id = _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=400, currency="EUR"
    )
    gate = fake.hold("/v1/payouts", after_commit=True)
    url = pg_only.url.render_as_string(hide_password=False)
    script = Path(__file__).with_name("payout_worker.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), url, fake.url, fake.api_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gate.entered.wait(30), proc.stderr
        os.kill(proc.pid, signal.SIGKILL)  # Stripe paid 400 out; the ledger never heard
        proc.wait(10)
    finally:
        gate.release()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    fake.wait_idle()
    assert len(fake.payouts) == 1 and ledger.payouts.get(payout.id).status == "pending"
    fake.advance(DAY + 3600)  # Stripe forgets the key
    after_ttl = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)  # past the lease and the memory
    provider = StripeWorkerProvider(stripe) if finder else stripe
    assert run_payout_worker(ledger, provider, now=after_ttl).done == [payout.id]
    if not finder:  # what a blind retry does once the key is gone: a second payout
        assert len(fake.payouts) == 2
        return
    [made] = fake.payouts
    assert ledger.payouts.get(payout.id).external_payout_id == made
    _deliver_payout_events(ledger, fake)
    _assert_seller_totals(ledger, fake, transfer_id)
    assert ledger.journal.balance(Accounts.connected_balance("s"), "EUR") == 450


def test_a_payout_retried_while_its_failed_call_is_in_flight_keeps_the_new_attempt(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """``payout.failed`` lands mid-call and the operator retries before the answer arrives."""
    ledger = Ledger(engine)
    _, transfer_id = _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=850, currency="EUR"
    )
    gate = fake.hold("/v1/payouts", after_commit=True)
    worker, worker_errors = _in_thread(lambda: run_payout_worker(ledger, stripe))
    assert gate.entered.wait(10)
    [first] = fake.payouts
    ledger.payouts.apply_event(fake.settle_payout(first, "failed"))
    ledger.payouts.retry(payout.id)  # the next intent, a fresh key
    gate.release()
    worker.join(20)
    assert not worker_errors
    row = ledger.payouts.get(payout.id)
    assert (row.status, row.external_payout_id) == ("pending", None)  # not the failed one
    assert run_payout_worker(ledger, stripe).done == [payout.id]
    second = ledger.payouts.get(payout.id).external_payout_id
    assert second is not None and second != first
    _deliver_payout_events(ledger, fake)
    assert ledger.payouts.get(payout.id).status == "paid"
    _assert_seller_totals(ledger, fake, transfer_id)
    assert ledger.journal.balance(Accounts.connected_paid_out("s"), "EUR") == 850


def test_a_webhook_before_a_timed_out_answer_leaves_nothing_to_retry(
    engine: sa.Engine, fake: FakeStripe, stripe_client: Callable[..., StripeConnect]
) -> None:
    """``payout.paid`` lands, then the worker's call times out: the payout is settled."""
    ledger = Ledger(engine)
    stripe = stripe_client(timeout=3, retries=0)  # the webhook lands well before the timeout
    _, transfer_id = _funded(ledger, stripe)
    payout = ledger.payouts.create(
        seller_id="s", stripe_account="acct_s", amount=850, currency="EUR"
    )
    gate = fake.hold("/v1/payouts", after_commit=True)
    reports: list[object] = []
    worker, worker_errors = _in_thread(lambda: reports.append(run_payout_worker(ledger, stripe)))
    assert gate.entered.wait(10)
    [made] = fake.payouts
    ledger.payouts.apply_event(fake.settle_payout(made, "paid"))
    worker.join(20)  # the call times out while the fake still holds the answer
    gate.release()
    assert not worker_errors and not worker.is_alive()
    row = ledger.payouts.get(payout.id)
    assert (row.status, row.leased_until, row.attempts) == ("paid", None, 0)
    intent = ledger.provider_intents.get(payout.id)
    assert (intent.status, intent.provider_object_id, intent.attempts) == ("succeeded", made, 0)
    assert run_payout_worker(ledger, stripe).done == []
    _assert_seller_totals(ledger, fake, transfer_id)
