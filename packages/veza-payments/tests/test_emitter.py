"""``WebhookEmitter``: signed deliveries to a real endpoint, retries, duplicates, reordering.

The endpoint is a real HTTP server on 127.0.0.1 that verifies every signature with the
package's own verifier and answers from a script (so retries can be forced); the docs
section's example is executed as written.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_payments import SIGNATURE_HEADER, verify_signature
from veza_payments.testing import FakeHyperswitch, WebhookEmitter

KEY = "whsec_emitter_test_key"
# The first ancestor holding the docs page: the repository root, whether this file runs
# from ``tests/`` or from mutmut's copy under ``mutants/tests/`` (one level deeper).
DOCS = next(
    (
        parent / "docs" / "payments" / "webhooks.md"
        for parent in Path(__file__).resolve().parents
        if (parent / "docs" / "payments" / "webhooks.md").is_file()
    ),
    Path(__file__).resolve().parents[3] / "docs" / "payments" / "webhooks.md",
)


class Receiver:
    """An endpoint that verifies signatures and answers ``script``'s statuses, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bool]] = []  # (event_id, event_type, signed)
        self.script: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                signed = verify_signature(body, self.headers.get(SIGNATURE_HEADER), keys=[KEY])
                event = json.loads(body)
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.received.append((event["event_id"], event["event_type"], signed))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks"

    def reset(self, script: list[int] | None = None) -> None:
        with self.lock:
            self.received.clear()
            self.script = list(script or [])


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


@pytest.fixture(scope="module")
def hyperswitch() -> Iterator[FakeHyperswitch]:
    with FakeHyperswitch() as fake:
        yield fake


def _payment(
    fake: FakeHyperswitch, payment_id: str, status: str = "requires_payment_method"
) -> None:
    with fake.lock:
        fake.payments[payment_id] = {"payment_id": payment_id, "status": status, "amount": 100}


def test_a_status_change_is_delivered_once_signed(
    hyperswitch: FakeHyperswitch, receiver: Receiver
) -> None:
    hyperswitch.reset()
    receiver.reset()
    emitter = WebhookEmitter(hyperswitch, receiver.url, key=KEY)
    _payment(hyperswitch, "pay_a")
    assert emitter.tick() == []  # requires_payment_method: Hyperswitch sends nothing
    hyperswitch.set_payment_status("pay_a", "succeeded")
    made = emitter.tick()
    assert [(d.event_type, d.status, d.attempt) for d in made] == [("payment_succeeded", 200, 1)]
    assert emitter.tick() == []  # no change, no event
    assert receiver.received == [("evt_payment_pay_a_succeeded", "payment_succeeded", True)]
    assert KEY not in repr(emitter)


def test_errors_are_retried_then_given_up(hyperswitch: FakeHyperswitch, receiver: Receiver) -> None:
    hyperswitch.reset()
    receiver.reset([503, 500])
    emitter = WebhookEmitter(hyperswitch, receiver.url, key=KEY, max_attempts=3)
    _payment(hyperswitch, "pay_r", "failed")
    assert [d.status for d in emitter.tick()] == [503]
    assert [d.status for d in emitter.tick()] == [500]
    assert [(d.status, d.attempt) for d in emitter.tick()] == [(200, 3)]
    assert emitter.pending == 0 and emitter.given_up == []
    hyperswitch.reset()
    receiver.reset([500, 500, 500])
    emitter = WebhookEmitter(hyperswitch, receiver.url, key=KEY, max_attempts=2)
    _payment(hyperswitch, "pay_g", "cancelled")
    emitter.tick()
    emitter.tick()
    assert emitter.pending == 0
    assert [(d.event_type, d.status, d.attempt) for d in emitter.given_up] == [
        ("payment_cancelled", 500, 2)
    ]
    assert emitter.tick() == []  # given up: not sent again


def test_an_endpoint_that_is_down_is_retried(hyperswitch: FakeHyperswitch) -> None:
    hyperswitch.reset()
    emitter = WebhookEmitter(hyperswitch, "http://127.0.0.1:9/nothing", key=KEY, timeout=1)
    event_id = emitter.emit("dispute_opened", {"dispute_id": "dp_1"})
    made = emitter.tick()
    assert [(d.event_id, d.status) for d in made] == [(event_id, 0)] and emitter.pending == 1


