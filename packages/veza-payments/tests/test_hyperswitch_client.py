"""The Hyperswitch client against a real local HTTP server that behaves like Hyperswitch."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import httpx
import pytest

from veza_payments import (
    APIConnectionError,
    AsyncHyperswitchClient,
    AuthenticationError,
    HyperswitchClient,
    IdempotencyConflictError,
    InvalidRequestError,
    MissingIdempotencyKeyError,
    NotFoundError,
    Payment,
    PaymentBlockedError,
    PaymentsConfigurationError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    payment_id_for,
    refund_id_for,
)
from veza_payments.testing import FakeHyperswitch, Fault


def _posts(fake: FakeHyperswitch, path: str) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == path)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("bad", [None, "", "   "])
def test_a_missing_key_fails_before_any_io(
    client: HyperswitchClient, fake: FakeHyperswitch, bad: str | None
) -> None:
    with pytest.raises(MissingIdempotencyKeyError):
        client.create_payment(bad, amount=100, currency="EUR")  # type: ignore[arg-type]
    with pytest.raises(MissingIdempotencyKeyError):
        client.create_refund(bad, payment_id="p_x")  # type: ignore[arg-type]
    with pytest.raises(MissingIdempotencyKeyError):
        client.capture_payment(bad, "p_x")  # type: ignore[arg-type]
    with pytest.raises(MissingIdempotencyKeyError):
        client.cancel_payment(bad, "p_x")  # type: ignore[arg-type]
    assert fake.requests == []


def test_the_key_becomes_the_payment_id_and_the_header(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("order-42", amount=1999, currency="eur", confirm=True)
    assert payment.payment_id == payment_id_for("order-42")
    (request,) = fake.requests
    body = json.loads(request.body)
    assert body["payment_id"] == payment.payment_id
    assert body["amount"] == 1999 and body["currency"] == "EUR"
    assert request.headers["idempotency-key"] == "order-42"
    assert request.headers["api-key"] == fake.api_key
    assert fake.payments[payment.payment_id]["amount"] == 1999


def test_a_repeated_logical_call_returns_the_first_object(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    first = client.create_payment("order-1", amount=500, currency="EUR", confirm=True)
    again = client.create_payment("order-1", amount=500, currency="EUR", confirm=True)
    assert again == first
    assert len(fake.payments) == 1
    assert _posts(fake, "/payments") == 2  # the second POST met HE_01 and was resolved


def test_a_reused_key_with_another_amount_is_a_conflict(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    first = client.create_payment("order-1", amount=500, currency="EUR")
    with pytest.raises(IdempotencyConflictError) as info:
        client.create_payment("order-1", amount=501, currency="EUR")
    assert info.value.existing == first
    assert info.value.requested == {"amount": 501, "currency": "EUR"}
    assert info.value.code == "HE_01" and info.value.status == 400
    with pytest.raises(IdempotencyConflictError):
        client.create_payment("order-1", amount=500, currency="USD")
    assert len(fake.payments) == 1


def test_namespaces_keep_two_services_apart(fake: FakeHyperswitch) -> None:
    with (
        HyperswitchClient(fake.api_key, base_url=fake.url, idempotency_namespace="shop") as a,
        HyperswitchClient(fake.api_key, base_url=fake.url, idempotency_namespace="subs") as b,
    ):
        pa = a.create_payment("1", amount=100, currency="EUR")
        pb = b.create_payment("1", amount=200, currency="EUR")
    assert pa.payment_id != pb.payment_id and len(fake.payments) == 2


def test_the_fake_like_hyperswitch_ignores_the_idempotency_header(fake: FakeHyperswitch) -> None:
    """Why ids are derived: the header alone does not stop a second charge."""
    headers = {"api-key": fake.api_key, "idempotency-key": "same"}
    body = {"amount": 100, "currency": "EUR"}
    for _ in range(2):
        assert httpx.post(f"{fake.url}/payments", json=body, headers=headers).status_code == 200
    assert len(fake.payments) == 2


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "fault",
    [
        Fault("drop", after_commit=True),
        Fault("drop", after_commit=False),
        Fault("status", status=502, after_commit=True),
        Fault("status", status=503, after_commit=True),
        Fault("status", status=504, after_commit=True),
        Fault("status", status=500, after_commit=False),
        Fault("status", status=422, after_commit=False),
        Fault("status", status=429, retry_after=2),
        Fault("slow", delay=0.8, after_commit=True),
        Fault("slow", delay=0.8, after_commit=False),
    ],
    ids=lambda f: f"{f.kind}-{f.status}-{'after' if f.after_commit else 'before'}",
)
def test_every_fault_yields_exactly_one_payment(
    client: HyperswitchClient, fake: FakeHyperswitch, fault: Fault
) -> None:
    fake.rate_limit_faults = True  # a gateway in front of the router may answer 429
    fake.inject(attrs_evolve(fault, method="POST", path_prefix="/payments"))
    payment = client.create_payment("order-7", amount=1234, currency="EUR", confirm=True)
    assert list(fake.payments) == [payment_id_for("order-7")]
    stored = fake.payments[payment.payment_id]
    assert (payment.amount, payment.currency, payment.status) == (
        stored["amount"],
        stored["currency"],
        stored["status"],
    )
    assert fake.pending_faults == 0


def attrs_evolve(fault: Fault, **changes: object) -> Fault:
    import attrs

    return attrs.evolve(fault, **changes)  # type: ignore[arg-type]


def test_retry_after_is_honoured(
    client: HyperswitchClient, fake: FakeHyperswitch, sleeps: list[float]
) -> None:
    fake.rate_limit_faults = True
    fake.inject(Fault("status", status=429, retry_after=7))
    client.create_payment("o", amount=1, currency="EUR")
    assert sleeps == [7]


def test_retry_after_is_capped(fake: FakeHyperswitch, sleeps: list[float]) -> None:
    fake.inject(Fault("status", status=503, retry_after=3600))
    policy = RetryPolicy(retry_after_max=5)
    with HyperswitchClient(
        fake.api_key, base_url=fake.url, max_retries=policy, sleep=sleeps.append
    ) as c:
        c.create_payment("o", amount=1, currency="EUR")
    assert sleeps == [5]


def test_retries_are_bounded_and_then_raise(
    client: HyperswitchClient, fake: FakeHyperswitch, sleeps: list[float]
) -> None:
    fake.inject(*[Fault("status", status=503, method="POST") for _ in range(10)])
    with pytest.raises(ServerError) as info:
        client.create_payment("o", amount=1, currency="EUR")
    assert info.value.status == 503
    assert len(sleeps) == 5 and _posts(fake, "/payments") == 6
    # Each unknown outcome was settled by reading the id before the next attempt.
    assert sum(r.method == "GET" for r in fake.requests) == 6
    assert fake.payments == {}


def test_total_time_is_bounded(fake: FakeHyperswitch) -> None:
    fake.inject(*[Fault("status", status=503, method="POST") for _ in range(10)])
    elapsed = [0.0]
    policy = RetryPolicy(total=100, max_elapsed=1.0)
    with HyperswitchClient(fake.api_key, base_url=fake.url, max_retries=policy) as c:
        c._core.clock = lambda: elapsed[0]  # type: ignore[method-assign]

        def sleep(seconds: float) -> None:
            elapsed[0] += 0.4

        c._sleep = sleep  # type: ignore[method-assign]
        with pytest.raises(ServerError):
            c.create_payment("o", amount=1, currency="EUR")
    assert _posts(fake, "/payments") == 3  # 0, 0.4, 0.8; none starts after the deadline


def test_rate_limit_exhausted_raises_rate_limit_error(fake: FakeHyperswitch) -> None:
    fake.rate_limit_faults = True
    fake.inject(*[Fault("status", status=429, retry_after=0) for _ in range(3)])
    with (
        HyperswitchClient(fake.api_key, base_url=fake.url, max_retries=2) as c,
        pytest.raises(RateLimitError),
    ):
        c.create_payment("o", amount=1, currency="EUR")


def test_connection_refused_is_an_api_connection_error(sleeps: list[float]) -> None:
    with FakeHyperswitch() as gone:
        url = gone.url
    with (
        HyperswitchClient("k", base_url=url, max_retries=1, sleep=sleeps.append) as c,
        pytest.raises(APIConnectionError) as info,
    ):
        c.retrieve_payment("p_1")
    assert info.value.status is None and len(sleeps) == 1


def test_other_4xx_are_never_retried(
    client: HyperswitchClient, fake: FakeHyperswitch, sleeps: list[float]
) -> None:
    with pytest.raises(NotFoundError) as info:
        client.retrieve_payment("p_missing")
    assert info.value.code == "HE_02" and info.value.request_id
    assert sleeps == [] and len(fake.requests) == 1


def test_a_wrong_key_is_an_authentication_error(fake: FakeHyperswitch) -> None:
    with (
        HyperswitchClient("wrong", base_url=fake.url) as c,
        pytest.raises(AuthenticationError) as info,
    ):
        c.create_payment("o", amount=1, currency="EUR")
    assert (info.value.status, info.value.code) == (401, "IR_01")
    assert "wrong" not in str(info.value)


def test_concurrent_requests_meet_resource_busy_and_still_agree(fake: FakeHyperswitch) -> None:
    """Two workers create the same order at once: 422 HE_00, retry, HE_01, same payment."""
    fake.busy_for = 0.5
    results: list[Payment] = []
    together = threading.Barrier(2)  # both clients ready before either sends

    def worker() -> None:
        with HyperswitchClient(
            fake.api_key, base_url=fake.url, max_retries=RetryPolicy(total=8, backoff_base=0.05)
        ) as c:
            together.wait()
            results.append(c.create_payment("order-9", amount=300, currency="EUR"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(fake.payments) == 1
    # The provider really answered 422 HE_00 to one of them.
    assert _posts(fake, "/payments") >= 3


# --------------------------------------------------------------------------- responses


def test_a_blocked_payment_arrives_as_200_and_raises(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    fake.blocked_customers.add("cus_fraud")
    with pytest.raises(PaymentBlockedError) as info:
        client.create_payment(
            "o", amount=100, currency="EUR", confirm=True, customer_id="cus_fraud"
        )
    assert info.value.status == 200 and info.value.code == "HE_03"
    # A retry of the same logical call returns the (failed) payment, never a second one.
    again = client.create_payment(
        "o", amount=100, currency="EUR", confirm=True, customer_id="cus_fraud"
    )
    assert again.status == "failed" and len(fake.payments) == 1


def test_unknown_and_conflicted_statuses_are_preserved(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("o", amount=100, currency="EUR")
    fake.set_payment_status(payment.payment_id, "conflicted")
    got = client.retrieve_payment(payment.payment_id)
    assert got.status == "conflicted" and got.needs_attention
    fake.set_payment_status(payment.payment_id, "some_new_status_2027")
    got = client.retrieve_payment(payment.payment_id, force_sync=True)
    assert got.status == "some_new_status_2027" and got.needs_attention
    assert fake.requests[-1].query == "force_sync=true"
    fake.set_payment_status(payment.payment_id, "succeeded")
    assert not client.retrieve_payment(payment.payment_id).needs_attention


def test_secrets_stay_out_of_reprs_and_logs(
    client: HyperswitchClient, fake: FakeHyperswitch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.inject(Fault("status", status=503))
    payment = client.create_payment("o", amount=100, currency="EUR")
    assert payment.client_secret and payment.client_secret not in repr(payment)
    assert fake.api_key not in repr(client)
    assert fake.api_key not in caplog.text and payment.client_secret not in caplog.text
    assert "retrying" in caplog.text


def test_a_2xx_without_json_is_retried_not_trusted(
    fake: FakeHyperswitch, sleeps: list[float]
) -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            return httpx.Response(200, content=b"<html>captive portal</html>")
        return httpx.Response(
            200, json={"payment_id": "p_1", "status": "succeeded", "amount": 5, "currency": "EUR"}
        )

    transport = httpx.MockTransport(handler)
    with HyperswitchClient(
        "k", base_url="http://hs.test", transport=transport, sleep=sleeps.append
    ) as c:
        assert c.retrieve_payment("p_1").status == "succeeded"
    assert calls[0] == 2


def test_ids_in_paths_cannot_change_the_route(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    with pytest.raises(NotFoundError):
        client.retrieve_payment("../refunds/x")
    assert fake.requests[-1].path == "/payments/..%2Frefunds%2Fx"
    with pytest.raises(InvalidRequestError):
        client.retrieve_payment("")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"api_key": ""}, "api_key"),
        ({"api_key": "k", "base_url": "ftp://x"}, "base_url"),
        ({"api_key": "k", "timeout": 0}, "timeout"),
        ({"api_key": "k", "max_retries": -1}, "max_retries"),
        ({"api_key": "k", "idempotency_namespace": "Bad-NS"}, "idempotency_namespace"),
    ],
)
def test_misconfiguration_fails_at_construction(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(PaymentsConfigurationError, match=match):
        HyperswitchClient(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- capture/cancel


def test_capture_after_a_lost_response_is_success(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual"
    )
    assert payment.status == "requires_capture"
    fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/payments/"))
    captured = client.capture_payment("capture-o", payment.payment_id)
    assert captured.status == "succeeded" and captured.amount_received == 1000
    # Captured once: a second logical capture reads the state and does not POST again.
    posts_before = _posts(fake, f"/payments/{payment.payment_id}/capture")
    assert client.capture_payment("capture-o", payment.payment_id) == captured
    assert _posts(fake, f"/payments/{payment.payment_id}/capture") == posts_before


def test_partial_capture(client: HyperswitchClient, fake: FakeHyperswitch) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual"
    )
    captured = client.capture_payment("c", payment.payment_id, amount_to_capture=600)
    assert (captured.status, captured.amount_received) == ("partially_captured", 600)
    assert json.loads(fake.requests[-1].body) == {"amount_to_capture": 600}


def test_cancel_after_a_lost_response_is_success(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("o", amount=1000, currency="EUR")
    fake.inject(
        Fault("status", status=504, after_commit=True, method="POST", path_prefix="/payments/")
    )
    cancelled = client.cancel_payment("cancel-o", payment.payment_id, reason="duplicate")
    assert cancelled.status == "cancelled"
    assert fake.payments[payment.payment_id]["cancellation_reason"] == "duplicate"


def test_capture_in_a_wrong_state_still_raises(client: HyperswitchClient) -> None:
    payment = client.create_payment("o", amount=1000, currency="EUR")
    with pytest.raises(InvalidRequestError) as info:
        client.capture_payment("c", payment.payment_id)
    assert info.value.code == "IR_14"


# --------------------------------------------------------------------------- refunds


def test_partial_refunds_carry_their_real_amount(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("o", amount=1000, currency="EUR", confirm=True)
    first = client.create_refund(
        "refund-1",
        payment_id=payment.payment_id,
        amount=300,
        reason="partial",
        metadata={"row": "1"},
    )
    assert first.refund_id == refund_id_for("refund-1")
    assert first.amount == 300 and json.loads(fake.requests[-1].body)["amount"] == 300
    with pytest.raises(InvalidRequestError) as info:
        # None means the amount captured, as in the router: more than what is left.
        client.create_refund("refund-2", payment_id=payment.payment_id)
    assert info.value.code == "IR_13"
    rest = client.create_refund("refund-2", payment_id=payment.payment_id, amount=700)
    assert rest.amount == 700
    with pytest.raises(InvalidRequestError) as info:
        client.create_refund("refund-3", payment_id=payment.payment_id, amount=1)
    assert info.value.code == "IR_13"
    assert sum(r["amount"] for r in fake.refunds.values()) == 1000


def test_a_refund_retried_after_commit_is_found_not_repeated(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("o", amount=1000, currency="EUR", confirm=True)
    fake.inject(Fault("drop", after_commit=True, path_prefix="/refunds"))
    refund = client.create_refund("refund-1", payment_id=payment.payment_id, amount=400)
    assert list(fake.refunds) == [refund.refund_id] and refund.amount == 400
    with pytest.raises(IdempotencyConflictError) as info:
        client.create_refund("refund-1", payment_id=payment.payment_id, amount=500)
    assert info.value.existing == refund
    assert client.retrieve_refund(refund.refund_id) == refund


def test_pending_refunds_are_polled(client: HyperswitchClient, fake: FakeHyperswitch) -> None:
    fake.refund_status = "pending"
    payment = client.create_payment("o", amount=1000, currency="EUR", confirm=True)
    refund = client.create_refund("r", payment_id=payment.payment_id)
    assert refund.status == "pending" and not refund.is_terminal
    fake.set_refund_status(refund.refund_id, "succeeded")
    assert client.retrieve_refund(refund.refund_id).is_terminal


# --------------------------------------------------------------------------- async twin


def test_the_async_client_behaves_the_same(fake: FakeHyperswitch) -> None:
    async def scenario() -> tuple[Payment, Payment, str]:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        async with AsyncHyperswitchClient(
            fake.api_key, base_url=fake.url, timeout=0.5, sleep=sleep
        ) as c:
            fake.inject(Fault("drop", after_commit=True, method="POST"))
            first = await c.create_payment("order-1", amount=900, currency="EUR", confirm=True)
            again = await c.create_payment("order-1", amount=900, currency="EUR", confirm=True)
            with pytest.raises(IdempotencyConflictError):
                await c.create_payment("order-1", amount=901, currency="EUR")
            refund = await c.create_refund("r-1", payment_id=first.payment_id, amount=100)
            assert (await c.retrieve_refund(refund.refund_id)).amount == 100
            with pytest.raises(MissingIdempotencyKeyError):
                await c.create_payment("", amount=1, currency="EUR")
            assert slept == []  # the lost response was settled by reading, not retried
            return first, again, repr(c)

    first, again, text = asyncio.run(scenario())
    assert first == again and len(fake.payments) == 1 and fake.api_key not in text
