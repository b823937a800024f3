"""The sans-IO core's requests, as any driver receives them.

The core yields :class:`Call` values; the httpx clients happen to upper-case the method,
but RFC 9110 (9.1) makes method tokens case-sensitive, so the core must say ``GET`` and
``POST`` itself for any other driver. Blank ids are refused before any request, naming
the argument.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from veza_payments import (
    AuthenticationError,
    ConnectorError,
    InvalidRequestError,
    PaymentBlockedError,
    ProviderError,
    RetryPolicy,
    UnexpectedResponseError,
)
from veza_payments._core import Call, Core, Reply, Sleep, error_from, outcome_unknown

PAYMENT = {
    "payment_id": "pay_1",
    "status": "requires_capture",
    "amount": 500,
    "currency": "EUR",
    "amount_capturable": 500,
    "amount_received": 0,
}


def _calls(flow: Generator[Call | Sleep, Reply | None, Any], *bodies: dict[str, Any]) -> list[Call]:
    """Answer each Call with the next body (HTTP 200); return the Calls seen."""
    seen: list[Call] = []
    answers = iter(bodies)
    reply: Reply | None = None
    while True:
        try:
            step = flow.send(reply)
        except StopIteration:
            return seen
        assert isinstance(step, Call)
        seen.append(step)
        reply = Reply(200, {}, json.dumps(next(answers)).encode())


def _core() -> Core:
    return Core(namespace="", retry=RetryPolicy(total=0))


def test_reads_are_get_and_writes_are_post_in_upper_case() -> None:
    core = _core()
    captured = {**PAYMENT, "status": "succeeded", "amount_received": 500}
    calls = _calls(core.capture_payment("k1", "pay_1", amount_to_capture=None), PAYMENT, captured)
    assert [(c.method, c.path) for c in calls] == [
        ("GET", "/payments/pay_1"),
        ("POST", "/payments/pay_1/capture"),
    ]
    cancelled = {**PAYMENT, "status": "cancelled"}
    calls = _calls(core.cancel_payment("k2", "pay_1", reason=None), PAYMENT, cancelled)
    assert [c.method for c in calls] == ["GET", "POST"]
    calls = _calls(core.retrieve_payment("pay_1", force_sync=False), PAYMENT)
    assert [(c.method, c.params) for c in calls] == [("GET", None)]


@pytest.mark.parametrize("operation", ["capture", "cancel", "retrieve"])
def test_a_blank_payment_id_is_refused_before_any_request_naming_it(operation: str) -> None:
    core = _core()
    flow: Generator[Call | Sleep, Reply | None, Any]
    if operation == "capture":
        flow = core.capture_payment("k", " ", amount_to_capture=None)
    elif operation == "cancel":
        flow = core.cancel_payment("k", " ", reason=None)
    else:
        flow = core.retrieve_payment(" ", force_sync=False)
    with pytest.raises(InvalidRequestError, match=r"^payment_id is required, got ' '$"):
        next(flow)


def test_create_calls_carry_every_optional_field_and_the_key() -> None:
    core = _core()
    flow = core.create_payment(
        "k3",
        amount=500,
        currency="EUR",
        confirm=False,
        capture_method="manual",
        customer_id="cus_1",
        description="order 7",
        metadata={"order": "7"},
        return_url="https://shop.example/back",
    )
    (call,) = _calls(flow, PAYMENT)
    assert (call.method, call.path, call.idempotency_key) == ("POST", "/payments", "k3")
    assert call.json is not None
    assert {k: v for k, v in call.json.items() if k != "payment_id"} == {
        "amount": 500,
        "currency": "EUR",
        "confirm": False,
        "capture_method": "manual",
        "customer_id": "cus_1",
        "description": "order 7",
        "metadata": {"order": "7"},
        "return_url": "https://shop.example/back",
    }
    refund = {"refund_id": "r_1", "payment_id": "pay_1", "amount": 100, "currency": "EUR"}
    flow_r = core.create_refund(
        "k4", payment_id="pay_1", amount=100, reason="asked", metadata={"ticket": "9"}
    )
    (call,) = _calls(flow_r, refund)
    assert (call.method, call.path, call.idempotency_key) == ("POST", "/refunds", "k4")
    assert call.json is not None
    assert call.json["metadata"] == {"ticket": "9"}
    (read,) = _calls(core.retrieve_refund("r_1"), refund)
    assert (read.method, read.path) == ("GET", "/refunds/r_1")


def _error(status: int, error: object) -> ProviderError:
    return error_from(Reply(status, {}, json.dumps({"error": error}).encode()))


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (400, {"type": "blocked", "code": "HE_03", "message": "m"}, PaymentBlockedError),
        (300, {"type": "invalid_request", "code": "HE_03", "message": "m"}, InvalidRequestError),
        (200, {"type": "api", "code": "HE_03", "message": "m"}, PaymentBlockedError),
        (400, {"type": "connector", "code": "HE_00", "message": "m"}, ConnectorError),
        (400, {"type": "invalid_request", "code": "CE_01", "message": "m"}, ConnectorError),
        (400, {"type": "invalid_request", "code": "IR_01", "message": "m"}, AuthenticationError),
    ],
)
def test_the_error_type_and_code_choose_the_class(
    status: int, error: dict[str, str], expected: type[ProviderError]
) -> None:
    assert isinstance(_error(status, error), expected)


def test_an_error_message_carries_its_reason_and_a_non_json_body_is_quoted() -> None:
    err = _error(400, {"type": "invalid_request", "code": "IR_06", "message": "bad", "reason": "x"})
    assert str(err) == "[400] IR_06 bad (x)"
    raw = Reply(502, {}, b"\xffbad gateway" + b"." * 300)
    err = error_from(raw)
    assert str(err).startswith("[502] \ufffdbad gateway")
    assert str(err).count(".") == 200 - len("\ufffdbad gateway") + 0
    assert err.body == raw.body.decode("utf-8", "replace")
    assert _error(400, {"code": 7, "message": "m"}).code is None


@pytest.mark.parametrize(
    ("status", "unknown"), [(None, True), (500, True), (501, True), (499, False)]
)
def test_an_outcome_is_unknown_without_an_answer_or_on_a_5xx(
    status: int | None, unknown: bool
) -> None:
    assert outcome_unknown(InvalidRequestError("m", status=status, code=None)) is unknown


def test_an_unexpected_2xx_body_leaves_the_outcome_unknown() -> None:
    assert outcome_unknown(UnexpectedResponseError("m", status=200, code=None))