def test_duplicates_send_the_same_event_again(
    hyperswitch: FakeHyperswitch, receiver: Receiver
) -> None:
    hyperswitch.reset()
    receiver.reset()
    emitter = WebhookEmitter(hyperswitch, receiver.url, key=KEY, duplicates=2)
    _payment(hyperswitch, "pay_d", "succeeded")
    emitter.tick()
    assert [r[0] for r in receiver.received] == ["evt_payment_pay_d_succeeded"] * 3
    assert all(signed for _, _, signed in receiver.received)


def test_reorder_shuffles_a_ticks_deliveries(
    hyperswitch: FakeHyperswitch, receiver: Receiver
) -> None:
    orders = set()
    for seed in range(6):
        hyperswitch.reset()
        receiver.reset()
        emitter = WebhookEmitter(hyperswitch, receiver.url, key=KEY, reorder=True, seed=seed)
        for index in range(5):
            emitter.emit("mandate_revoked", {"mandate_id": f"m{index}"}, event_id=f"evt_{index}")
        emitter.tick()
        order = tuple(r[0] for r in receiver.received)
        assert sorted(order) == [f"evt_{i}" for i in range(5)]
        orders.add(order)
    assert len(orders) > 1  # the seeds give different orders
    hyperswitch.reset()
    receiver.reset()
    emitter = WebhookEmitter(hyperswitch, receiver.url, key=KEY)
    for index in range(5):
        emitter.emit("mandate_revoked", {"mandate_id": f"m{index}"}, event_id=f"evt_{index}")
    emitter.tick()
    assert [r[0] for r in receiver.received] == [f"evt_{i}" for i in range(5)]  # in order


def test_the_thread_delivers_and_stops(hyperswitch: FakeHyperswitch, receiver: Receiver) -> None:
    hyperswitch.reset()
    receiver.reset()
    with WebhookEmitter(hyperswitch, receiver.url, key=KEY, interval=0.02) as emitter:
        _payment(hyperswitch, "pay_t", "succeeded")
        emitter.tick()
        assert emitter.wait_idle(5)
    assert [r[1] for r in receiver.received] == ["payment_succeeded"]


def test_invalid_options_are_refused(hyperswitch: FakeHyperswitch) -> None:
    with pytest.raises(ValueError, match="duplicates"):
        WebhookEmitter(hyperswitch, "http://127.0.0.1:9", key=KEY, duplicates=-1)
    with pytest.raises(ValueError, match="max_attempts"):
        WebhookEmitter(hyperswitch, "http://127.0.0.1:9", key=KEY, max_attempts=0)


STATUSES = ["requires_payment_method", "processing", "succeeded", "failed", "cancelled"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(STATUSES)), max_size=8
    ),
    failures=st.lists(st.sampled_from([500, 503, 429]), max_size=4),
    duplicates=st.integers(0, 2),
    reorder=st.booleans(),
)
def test_every_reported_change_is_accepted_exactly_one_plus_duplicates_times(
    hyperswitch: FakeHyperswitch,
    receiver: Receiver,
    changes: list[tuple[str, str]],
    failures: list[int],
    duplicates: int,
    reorder: bool,
) -> None:
    """Property: with the endpoint failing a few times, every status change Hyperswitch
    reports reaches it, accepted exactly ``1 + duplicates`` times, each signed."""
    hyperswitch.reset()
    receiver.reset(failures)
    emitter = WebhookEmitter(
        hyperswitch, receiver.url, key=KEY, duplicates=duplicates, reorder=reorder, seed=1
    )
    expected: dict[str, int] = {}
    for payment_id, status in changes:
        if payment_id not in hyperswitch.payments:
            _payment(hyperswitch, payment_id)
        previous = hyperswitch.payments[payment_id]["status"]
        hyperswitch.set_payment_status(payment_id, status)
        emitter.tick()  # one tick per change: each change is seen
        if status != previous and status in ("succeeded", "failed", "cancelled"):
            event_id = f"evt_payment_{payment_id}_{status}"
            expected[event_id] = expected.get(event_id, 0) + 1 + duplicates
    for _ in range(len(failures) + 1):
        emitter.tick()
    assert emitter.pending == 0 and emitter.given_up == []
    accepted: dict[str, int] = {}
    for delivery in emitter.delivered:
        if delivery.ok:
            accepted[delivery.event_id] = accepted.get(delivery.event_id, 0) + 1
    assert accepted == expected
    assert all(signed for _, _, signed in receiver.received)
    assert len(receiver.received) == len(emitter.delivered)


def test_the_docs_example_runs_as_written() -> None:
    """docs/payments/webhooks.md's example test, executed."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Testing your endpoint: `WebhookEmitter`", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(match.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()
