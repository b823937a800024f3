"""The money flow as package API (issue 16): ``veza_ledger.flows`` against FakeHyperswitch.

Every test runs on SQLite and PostgreSQL (the ``ledger`` fixture), against the real
HTTP fake of Hyperswitch with a client that has an ``idempotency_namespace``: an id
derived without it (the old docs' ``payment_id_for(order_id)``) would differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import FlowConflictError, Ledger, seller_share
from veza_ledger.flows import (
    astart_payment,
    astart_refund,
    queue_seller_transfer,
    seller_transfer_id,
    start_payment,
    start_refund,
)
from veza_payments import (
    APIConnectionError,
    AsyncHyperswitchClient,
    HyperswitchClient,
    InvalidRequestError,
    RetryPolicy,
    payment_id_for,
    refund_id_for,
)
from veza_payments.testing import FakeHyperswitch, Fault

NAMESPACE = "shop1"


@pytest.fixture(scope="module")
def psp() -> Iterator[FakeHyperswitch]:
    with FakeHyperswitch() as server:
        yield server


@pytest.fixture
def hyperswitch(psp: FakeHyperswitch) -> Iterator[HyperswitchClient]:
    psp.reset()
    with HyperswitchClient(
        psp.api_key,
        base_url=psp.url,
        idempotency_namespace=NAMESPACE,
        timeout=5.0,
        sleep=lambda _s: None,
    ) as client:
        yield client


def _buy(ledger: Ledger, hyperswitch: HyperswitchClient, order_id: str, amount: int = 1000) -> str:
    started = start_payment(
        ledger,
        hyperswitch,
        order_id=order_id,
        buyer_id="buyer",
        seller_id="seller",
        amount=amount,
        currency="EUR",
        fee_amount=150,
    )
    return started.payment.payment_id


def test_the_payment_id_is_the_clients_and_is_stored_before_the_call(
    ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch
) -> None:
    """The provider never answers: the order still holds the namespaced id."""
    psp.inject(Fault("drop", method="POST", path_prefix="/payments"))
    with (
        HyperswitchClient(
            psp.api_key,
            base_url=psp.url,
            idempotency_namespace=NAMESPACE,
            max_retries=RetryPolicy(total=0),
            sleep=lambda _s: None,
        ) as once,
        pytest.raises(APIConnectionError),
    ):
        _buy(ledger, once, "order-lost")
    order = ledger.orders.get("order-lost")
    assert order.status == "pending_payment"
    assert order.psp_payment_id == payment_id_for("order-lost", namespace=NAMESPACE)
    assert order.psp_payment_id != payment_id_for("order-lost")  # the namespace matters
    assert psp.payments == {}


def test_a_retried_start_reuses_the_order_and_the_payment(
    ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch
) -> None:
    first = _buy(ledger, hyperswitch, "order-1")
    again = _buy(ledger, hyperswitch, "order-1")
    assert first == again == hyperswitch.payment_id_for("order-1")
    assert list(psp.payments) == [first]
    assert ledger.orders.by_payment_id(first).id == "order-1"
    with pytest.raises(FlowConflictError, match="amount"):
        _buy(ledger, hyperswitch, "order-1", amount=999)
    assert list(psp.payments) == [first]


def _paid(ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch, oid: str) -> str:
    payment_id = _buy(ledger, hyperswitch, oid)
    psp.set_payment_status(payment_id, "succeeded")
    ledger.orders.mark_paid(oid)
    return payment_id


def test_a_full_refund_whose_response_is_lost_keeps_the_provider_id(
    ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch
) -> None:
    """Issue 14: the retry of a full refund is IR_13; the client reads the id back."""
    payment_id = _paid(ledger, hyperswitch, psp, "order-2")
    psp.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
    started = start_refund(ledger, hyperswitch, order_id="order-2", refund_id="refund-2")
    expected = refund_id_for("refund-2", namespace=NAMESPACE)
    assert started.provider_refund.refund_id == expected == started.row.hyperswitch_refund_id
    assert ledger.refunds.get("refund-2").hyperswitch_refund_id == expected
    assert started.row.amount == 1000
    assert [r["refund_id"] for r in psp.refunds.values() if r["payment_id"] == payment_id] == [
        expected
    ]


def test_the_refund_id_is_recorded_even_when_the_client_gives_up(
    ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch
) -> None:
    _paid(ledger, hyperswitch, psp, "order-3")
    psp.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
    psp.inject(Fault("drop", method="GET", path_prefix="/refunds"))
    with (
        HyperswitchClient(
            psp.api_key,
            base_url=psp.url,
            idempotency_namespace=NAMESPACE,
            max_retries=RetryPolicy(total=0),
            sleep=lambda _s: None,
        ) as once,
        pytest.raises(APIConnectionError),
    ):
        start_refund(ledger, once, order_id="order-3", refund_id="refund-3")
    row = ledger.refunds.get("refund-3")
    expected = refund_id_for("refund-3", namespace=NAMESPACE)
    assert (row.status, row.hyperswitch_refund_id) == ("pending", expected)
    assert expected in psp.refunds  # the provider made it: the webhook will find the row
    assert ledger.refunds.by_provider_id(expected).id == "refund-3"


def test_a_refusal_fails_the_row_and_frees_its_amount(
    ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch
) -> None:
    """A payment the provider never captured: 400 IR_14, no refund exists."""
    _buy(ledger, hyperswitch, "order-4")
    ledger.orders.mark_paid("order-4")  # the ledger believes it; the provider does not
    with pytest.raises(InvalidRequestError):
        start_refund(ledger, hyperswitch, order_id="order-4", amount=400, refund_id="refund-4")
    assert ledger.refunds.get("refund-4").status == "failed"
    assert psp.refunds == {}
    assert ledger.refunds.create("order-4", 1000).amount == 1000  # all of it is refundable


def test_a_refund_without_a_payment_id_is_refused(
    ledger: Ledger, hyperswitch: HyperswitchClient
) -> None:
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=100, currency="EUR", order_id="order-5"
    )
    ledger.orders.mark_paid(order.id)
    with pytest.raises(FlowConflictError, match="no provider payment id"):
        start_refund(ledger, hyperswitch, order_id=order.id)
    assert ledger.refunds.of_order(order.id) == []


def test_the_seller_transfer_is_the_share_once(
    ledger: Ledger, hyperswitch: HyperswitchClient
) -> None:
    start_payment(
        ledger,
        hyperswitch,
        order_id="order-6",
        buyer_id="b",
        seller_id="seller",
        amount=1000,
        currency="EUR",
        fee_amount=150,
    )
    assert queue_seller_transfer(ledger, "order-6", destination="acct_s") is None  # unpaid
    order = ledger.orders.mark_paid("order-6", captured_amount=500)
    transfer = queue_seller_transfer(ledger, "order-6", destination="acct_s")
    assert transfer is not None
    assert (transfer.id, transfer.amount) == (seller_transfer_id("order-6"), 425)
    assert transfer.amount == seller_share(order) != 500 - 150  # not computed by hand
    again = queue_seller_transfer(ledger, "order-6", destination="acct_s")
    assert again is not None and again.id == transfer.id
    assert [t.id for t in ledger.transfers.of_order("order-6")] == [transfer.id]


def test_a_fully_refunded_order_owes_no_transfer(
    ledger: Ledger, hyperswitch: HyperswitchClient, psp: FakeHyperswitch
) -> None:
    _paid(ledger, hyperswitch, psp, "order-7")
    started = start_refund(ledger, hyperswitch, order_id="order-7")
    ledger.refunds.succeeded(started.row.id)
    assert queue_seller_transfer(ledger, "order-7", destination="acct_s") is None
    assert ledger.transfers.of_order("order-7") == []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amount=st.integers(1, 10**7),
    fee=st.integers(0, 10**7),
    captured=st.integers(1, 10**7),
    queued_first=st.integers(0, 10**7),
)
def test_queue_tops_up_to_the_share_and_never_past_it(
    ledger: Ledger, amount: int, fee: int, captured: int, queued_first: int
) -> None:
    """Whatever was transferred by hand first, the queued transfer only fills the rest."""
    fee, captured = min(fee, amount), min(captured, amount)
    order = ledger.orders.create(
        buyer_id="b", seller_id="seller", amount=amount, currency="EUR", fee_amount=fee
    )
    order = ledger.orders.mark_paid(order.id, captured_amount=captured)
    share = seller_share(order)
    first = min(queued_first, share)
    if first:
        ledger.transfers.create(
            seller_id="seller", destination="acct", amount=first, currency="EUR", order_id=order.id
        )
    queued = queue_seller_transfer(ledger, order.id, destination="acct")
    total = sum(t.amount for t in ledger.transfers.of_order(order.id))
    assert total == share
    assert (queued is None) == (first == share)


async def _no_sleep(_seconds: float) -> None:
    return None


def test_the_async_twins_follow_the_same_rule(ledger: Ledger, psp: FakeHyperswitch) -> None:
    """``astart_payment`` / ``astart_refund``: ids stored before the awaited call."""
    psp.reset()

    async def scenario() -> tuple[str, str]:
        async with AsyncHyperswitchClient(
            psp.api_key,
            base_url=psp.url,
            idempotency_namespace=NAMESPACE,
            max_retries=RetryPolicy(total=0),
            sleep=_no_sleep,
        ) as client:
            psp.inject(Fault("drop", method="POST", path_prefix="/payments"))
            with pytest.raises(APIConnectionError):
                await astart_payment(
                    ledger,
                    client,
                    order_id="order-a",
                    buyer_id="b",
                    seller_id="s",
                    amount=700,
                    currency="EUR",
                )
            lost_id = ledger.orders.get("order-a").psp_payment_id or ""
            started = await astart_payment(
                ledger,
                client,
                order_id="order-a",
                buyer_id="b",
                seller_id="s",
                amount=700,
                currency="EUR",
            )  # the retry: same order, same payment
            psp.set_payment_status(started.payment.payment_id, "succeeded")
            ledger.orders.mark_paid("order-a")
            psp.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
            psp.inject(Fault("drop", method="GET", path_prefix="/refunds"))
            with pytest.raises(APIConnectionError):
                await astart_refund(ledger, client, order_id="order-a", refund_id="refund-a")
            return lost_id, started.payment.payment_id

    lost_id, paid_id = asyncio.run(scenario())
    assert lost_id == paid_id == payment_id_for("order-a", namespace=NAMESPACE)
    assert list(psp.payments) == [paid_id]
    row = ledger.refunds.get("refund-a")
    assert row.hyperswitch_refund_id == refund_id_for("refund-a", namespace=NAMESPACE)
    assert list(psp.refunds) == [row.hyperswitch_refund_id]
