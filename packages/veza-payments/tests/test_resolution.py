"""Resolution by reading: an error never hides an object the provider holds.

The router validates a refund's amount before the insert whose unique violation is
``HE_01``, so a repeated refund that exhausts the payment answers ``400 IR_13``. These
tests drive the client against the fake (which follows that order) with the outcomes
that used to be misreported: a lost response on a full refund, concurrent calls with
one key, a 2xx body that is not the object.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx
import pytest

from veza_payments import (
    AsyncHyperswitchClient,
    HyperswitchClient,
    IdempotencyConflictError,
    InvalidRequestError,
    NotFoundError,
    Payment,
    Refund,
    RetryPolicy,
    UnexpectedResponseError,
    payment_id_for,
    refund_id_for,
)
from veza_payments.testing import FakeHyperswitch, Fault

THREADS = 10


def _posts(fake: FakeHyperswitch, path: str) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == path)


def _paid(client: HyperswitchClient, key: str = "order", amount: int = 1000) -> Payment:
    return client.create_payment(key, amount=amount, currency="EUR", confirm=True)


def _race(fake: FakeHyperswitch, call: Callable[[HyperswitchClient], object]) -> list[object]:
    """Run ``call`` in THREADS threads released together; return results and errors."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        with HyperswitchClient(
            fake.api_key,
            base_url=fake.url,
            timeout=5,
            max_retries=RetryPolicy(total=8, backoff_base=0.01, backoff_max=0.05),
        ) as c:
            barrier.wait()
            try:
                result: object = call(c)
            except Exception as exc:
                result = exc
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


# --------------------------------------------------------------------------- the fake


