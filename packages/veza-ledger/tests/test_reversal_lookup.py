"""A lost reversal is found among more than Stripe's embedded 10 (issue 13, brief item 3).

Stripe embeds a transfer's 10 most recent reversals in the transfer object; the one a
lost call made a day ago is older than that once others were made meanwhile (by hand in
the dashboard, by another system). ``StripeWorkerProvider.find_reversal`` pages
``GET /v1/transfers/{id}/reversals`` and adopts it instead of reversing again.
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


def test_find_reversal_reads_past_the_embedded_page(
    fake: FakeStripe, stripe: StripeConnect
) -> None:
    transfer = stripe.create_transfer("t", amount=900, currency="EUR", destination="acct_s")
    for n in range(12):
        stripe.reverse_transfer(f"key-{n}", transfer.id, amount=5)
    embedded = stripe.retrieve_transfer(transfer.id).raw["reversals"]["data"]
    assert "key-0" not in {r["metadata"]["veza_idempotency_key"] for r in embedded}
    provider = StripeWorkerProvider(stripe)
    oldest = fake.reversals_of(transfer.id)[-1]
    assert provider.find_reversal(transfer.id, "key-0") == oldest["id"]
    assert provider.find_reversal(transfer.id, "key-nope") is None
    assert provider.find_reversal("tr_missing", "key-0") is None


def test_a_lost_reversal_older_than_ten_others_is_adopted(
    engine: sa.Engine, fake: FakeStripe, stripe: StripeConnect
) -> None:
    ledger = Ledger(engine)
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=150
    )
    ledger.orders.mark_paid(order.id)
    transfer = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=850, currency="EUR", order_id=order.id
    )
    provider = StripeWorkerProvider(stripe)
    run_transfer_worker(ledger, provider, now=NOW)
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 400).id)  # 340 due
    gate = fake.hold("/v1/transfers/", after_commit=True)
    assert run_reversal_worker(ledger, provider, now=NOW).failed  # a timeout: outcome unknown
    gate.release()
    fake.wait_idle()
    stripe_id = ledger.transfers.get(transfer.id).stripe_transfer_id or ""
    [lost] = fake.reversals_of(stripe_id)
    for n in range(11):  # made by hand meanwhile: the lost one leaves the embedded 10
        stripe.reverse_transfer(f"by-hand-{n}", stripe_id, amount=1)
    fake.advance(25 * 3600)  # Stripe forgot the key
    assert run_reversal_worker(ledger, provider, now=LATER).done == [transfer.id]
    assert [r.provider_reversal_id for r in ledger.transfers.reversals_of(transfer.id)] == [
        lost["id"]
    ]
    assert len(fake.reversals_of(stripe_id)) == 12  # nothing reversed twice
    assert fake.transfers[stripe_id]["amount_reversed"] == 340 + 11
