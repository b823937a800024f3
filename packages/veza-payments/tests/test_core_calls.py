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

from veza_payments import InvalidRequestError, RetryPolicy
from veza_payments._core import Call, Core, Reply, Sleep

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