def test_the_fake_checks_the_refund_amount_before_the_duplicate(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    """Exactly the router's answer to a repeated full refund: IR_13, not HE_01."""
    payment = _paid(client)
    body = {"payment_id": payment.payment_id, "refund_id": "r_same"}
    headers = {"api-key": fake.api_key}
    first = httpx.post(f"{fake.url}/refunds", json=body, headers=headers)
    again = httpx.post(f"{fake.url}/refunds", json=body, headers=headers)
    assert first.status_code == 200
    assert again.status_code == 400 and again.json()["error"]["code"] == "IR_13"
    partial = {"payment_id": payment.payment_id, "refund_id": "r_same", "amount": 1}
    refund_more = _paid(client, "order-2")
    httpx.post(
        f"{fake.url}/refunds",
        json={**partial, "payment_id": refund_more.payment_id, "refund_id": "r_p"},
        headers=headers,
    )
    dup = httpx.post(
        f"{fake.url}/refunds",
        json={**partial, "payment_id": refund_more.payment_id, "refund_id": "r_p"},
        headers=headers,
    )
    assert (dup.status_code, dup.json()["error"]["code"]) == (400, "HE_01")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 0}, 422, "IR_05"),
        ({"amount": -5}, 422, "IR_05"),
        ({"refund_id": "x" * 65}, 422, "IR_05"),
        ({"refund_id": "has space"}, 422, "IR_05"),
        ({"refund_id": "é"}, 422, "IR_05"),
    ],
)
def test_the_fake_refuses_malformed_refunds_like_the_router(
    client: HyperswitchClient,
    fake: FakeHyperswitch,
    body: dict[str, object],
    status: int,
    code: str,
) -> None:
    payment = _paid(client)
    response = httpx.post(
        f"{fake.url}/refunds",
        json={"payment_id": payment.payment_id, **body},
        headers={"api-key": fake.api_key},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_the_fake_refuses_a_refund_on_an_unsucceeded_payment_with_ir_14(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("o", amount=100, currency="EUR")
    with pytest.raises(InvalidRequestError) as info:
        client.create_refund("r", payment_id=payment.payment_id)
    assert (info.value.status, info.value.code) == (400, "IR_14")
    assert fake.refunds == {}


def test_the_fake_sends_no_429_unless_asked(fake: FakeHyperswitch) -> None:
    with pytest.raises(ValueError, match="429"):
        fake.inject(Fault("status", status=429))
    with FakeHyperswitch(rate_limit_faults=True) as gateway:
        gateway.inject(Fault("status", status=429))
        assert gateway.pending_faults == 1


# --------------------------------------------------------------------------- refunds


def test_a_full_refund_whose_response_was_lost_is_returned(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
    refund = client.create_refund("refund-row-1", payment_id=payment.payment_id)
    assert refund.refund_id == refund_id_for("refund-row-1") and refund.amount == 1000
    assert list(fake.refunds) == [refund.refund_id]
    # The caller retries the whole logical call later (a worker restarted): same answer.
    assert client.create_refund("refund-row-1", payment_id=payment.payment_id) == refund


def test_a_refund_of_the_remainder_after_a_lost_response_is_returned(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    client.create_refund("first", payment_id=payment.payment_id, amount=400)
    fake.inject(Fault("status", status=504, after_commit=True, path_prefix="/refunds"))
    rest = client.create_refund("second", payment_id=payment.payment_id, amount=600)
    assert rest.amount == 600 and len(fake.refunds) == 2


def test_ten_threads_one_key_full_refund_all_get_the_refund(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    outcomes = _race(fake, lambda c: c.create_refund("refund-row", payment_id=payment.payment_id))
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert errors == []
    assert {o.refund_id for o in outcomes if isinstance(o, Refund)} == {refund_id_for("refund-row")}
    assert len(fake.refunds) == 1 and fake.refunds[refund_id_for("refund-row")]["amount"] == 1000


def test_ten_threads_one_key_partial_refund_all_get_the_refund(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    outcomes = _race(
        fake, lambda c: c.create_refund("row", payment_id=payment.payment_id, amount=300)
    )
    assert all(isinstance(o, Refund) and o.amount == 300 for o in outcomes), outcomes
    assert len(fake.refunds) == 1


def test_ten_threads_one_key_payment_all_get_the_payment(fake: FakeHyperswitch) -> None:
    outcomes = _race(
        fake, lambda c: c.create_payment("order-x", amount=700, currency="EUR", confirm=True)
    )
    assert {o.payment_id for o in outcomes if isinstance(o, Payment)} == {payment_id_for("order-x")}
    assert len(outcomes) == THREADS and len(fake.payments) == 1


def test_a_raced_refund_with_another_amount_is_a_conflict_with_both_sides(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    refund = client.create_refund("row", payment_id=payment.payment_id)
    with pytest.raises(IdempotencyConflictError) as info:
        client.create_refund("row", payment_id=payment.payment_id, amount=5)
    assert info.value.existing == refund
    assert info.value.requested == {"amount": 5, "payment_id": payment.payment_id}


def test_a_key_reused_on_another_payment_is_a_conflict(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    """The refund conflict check compares the payment too, not only the amount."""
    first = _paid(client, "order-1")
    second = _paid(client, "order-2")
    refund = client.create_refund("row", payment_id=first.payment_id, amount=100)
    with pytest.raises(IdempotencyConflictError) as info:
        client.create_refund("row", payment_id=second.payment_id, amount=100)
    assert info.value.existing == refund
    assert fake.payments[second.payment_id]["amount_received"] == 1000
    assert len(fake.refunds) == 1


def test_the_provider_error_is_raised_only_when_no_object_exists(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    client.create_refund("a", payment_id=payment.payment_id)
    with pytest.raises(InvalidRequestError) as info:
        client.create_refund("b", payment_id=payment.payment_id)
    assert info.value.code == "IR_13" and not isinstance(info.value, IdempotencyConflictError)
    assert refund_id_for("b") not in fake.refunds
    # And it was looked for before being raised.
    assert any(r.path == f"/refunds/{refund_id_for('b')}" for r in fake.requests)


def test_an_he_01_of_another_kind_keeps_its_message(fake: FakeHyperswitch) -> None:
    """An HE_01 whose object is not there is raised as is, never as NotFoundError."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            error = {
                "type": "invalid_request",
                "code": "HE_01",
                "message": "The payment method with the specified details already exists",
            }
            return httpx.Response(400, json={"error": error})
        error = {"type": "invalid_request", "code": "HE_02", "message": "Refund does not exist"}
        return httpx.Response(404, json={"error": error})

    with (
        HyperswitchClient(
            "k", base_url="http://hs.test", transport=httpx.MockTransport(handler)
        ) as c,
        pytest.raises(InvalidRequestError) as info,
    ):
        c.create_refund("r", payment_id="p_1")
    assert not isinstance(info.value, NotFoundError)
    assert "payment method" in info.value.message


# --------------------------------------------------------------------------- 2xx bodies


@pytest.mark.parametrize("body", [{}, {"error": "text"}, {"status": "ok"}, []])
def test_a_2xx_that_is_not_the_object_raises_a_typed_error_after_reading(
    body: object,
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(200, json=body)
        error = {"type": "invalid_request", "code": "HE_02", "message": "Payment does not exist"}
        return httpx.Response(404, json={"error": error})

    with (
        HyperswitchClient(
            "k",
            base_url="http://hs.test",
            transport=httpx.MockTransport(handler),
            max_retries=0,
        ) as c,
        pytest.raises(UnexpectedResponseError) as info,
    ):
        c.create_payment("o", amount=5, currency="EUR")
    assert info.value.status == 200
    assert seen == ["POST /payments", f"GET /payments/{payment_id_for('o')}"]


def test_a_2xx_that_is_not_the_object_returns_the_object_the_provider_holds(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = _paid(client)
    stored = dict(fake.payments[payment.payment_id])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={})
        return httpx.Response(200, json=stored)

    with HyperswitchClient(
        "k", base_url="http://hs.test", transport=httpx.MockTransport(handler)
    ) as c:
        assert c.create_payment("order", amount=1000, currency="EUR") == payment


def test_the_async_client_resolves_by_reading_too(fake: FakeHyperswitch) -> None:
    async def scenario() -> list[Refund | BaseException]:
        async with AsyncHyperswitchClient(fake.api_key, base_url=fake.url, timeout=5) as c:
            payment = await c.create_payment("o", amount=500, currency="EUR", confirm=True)
            fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
            first = await c.create_refund("r", payment_id=payment.payment_id)
            rest = await asyncio.gather(
                *(c.create_refund("r", payment_id=payment.payment_id) for _ in range(5)),
                return_exceptions=True,
            )
            return [first, *rest]

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, Refund) for o in outcomes), outcomes
    assert len({o.refund_id for o in outcomes if isinstance(o, Refund)}) == 1
    assert len(fake.refunds) == 1
