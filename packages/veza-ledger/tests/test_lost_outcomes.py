"""Finding 6: an unknown outcome older than Stripe's key memory is looked up, not redone.

The worker's call times out while Stripe made the object (the fake holds the answer);
a day later Stripe has forgotten the key, and a plain retry would make a second
transfer or reversal. With a provider that can look objects up
(:class:`~veza_ledger.adapters.StripeWorkerProvider`), the worker adopts the one that
exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from veza_ledger import Ledger, run_reversal_worker, run_transfer_worker
from veza_ledger.adapters import StripeWorkerProvider
from veza_payments import StripeConnect
from veza_payments.testing import FakeStripe

NOW = dt.datetime.now(dt.UTC)
LATER = NOW + dt.timedelta(hours=25)


@pytest.fixture
def stripe(stripe_client: Callable[..., StripeConnect]) -> StripeConnect:
    return stripe_client(timeout=0.5, retries=0)


def _order(ledger: Ledger) -> tuple[str, str]:
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    t = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=850, currency="EUR", order_id=order.id
    )
    return order.id, t.id


def _lost(fake: FakeStripe, path: str, run: object) -> None:
    """Run a worker whose call Stripe executes but whose answer never arrives."""
    gate = fake.hold(path, after_commit=True)
    report = run()  # type: ignore[operator]
    assert report.failed  # a timeout: transient, outcome unknown
    gate.release()
    fake.wait_idle()


@pytest.mark.parametrize("finder", [True, False], ids=["adopts", "plain-client-pays-twice"])
def test_a_lost_transfer_is_found_after_the_key_memory(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect, finder: bool
) -> None:
    ledger = Ledger(engine)
    _, transfer_id = _order(ledger)
    provider = StripeWorkerProvider(stripe) if finder else stripe
    _lost(fake, "/v1/transfers", lambda: run_transfer_worker(ledger, provider, now=NOW))
    assert len(fake.transfers) == 1
    fake.advance(25 * 3600)  # Stripe forgot the key
    assert run_transfer_worker(ledger, provider, now=LATER).done == [transfer_id]
    if finder:
        assert len(fake.transfers) == 1
        assert ledger.transfers.get(transfer_id).stripe_transfer_id in fake.transfers
    else:  # what finding 6 saw: the retry after 24 h made a second transfer
        assert len(fake.transfers) == 2


def test_a_lost_reversal_is_found_after_the_key_memory(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    order_id, transfer_id = _order(ledger)
    provider = StripeWorkerProvider(stripe)
    run_transfer_worker(ledger, provider, now=NOW)
    ledger.refunds.succeeded(ledger.refunds.create(order_id, 400).id)  # 340 due
    _lost(fake, "/v1/transfers/", lambda: run_reversal_worker(ledger, provider, now=NOW))
    fake.advance(25 * 3600)
    assert run_reversal_worker(ledger, provider, now=LATER).done == [transfer_id]
    t = ledger.transfers.get(transfer_id)
    stored = fake.transfers[t.stripe_transfer_id or ""]
    assert stored["amount_reversed"] == t.reversed_amount == 340
    assert [r.provider_reversal_id for r in ledger.transfers.reversals_of(transfer_id)] == [
        r["id"] for r in stored["reversals"]["data"]
    ]
