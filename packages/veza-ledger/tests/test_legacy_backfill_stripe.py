"""Legacy backfill against the Stripe fake: the original platform's ``metadata[order_id]``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from veza_ledger import Ledger, LegacyTransferFinder, run_sweep
from veza_ledger.adapters import PaymentsProviderView
from veza_payments import HyperswitchClient, RetryPolicy, StripeConnect
from veza_payments.testing import FakeHyperswitch


@pytest.fixture
def hyperswitch() -> Iterator[HyperswitchClient]:
    with (
        FakeHyperswitch() as hs,
        HyperswitchClient(
            hs.api_key,
            base_url=hs.url,
            timeout=2,
            max_retries=RetryPolicy(total=2),
            sleep=lambda _s: None,
        ) as client,
    ):
        yield client


def test_a_legacy_transfer_is_backfilled_from_stripe_after_a_refund(
    ledger: Ledger,
    stripe_client: Callable[..., StripeConnect],
    hyperswitch: HyperswitchClient,
) -> None:
    stripe = stripe_client(timeout=2, retries=2)
    # the original platform's transfer: its own key, the order id in metadata[order_id]
    made = stripe.create_transfer(
        "platform-v1-7781",
        amount=900,
        currency="EUR",
        destination="acct_s",
        metadata={"order_id": "o1"},
    )
    stripe.create_transfer(  # another order's transfer to the same seller: not matched
        "platform-v1-7782",
        amount=400,
        currency="EUR",
        destination="acct_s",
        metadata={"order_id": "o2"},
    )
    ledger.orders.create(
        order_id="o1", buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=100
    )
    ledger.orders.mark_paid("o1")
    row = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=900, currency="EUR", order_id="o1"
    )
    with ledger.engine.begin() as c:  # imported: completed, no Stripe id
        c.execute(
            sa.text("UPDATE ledger_seller_transfers SET status = 'completed' WHERE id = :i"),
            {"i": row.id},
        )
    ledger.refunds.succeeded(ledger.refunds.create("o1").id)
    assert ledger.transfers.get(row.id).status == "reversal_pending"
    view = PaymentsProviderView(hyperswitch, stripe)
    assert isinstance(view, LegacyTransferFinder)
    report = run_sweep(
        ledger,
        view,
        rules=["transfers_without_stripe_id"],
        now=ledger.now() + dt.timedelta(hours=1),
    )
    assert report.applied == 1
    backfilled = ledger.transfers.get(row.id)
    assert (backfilled.stripe_transfer_id, backfilled.reversal_due) == (made.id, 900)
