"""Listing past Stripe's default page: a transfer's reversals, a connected account's payouts.

Stripe embeds only a transfer's 10 most recent reversals in the transfer object
(docs: "List all reversals": "the 10 most recent reversals are always available by
default on the transfer object. If you need more than those 10, you can use this API
method and the limit and starting_after parameters"). The fake embeds and pages the same
way, so a caller reading the embedded list cannot find the 11th from the top.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_payments import PaymentsConfigurationError, StripeConnect
from veza_payments.testing import FakeStripe


def _transfer_with_reversals(connect: StripeConnect, count: int) -> tuple[str, list[str]]:
    transfer = connect.create_transfer("t", amount=1000, currency="EUR", destination="acct_s")
    made = [connect.reverse_transfer(f"r{n}", transfer.id, amount=1).id for n in range(count)]
    return transfer.id, made


def test_a_transfer_embeds_only_its_10_most_recent_reversals(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    transfer_id, made = _transfer_with_reversals(connect, 12)
    embedded = connect.retrieve_transfer(transfer_id).raw["reversals"]
    assert [r["id"] for r in embedded["data"]] == list(reversed(made))[:10]
    assert embedded["has_more"] is True and embedded["total_count"] == 12
    assert len(fake_stripe.reversals_of(transfer_id)) == 12  # the fake still holds all


def test_list_reversals_pages_past_the_first_10(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    transfer_id, made = _transfer_with_reversals(connect, 13)
    listed = [r.id for r in connect.list_reversals(transfer_id, page_size=5)]
    assert listed == list(reversed(made))  # newest first, each once
    gets = [r for r in fake_stripe.requests if r.method == "GET" and "reversals" in r.path]
    assert len(gets) == 3  # 5 + 5 + 3
    assert [r.metadata["veza_idempotency_key"] for r in connect.list_reversals(transfer_id)][
        -1
    ] == "r0"


def test_the_reversal_list_defaults_to_10_and_bounds_limit(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    transfer_id, _ = _transfer_with_reversals(connect, 11)
    headers = {"Authorization": f"Bearer {fake_stripe.api_key}"}
    url = f"{fake_stripe.url}/v1/transfers/{transfer_id}/reversals"
    page = httpx.get(url, headers=headers).json()
    assert len(page["data"]) == 10 and page["has_more"] is True
    assert httpx.get(url, params={"limit": "101"}, headers=headers).status_code == 400
    assert httpx.get(url, params={"starting_after": "trr_nope"}, headers=headers).status_code == (
        404
    )
    with pytest.raises(PaymentsConfigurationError):
        next(connect.list_reversals(" "))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(0, 25), page_size=st.integers(1, 12))
def test_paging_yields_every_reversal_once_in_order(
    connect: StripeConnect, fake_stripe: FakeStripe, count: int, page_size: int
) -> None:
    fake_stripe.reset()
    transfer = connect.create_transfer("t", amount=100, currency="EUR", destination="acct_s")
    made = [connect.reverse_transfer(f"r{n}", transfer.id, amount=1).id for n in range(count)]
    listed = [r.id for r in connect.list_reversals(transfer.id, page_size=page_size)]
    assert listed == list(reversed(made))


def test_find_payouts_reads_the_connected_account_and_pages(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    connect.create_transfer("t1", amount=5000, currency="EUR", destination="acct_a")
    connect.create_transfer("t2", amount=5000, currency="EUR", destination="acct_b")
    made = [
        connect.create_payout(f"p{n}", amount=10, currency="EUR", stripe_account="acct_a").id
        for n in range(12)
    ]
    other = connect.create_payout("p0", amount=10, currency="EUR", stripe_account="acct_b")
    listed = [p.id for p in connect.find_payouts(stripe_account="acct_a", page_size=5)]
    assert listed == list(reversed(made)) and other.id not in listed
    found = list(
        connect.find_payouts(
            stripe_account="acct_a", metadata={"veza_idempotency_key": "p0"}, page_size=3
        )
    )
    assert [p.id for p in found] == [made[0]]  # the oldest, on the last page
    created = fake_stripe.payouts[made[5]]["created"]
    window = connect.find_payouts(stripe_account="acct_a", created={"gte": created})
    assert [p.id for p in window] == list(reversed(made[5:]))
    assert all(r.headers.get("stripe-account") == "acct_a" for r in fake_stripe.requests[-3:])


def test_settling_a_payout_returns_its_event_and_a_failure_gives_the_money_back(
    connect: StripeConnect, fake_stripe: FakeStripe
) -> None:
    connect.create_transfer("t", amount=900, currency="EUR", destination="acct_s")
    paid = connect.create_payout("p1", amount=400, currency="EUR", stripe_account="acct_s")
    failed = connect.create_payout("p2", amount=300, currency="EUR", stripe_account="acct_s")
    assert fake_stripe.balance("acct_s", "eur") == 200
    event = fake_stripe.settle_payout(paid.id, "paid")
    assert event["type"] == "payout.paid" and event["data"]["object"]["id"] == paid.id
    assert event["data"]["object"]["metadata"]["veza_idempotency_key"] == "p1"
    fake_stripe.settle_payout(failed.id, "failed")
    assert fake_stripe.balance("acct_s", "eur") == 500
    fake_stripe.settle_payout(failed.id, "failed")  # a second failure gives nothing more
    assert fake_stripe.balance("acct_s", "eur") == 500
    returned = fake_stripe.settle_payout(paid.id, "failed")  # a bank return after paid
    assert returned["type"] == "payout.failed" and fake_stripe.balance("acct_s", "eur") == 900
    with pytest.raises(ValueError, match="status"):
        fake_stripe.settle_payout(paid.id, "in_transit")
