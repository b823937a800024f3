"""Findings 1 and 2 of issue 13, reproduced against the Stripe fake over HTTP.

A refund lands while a worker is inside the Stripe call (the fake holds the request on
a gate), and a worker process is killed -9 after Stripe answered, before the ledger
recorded the answer. Afterwards, what Stripe moved must equal what the ledger recorded,
to the cent.
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

from veza_ledger import Accounts, Ledger, run_reversal_worker, run_transfer_worker
from veza_payments import StripeConnect
from veza_payments.testing import FakeStripe

DAY = 24 * 3600


@pytest.fixture
def stripe(stripe_client: Callable[..., StripeConnect]) -> StripeConnect:
    return stripe_client(timeout=30, retries=2)


def _order_with_transfer(ledger: Ledger, *, pay: StripeConnect | None) -> tuple[str, str]:
    """An order of 1000 (fee 150: the seller's share is 850) and its transfer row."""
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    transfer = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=850, currency="EUR", order_id=order.id
    )
    if pay is not None:
        assert run_transfer_worker(ledger, pay).done == [transfer.id]
    return order.id, transfer.id


def _refund(ledger: Ledger, order_id: str, amount: int | None = None) -> None:
    ledger.refunds.succeeded(ledger.refunds.create(order_id, amount).id)


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


def _settle(ledger: Ledger, stripe: StripeConnect, runs: int = 4) -> None:
    for _ in range(runs):
        run_transfer_worker(ledger, stripe)
        run_reversal_worker(ledger, stripe)


def _assert_provider_equals_ledger(
    ledger: Ledger, fake: FakeStripe, transfer_id: str, reversed_total: int
) -> None:
    row = ledger.transfers.get(transfer_id)
    assert row.stripe_transfer_id is not None
    at_stripe = fake.transfers[row.stripe_transfer_id]
    assert at_stripe["amount_reversed"] == reversed_total
    assert row.reversed_amount == reversed_total
    recorded = sum(r.amount for r in ledger.transfers.reversals_of(transfer_id))
    assert recorded == reversed_total
    assert sorted(
        r.provider_reversal_id for r in ledger.transfers.reversals_of(transfer_id)
    ) == sorted(r["id"] for r in fake.reversals_of(row.stripe_transfer_id))
    # The seller owes nothing and is owed nothing: everything refunded came back.
    assert ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 0
    assert ledger.journal.balance(Accounts.connected_balance("s"), "EUR") == fake.balance(
        "acct_s", "eur"
    )


def test_a_refund_during_a_reversal_is_clawed_back(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """Finding 1, reversal worker: the refund lands while the reversal is at Stripe."""
    ledger = Ledger(engine)
    order_id, transfer_id = _order_with_transfer(ledger, pay=stripe)
    _refund(ledger, order_id, 400)  # seller share 340 due
    gate = fake.hold("/v1/transfers/")
    worker, worker_errors = _in_thread(lambda: run_reversal_worker(ledger, stripe))
    assert gate.entered.wait(10)
    refund, refund_errors = _in_thread(lambda: _refund(ledger, order_id))  # 510 more due
    refund.join(5)
    alive = refund.is_alive()  # a refund never waits for Stripe (no lock across the call)
    gate.release()
    worker.join(20)
    refund.join(20)
    assert not worker_errors and not refund_errors and not alive
    _settle(ledger, stripe)
    _assert_provider_equals_ledger(ledger, fake, transfer_id, 850)
    assert ledger.transfers.get(transfer_id).status == "reversed"


def test_a_refund_during_a_transfer_is_clawed_back(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """Finding 1, transfer worker: the refund lands while the transfer is at Stripe."""
    ledger = Ledger(engine)
    order_id, transfer_id = _order_with_transfer(ledger, pay=None)
    gate = fake.hold("/v1/transfers")
    worker, worker_errors = _in_thread(lambda: run_transfer_worker(ledger, stripe))
    assert gate.entered.wait(10)
    refund, refund_errors = _in_thread(lambda: _refund(ledger, order_id, 400))
    refund.join(5)
    alive = refund.is_alive()  # a refund never waits for Stripe (no lock across the call)
    gate.release()
    worker.join(20)
    refund.join(20)
    assert not worker_errors and not refund_errors and not alive
    _settle(ledger, stripe)
    _assert_provider_equals_ledger(ledger, fake, transfer_id, 340)
    assert ledger.transfers.get(transfer_id).status == "partially_reversed"


def test_a_worker_killed_after_stripe_answered_never_reverses_twice(
    pg_only: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    """Finding 2: kill -9 after Stripe's answer, a second refund, restart, key TTL past."""
    ledger = Ledger(pg_only)
    order_id, transfer_id = _order_with_transfer(ledger, pay=stripe)
    _refund(ledger, order_id, 400)  # 340 due
    gate = fake.hold("/v1/transfers/", after_commit=True)
    url = pg_only.url.render_as_string(hide_password=False)
    script = Path(__file__).with_name("reversal_worker.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), url, fake.url, fake.api_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gate.entered.wait(30), proc.stderr
        os.kill(proc.pid, signal.SIGKILL)  # Stripe reversed 340; the ledger never heard
        proc.wait(10)
    finally:
        gate.release()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    stored = fake.transfers[ledger.transfers.get(transfer_id).stripe_transfer_id or ""]
    assert stored["amount_reversed"] == 340
    _refund(ledger, order_id)  # the rest: 510 more due, before the retry
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)  # past the worker's lease
    for _ in range(3):
        run_reversal_worker(ledger, stripe, now=later)
    fake.advance(DAY + 3600)  # Stripe forgets the keys
    after_ttl = later + dt.timedelta(days=2)
    for _ in range(3):
        run_reversal_worker(ledger, stripe, now=after_ttl)
        run_transfer_worker(ledger, stripe, now=after_ttl)
    _assert_provider_equals_ledger(ledger, fake, transfer_id, 850)
