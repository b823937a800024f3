"""The reference app's money flow through ``veza_ledger.flows`` (issues 14, 15 and 16).

Through the live demo server (embedded defaults, the sandbox's FakeHyperswitch with its
webhook emitter): the seller's transfer is ``seller_share`` of the order, and a full
refund whose response is lost, even when the client gives up reading it back, still
ends with the provider's refund id on the ledger row, the refund settled by its
webhook, and exactly one refund at the provider.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from veza_ledger import seller_share
from veza_payments.testing import Fault


@pytest.fixture
def buyer(demo: Any, login: Any) -> httpx.Client:
    return login(demo.url, "listener", demo.services.extra["demo_passwords"]["listener"])  # type: ignore[no-any-return]


@pytest.fixture
def creator(demo: Any, login: Any) -> httpx.Client:
    return login(demo.url, "artist-ada", demo.services.extra["demo_passwords"]["artist-ada"])  # type: ignore[no-any-return]


def _wait_for(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _paid_order(buyer: httpx.Client) -> dict[str, Any]:
    order = buyer.post("/api/v1/orders", json={"track_id": "demo-2"})
    assert order.status_code == 201, order.text
    answer: dict[str, Any] = order.json()
    buyer.post(f"/api/v1/sandbox/payments/{answer['payment_id']}/confirm").raise_for_status()
    _wait_for(lambda: buyer.get(f"/api/v1/orders/{answer['order_id']}").json()["status"] == "paid")
    return answer


def test_the_seller_is_queued_exactly_the_seller_share(demo: Any, buyer: httpx.Client) -> None:
    order = _paid_order(buyer)
    transfers = _wait_for(
        lambda: buyer.get(f"/api/v1/orders/{order['order_id']}").json()["transfers"]
    )
    row = demo.services.ledger.orders.get(order["order_id"])
    assert [t["amount"] for t in transfers] == [seller_share(row)]
    assert seller_share(row) == row.captured_amount - row.fee_amount  # a full capture


def test_a_lost_full_refund_the_client_gave_up_on_keeps_its_provider_id(
    demo: Any, buyer: httpx.Client, creator: httpx.Client
) -> None:
    """The PSP commits the full refund, its answer and every read-back are lost.

    The app answers 503 (the outcome is unknown), but the row already holds the
    provider's id, so the provider's ``refund_succeeded`` webhook settles it; a second
    attempt by the seller is refused by the ledger before any provider call.
    """
    fake = demo.services.sandbox.hyperswitch
    order = _paid_order(buyer)
    fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
    fake.inject(*[Fault("drop", method="GET", path_prefix="/refunds")] * 40)
    try:
        lost = creator.post(f"/api/v1/orders/{order['order_id']}/refunds", json={})  # FULL
    finally:
        fake.clear_faults()
    assert lost.status_code == 503, lost.text
    expected = demo.services.hyperswitch.refund_id_for(
        demo.services.ledger.refunds.of_order(order["order_id"])[0].id
    )
    assert expected in fake.refunds  # the provider made it
    refunds = _wait_for(
        lambda: [
            r
            for r in creator.get(f"/api/v1/orders/{order['order_id']}").json()["refunds"]
            if r["status"] == "succeeded"
        ]
    )
    assert [(r["provider_refund_id"], r["amount"]) for r in refunds] == [
        (expected, order["amount"])
    ]
    posts = len([r for r in fake.requests if r.method == "POST" and r.path == "/refunds"])
    again = creator.post(f"/api/v1/orders/{order['order_id']}/refunds", json={})
    assert again.status_code in {409, 422}, again.text
    assert len([r for r in fake.requests if r.method == "POST" and r.path == "/refunds"]) == posts
    at_provider = [r for r in fake.refunds.values() if r["payment_id"] == order["payment_id"]]
    assert len(at_provider) == 1
    assert creator.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "refunded"
