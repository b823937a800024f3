"""Tests written from mutmut's survivors: each pins a behaviour no other test checked.

Every test names what it pins; the mutation session (``nox -s mutation``) is where
their absence showed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import types
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import httpx
import pytest

from veza_payments import (
    APIConnectionError,
    HyperswitchClient,
    HyperswitchError,
    IdempotencyConflictError,
    InMemoryWebhookLog,
    InvalidIdempotencyKeyError,
    InvalidRequestError,
    MissingIdempotencyKeyError,
    PaymentsConfigurationError,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
    WebhookEvent,
    WebhookIntake,
    WebhookOutcome,
    payment_id_for,
    refund_id_for,
    sign_payload,
    verify_signature,
)
from veza_payments._core import Call, Core, Reply, Sleep
from veza_payments._errors import hyperswitch_error
from veza_payments.testing import FakeHyperswitch, Fault

KEY = "whsec_mutation_gaps"
NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
PEER = "198.51.100.7"


def _intake(log: InMemoryWebhookLog, **kwargs: int) -> WebhookIntake:
    return WebhookIntake(log, KEY, clock=lambda: NOW, **kwargs)


def _body(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "event_type": "payment_succeeded"}).encode()


async def _stream(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def _assert_record(outcome: WebhookOutcome, log: InMemoryWebhookLog, request_id: str) -> None:
    record = log.records[-1]
    assert outcome.record is record
    assert outcome.processing_result == record.processing_result
    assert (record.received_at, record.source_ip, record.request_id) == (NOW, PEER, request_id)


# --------------------------------------------------------------------------- webhook paths


@pytest.mark.parametrize("mode", ["handle", "handle_stream", "ahandle", "ahandle_stream"])
def test_every_entry_point_records_time_peer_and_request_id(mode: str) -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log)
    intake.on("payment_succeeded", lambda _e: None)
    body = _body("evt_1")
    headers = {"x-webhook-signature-512": sign_payload(body, KEY), "x-request-id": "req-ok"}
    if mode == "handle":
        outcome = intake.handle(headers, body, source_ip=PEER)
    elif mode == "handle_stream":
        outcome = intake.handle_stream(headers, iter([body]), source_ip=PEER)
    elif mode == "ahandle":
        outcome = asyncio.run(intake.ahandle(headers, body, source_ip=PEER))
    else:
        outcome = asyncio.run(intake.ahandle_stream(headers, _stream(body), source_ip=PEER))
    assert (outcome.status, outcome.processing_result) == (200, "ok")
    _assert_record(outcome, log, "req-ok")


@pytest.mark.parametrize("mode", ["handle", "handle_stream", "ahandle_stream"])
def test_every_refusal_records_time_peer_request_id_and_escaped_first_bytes(mode: str) -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log, max_body=4)
    body = b"\xff\xfeabcdef"
    headers = {"x-request-id": "req-big", "user-agent": "ua"}
    if mode == "handle":
        outcome = intake.handle(headers, body, source_ip=PEER)
    elif mode == "handle_stream":
        outcome = intake.handle_stream(headers, iter([body]), source_ip=PEER)
    else:
        outcome = asyncio.run(intake.ahandle_stream(headers, _stream(body), source_ip=PEER))
    assert outcome.status == 413
    _assert_record(outcome, log, "req-big")
    record = log.records[-1]
    assert record.signature_valid is False and record.user_agent == "ua"
    # The first bytes, escaped where not UTF-8: up to 1 KiB of a body already in memory,
    # what was read (limit + 1 bytes) of a stream.
    expected = "\\xff\\xfeabcdef" if mode == "handle" else "\\xff\\xfeabc"
    assert record.payload == expected
    assert record.processing_result == "refused: body_too_large (limit 4, received 8)"


@pytest.mark.parametrize("mode", ["handle_stream", "ahandle_stream"])
def test_header_refusals_on_the_streaming_paths_are_recorded(mode: str) -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log, max_headers=64)
    headers = {"x-request-id": "req-hdr", "x-pad": "p" * 100}
    pulled: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        pulled.append(b"{}")
        yield b"{}"

    async def achunks() -> AsyncIterator[bytes]:
        for chunk in chunks():
            yield chunk

    if mode == "handle_stream":
        outcome = intake.handle_stream(headers, chunks(), source_ip=PEER)
    else:
        outcome = asyncio.run(intake.ahandle_stream(headers, achunks(), source_ip=PEER))
    assert outcome.status == 431 and pulled == []  # refused before the body is read
    _assert_record(outcome, log, "req-hdr")


@pytest.mark.parametrize("mode", ["handle_stream", "ahandle_stream"])
def test_a_broken_body_stream_is_a_recorded_500_never_an_exception(mode: str) -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log)

    def chunks() -> Iterator[bytes]:
        yield b"{"
        raise ConnectionResetError

    async def achunks() -> AsyncIterator[bytes]:
        yield b"{"
        raise ConnectionResetError

    if mode == "handle_stream":
        outcome = intake.handle_stream({}, chunks(), source_ip=PEER)
    else:
        outcome = asyncio.run(intake.ahandle_stream({}, achunks(), source_ip=PEER))
    assert outcome.status == 500
    assert outcome.processing_result == "error: intake failure: ConnectionResetError"
    record = log.records[0]
    assert (record.received_at, record.source_ip) == (NOW, PEER)


def test_a_refusal_is_logged_with_its_request_id_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _intake(InMemoryWebhookLog(), max_body=1).handle({"x-request-id": "req-9"}, b"xy")
    assert caplog.messages == [
        "webhook refused (request id req-9): body_too_large (limit 1, received 2)"
    ]


def test_a_declared_length_refusal_on_the_async_path_is_recorded() -> None:
    log = InMemoryWebhookLog()
    outcome = asyncio.run(
        _intake(log, max_body=10).ahandle_stream(
            {"content-length": "11", "x-request-id": "r"}, _stream(b"x" * 11), source_ip=PEER
        )
    )
    assert outcome.status == 413
    assert log.records[0].processing_result == (
        "refused: body_too_large (limit 10, received 0, declared 11)"
    )


def test_a_refusal_without_a_request_id_gets_a_fresh_uuid() -> None:
    log = InMemoryWebhookLog()
    _intake(log, max_body=1).handle({}, b"xx")
    _intake(log, max_body=1).handle({}, b"xx")
    first, second = (r.request_id for r in log.records)
    assert len(first) == 36 and first != second


def test_the_intake_repr_lists_family_patterns() -> None:
    intake = _intake(InMemoryWebhookLog())
    intake.on("dispute_*", lambda _e: None)
    assert "patterns=['dispute_*']" in repr(intake)


@pytest.mark.parametrize("bad", [0, -1, True])
def test_max_headers_must_be_positive(bad: int) -> None:
    with pytest.raises(PaymentsConfigurationError, match="max_headers"):
        WebhookIntake(InMemoryWebhookLog(), KEY, max_headers=bad)


# --------------------------------------------------------------------------- client bodies


def test_refund_and_cancel_bodies_and_the_capture_header(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment("o", amount=1000, currency="EUR", confirm=True)
    client.create_refund("r", payment_id=payment.payment_id, amount=5, reason="dup")
    assert json.loads(fake.requests[-1].body)["reason"] == "dup"
    client.create_refund("r2", payment_id=payment.payment_id, amount=5)
    assert "reason" not in json.loads(fake.requests[-1].body)
    other = client.create_payment("o2", amount=1000, currency="EUR", capture_method="manual")
    fake.set_payment_status(other.payment_id, "requires_capture")
    client.cancel_payment("cancel-key", other.payment_id)
    (cancel,) = [r for r in fake.requests if r.path.endswith("/cancel")]
    assert json.loads(cancel.body) == {} and cancel.headers["idempotency-key"] == "cancel-key"
    assert client.retrieve_payment(other.payment_id).status == "cancelled"
    assert fake.requests[-1].query == ""  # force_sync only when asked


def test_the_refund_id_carries_the_namespace(fake: FakeHyperswitch) -> None:
    with HyperswitchClient(fake.api_key, base_url=fake.url, idempotency_namespace="shopa") as c:
        payment = c.create_payment("o", amount=100, currency="EUR", confirm=True)
        refund = c.create_refund("r", payment_id=payment.payment_id)
    assert refund.refund_id == refund_id_for("r", namespace="shopa") != refund_id_for("r")


def test_a_bad_amount_to_capture_names_the_field(client: HyperswitchClient) -> None:
    with pytest.raises(PaymentsConfigurationError, match=r"^amount_to_capture must"):
        client.capture_payment("c", "p_1", amount_to_capture=0)


def test_a_blank_refund_id_is_named_in_the_error(client: HyperswitchClient) -> None:
    with pytest.raises(InvalidRequestError, match=r"^refund_id is required"):
        client.retrieve_refund(" ")


def test_the_first_manual_multiple_capture_after_a_lost_response_is_made_once(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual_multiple"
    )
    fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/payments/"))
    done = client.capture_payment("c1", payment.payment_id, amount_to_capture=300)
    assert done.amount_received == 300
    assert fake.payments[payment.payment_id]["amount_received"] == 300


def test_a_2xx_that_is_not_a_refund_is_not_taken_for_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"payment_id": "p_1", "status": "succeeded"})
        error = {"type": "invalid_request", "code": "HE_02", "message": "Refund does not exist"}
        return httpx.Response(404, json={"error": error})

    with (
        HyperswitchClient(
            "k", base_url="http://hs.test", transport=httpx.MockTransport(handler), max_retries=0
        ) as c,
        pytest.raises(UnexpectedResponseError),
    ):
        c.create_refund("r", payment_id="p_1", amount=5)


def test_a_conflict_keeps_the_provider_request_id_body_and_says_what_it_is(
    client: HyperswitchClient,
) -> None:
    payment = client.create_payment("o", amount=1000, currency="EUR", confirm=True)
    client.create_refund("r", payment_id=payment.payment_id, amount=10)
    with pytest.raises(IdempotencyConflictError) as info:
        client.create_refund("r", payment_id=payment.payment_id, amount=11)
    error = info.value
    assert error.request_id and error.body["error"]["code"] == "HE_01"
    assert f"refund {refund_id_for('r')} of 10" in error.message


# --------------------------------------------------------------------------- retry


class _Top:
    """A random source whose ``uniform`` returns the top of the range."""

    def uniform(self, _low: float, high: float) -> float:
        return high


@pytest.mark.parametrize(("attempts", "ceiling"), [(0, 0.5), (1, 1.0), (3, 4.0), (5, 10.0)])
def test_full_jitter_draws_up_to_base_times_two_to_the_attempts(
    attempts: int, ceiling: float
) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=10.0, attempts=attempts)
    assert policy.delay(None, _Top()) == ceiling  # type: ignore[arg-type]


# --------------------------------------------------------------------------- second run


def _signed(event_id: str = "evt_h") -> tuple[bytes, str]:
    body = _body(event_id)
    return body, sign_payload(body, KEY)


def test_header_pairs_skip_malformed_items_and_decode_bytes_as_latin_1() -> None:
    """Raw ASGI-style pairs: a malformed item is skipped, not the end of the headers."""
    log = InMemoryWebhookLog()
    intake = _intake(log)
    intake.on("payment_succeeded", lambda _e: None)
    body, signature = _signed()
    pairs = [
        ("just-a-name",),
        (b"X-Webhook-Signature-512", signature.encode()),
        (b"User-Agent", b"caf\xe9"),
    ]
    outcome = intake.handle(pairs, body, source_ip=PEER)  # type: ignore[arg-type]
    assert (outcome.status, outcome.processing_result) == (200, "ok")
    assert log.records[-1].user_agent == "café"


def test_the_first_of_repeated_headers_is_the_one_used() -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log)
    intake.on("payment_succeeded", lambda _e: None)
    body, signature = _signed()
    pairs = [
        ("X-Request-Id", "req-first"),
        ("x-request-id", "req-second"),
        ("X-Webhook-Signature-512", signature),
        ("x-webhook-signature-512", "0" * 128),
    ]
    outcome = intake.handle(pairs, body, source_ip=PEER)
    assert (outcome.status, log.records[-1].request_id) == (200, "req-first")


def test_no_headers_at_all_is_an_unsigned_delivery() -> None:
    log = InMemoryWebhookLog()
    outcome = _intake(log).handle(None, _body("evt_n"), source_ip=PEER)
    assert (outcome.status, outcome.processing_result) == (401, "signature_invalid")


@pytest.mark.parametrize("mode", ["handle_stream", "ahandle_stream"])
def test_headers_that_fail_to_read_are_a_recorded_500_with_time_and_peer(mode: str) -> None:
    """A broken header iterable (a one-shot server object) is recorded, never raised."""
    log = InMemoryWebhookLog()
    intake = _intake(log)

    def broken_headers() -> Iterator[tuple[str, str]]:
        yield ("x-request-id", "req-broken")
        raise ConnectionResetError

    if mode == "handle_stream":
        outcome = intake.handle_stream(broken_headers(), iter([b"{}"]), source_ip=PEER)
    else:
        outcome = asyncio.run(
            intake.ahandle_stream(broken_headers(), _stream(b"{}"), source_ip=PEER)
        )
    assert outcome.status == 500
    assert outcome.processing_result == "error: intake failure: ConnectionResetError"
    (record,) = log.records
    assert (record.received_at, record.source_ip) == (NOW, PEER)


def test_reads_inside_a_capture_do_not_force_a_connector_sync(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    """``force_sync`` costs a connector call; only an explicit retrieve asks for it."""
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual"
    )
    assert client.capture_payment("c", payment.payment_id).amount_received == 1000
    reads = [r for r in fake.requests if r.method == "GET"]
    assert reads and all(r.query == "" for r in reads)
    client.retrieve_payment(payment.payment_id, force_sync=True)
    assert fake.requests[-1].query == "force_sync=true"


def test_a_blank_payment_id_is_refused_before_any_request(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    with pytest.raises(InvalidRequestError, match=r"^payment_id is required") as info:
        client.capture_payment("c", "")
    assert (info.value.status, info.value.code) == (None, None)
    assert fake.requests == []


def test_a_missing_idempotency_key_error_says_what_to_use() -> None:
    with pytest.raises(MissingIdempotencyKeyError) as info:
        refund_id_for(None)  # type: ignore[arg-type]
    assert str(info.value) == (
        "an idempotency key is required for every money-moving call (use the row id "
        "that stands for this operation), got None"
    )


def test_an_invalid_idempotency_key_error_shows_its_length_and_first_40_characters() -> None:
    key = "a b" + "c" * 60
    with pytest.raises(InvalidIdempotencyKeyError) as info:
        refund_id_for(key)
    assert str(info.value) == (
        "an idempotency key is 1 to 255 visible ASCII characters (no space, control or "
        f"non-ASCII character), got 63 characters: {key[:40]!r}"
    )


def test_a_bad_namespace_error_names_the_setting_and_the_value() -> None:
    with pytest.raises(PaymentsConfigurationError) as info:
        refund_id_for("k", namespace="Shop-A")
    assert str(info.value) == (
        "idempotency_namespace must be 0-8 lower-case letters or digits, got 'Shop-A'"
    )


class _FailOnce(logging.Filter):
    """A logging filter that raises on its first record (a broken log pipeline)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.failed:
            self.failed = True
            msg = f"log pipeline down: {record.msg}"
            raise RuntimeError(msg)
        return True


@pytest.fixture
def broken_log_pipeline() -> Iterator[_FailOnce]:
    """The intake's logger raises once, the way a failing structured-logging filter does."""
    logger = logging.getLogger("veza_payments.webhooks")
    failing = _FailOnce()
    logger.addFilter(failing)
    try:
        yield failing
    finally:
        logger.removeFilter(failing)


@pytest.mark.parametrize("mode", ["handle", "handle_stream", "ahandle_stream"])
@pytest.mark.parametrize("delivery", ["unsigned", "too_large"])
def test_a_failing_log_call_is_a_recorded_500_never_an_exception(
    mode: str, delivery: str, broken_log_pipeline: _FailOnce
) -> None:
    """Both the refusal and the 401 path log a warning; its failure must not escape."""
    log = InMemoryWebhookLog()
    intake = _intake(log, max_body=8)
    body = b"x" * 9 if delivery == "too_large" else b"{}"
    if mode == "handle":
        outcome = intake.handle({}, body, source_ip=PEER)
    elif mode == "handle_stream":
        outcome = intake.handle_stream({}, iter([body]), source_ip=PEER)
    else:
        outcome = asyncio.run(intake.ahandle_stream({}, _stream(body), source_ip=PEER))
    assert broken_log_pipeline.failed
    assert (outcome.status, outcome.processing_result) == (
        500,
        "error: intake failure: RuntimeError",
    )
    (record,) = log.records
    assert (record.received_at, record.source_ip) == (NOW, PEER)


def test_an_event_without_an_id_is_processed() -> None:
    """No event id: nothing to dedupe or serialise on, but the handler still runs."""
    log = InMemoryWebhookLog()
    intake = _intake(log)
    seen: list[str] = []
    intake.on("refund_succeeded", lambda e: seen.append(e.event_type))
    body = json.dumps({"event_type": "refund_succeeded"}).encode()
    outcome = intake.handle(
        {"x-webhook-signature-512": sign_payload(body, KEY)}, body, source_ip=PEER
    )
    assert (outcome.status, outcome.processing_result, seen) == (200, "ok", ["refund_succeeded"])
    assert log.records[-1].event_id is None


def test_deliveries_of_different_events_are_not_serialised_together() -> None:
    """Only deliveries of one event id wait for each other; other events proceed.

    The first handler waits (bounded, so a regression fails instead of hanging) for the
    second event's handler to run while it still holds its own event's lock.
    """
    intake = _intake(InMemoryWebhookLog())
    second_ran = threading.Event()
    overlapped: list[bool] = []

    def handler(event: WebhookEvent) -> None:
        if event.event_id == "evt_first":
            overlapped.append(second_ran.wait(timeout=10))
        else:
            second_ran.set()

    intake.on("payment_succeeded", handler)
    first, second = _body("evt_first"), _body("evt_second")
    worker = threading.Thread(
        target=intake.handle, args=({"x-webhook-signature-512": sign_payload(first, KEY)}, first)
    )
    worker.start()
    outcome = intake.handle({"x-webhook-signature-512": sign_payload(second, KEY)}, second)
    worker.join()
    assert outcome.status == 200 and overlapped == [True]


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_bad_max_body_error_starts_with_the_setting_name(bad: object) -> None:
    with pytest.raises(PaymentsConfigurationError) as info:
        WebhookIntake(InMemoryWebhookLog(), KEY, max_body=bad)  # type: ignore[arg-type]
    assert str(info.value) == f"max_body must be a positive int of bytes, got {bad!r}"


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_bad_max_headers_error_starts_with_the_setting_name(bad: object) -> None:
    with pytest.raises(PaymentsConfigurationError) as info:
        WebhookIntake(InMemoryWebhookLog(), KEY, max_headers=bad)  # type: ignore[arg-type]
    assert str(info.value) == f"max_headers must be a positive int of bytes, got {bad!r}"


@pytest.mark.parametrize("keys", [[], [""], ["whsec_ok", b""]], ids=["none", "empty", "one-empty"])
def test_no_usable_webhook_key_is_refused_with_a_sentence(keys: list[str | bytes]) -> None:
    with pytest.raises(ValueError, match=r"^at least one non-empty webhook key is required$"):
        verify_signature(b"{}", "00", keys=keys)


# --------------------------------------------------------------------------- core deadline
# The sans-IO core driven by hand with a settable clock: the deadline's arithmetic, which
# the slow trickling-server tests (left out of the mutation run) check end to end. No
# test name here says "deadline": the mutation config deselects ``-k deadline``.


class _Clock:
    """A monotonic clock the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_call_out_of_time_makes_no_request() -> None:
    core = Core(namespace="", retry=RetryPolicy(max_elapsed=0), clock=_Clock(100.0))
    with pytest.raises(APIConnectionError) as info:
        next(core.retrieve_payment("pay_1", force_sync=False))
    assert isinstance(info.value, HyperswitchError)
    assert info.value.status is None
    assert "GET /payments/pay_1: the call's deadline passed" in str(info.value)


def test_each_attempt_gets_the_time_left_and_running_out_raises_the_last_failure() -> None:
    clock = _Clock(100.0)
    core = Core(namespace="", retry=RetryPolicy(total=5, max_elapsed=10), timeout=30, clock=clock)
    flow = core.retrieve_payment("pay_1", force_sync=False)
    first = next(flow)
    assert isinstance(first, Call) and first.timeout == 10  # min(timeout, time left)
    clock.now = 104.0
    lost = hyperswitch_error(APIConnectionError)("connection reset", status=None)
    assert isinstance(flow.throw(lost), Sleep)
    clock.now = 107.0
    second = flow.send(None)
    assert isinstance(second, Call) and second.timeout == 3
    clock.now = 107.5
    last = hyperswitch_error(APIConnectionError)("read timeout", status=None)
    assert isinstance(flow.throw(last), Sleep)  # the backoff (at most 0.5 s) ends in time
    clock.now = 110.0  # the sleep overran: no time left at all
    with pytest.raises(APIConnectionError) as info:
        flow.send(None)
    assert info.value is last


def test_a_payment_conflict_says_what_the_key_was_used_for(client: HyperswitchClient) -> None:
    client.create_payment("o", amount=1000, currency="EUR", confirm=True)
    with pytest.raises(IdempotencyConflictError) as info:
        client.create_payment("o", amount=1200, currency="EUR", confirm=True)
    assert f"payment {payment_id_for('o')} of 1000 EUR" in info.value.message


def test_any_mapping_is_sent_as_metadata(client: HyperswitchClient, fake: FakeHyperswitch) -> None:
    """A read-only mapping (``MappingProxyType``) is copied into the JSON body."""
    metadata = types.MappingProxyType({"order": "42"})
    client.create_payment("o", amount=1000, currency="EUR", metadata=metadata)
    assert json.loads(fake.requests[-1].body)["metadata"] == {"order": "42"}


def _payment_flow(core: Core) -> Generator[Call | Sleep, Reply | None, Any]:
    flow = core.retrieve_payment("pay_1", force_sync=False)
    assert isinstance(next(flow), Call)
    return flow


def test_the_default_attempt_timeout_is_30_seconds() -> None:
    call = next(Core(namespace="", retry=RetryPolicy()).retrieve_payment("p", force_sync=False))
    assert isinstance(call, Call) and call.timeout == 30


def test_a_retry_that_would_end_out_of_time_is_not_slept_for() -> None:
    """Retry-After 5 s with exactly 5 s left: give up now instead of sleeping in vain."""
    clock = _Clock(100.0)
    core = Core(namespace="", retry=RetryPolicy(max_elapsed=10), clock=clock)
    flow = _payment_flow(core)
    clock.now = 105.0
    with pytest.raises(ServerError):
        flow.send(Reply(503, {"retry-after": "5"}, b'{"error": {"type": "server_error"}}'))


def test_the_sleep_before_a_retry_says_which_call_and_why() -> None:
    flow = _payment_flow(Core(namespace="", retry=RetryPolicy()))
    lost = hyperswitch_error(APIConnectionError)("connection reset", status=None)
    step = flow.throw(lost)
    assert isinstance(step, Sleep)
    assert step.reason == f"GET /payments/pay_1: {lost}"


def test_a_3xx_is_never_taken_for_the_object() -> None:
    flow = _payment_flow(Core(namespace="", retry=RetryPolicy(total=0)))
    with pytest.raises(InvalidRequestError) as info:
        flow.send(
            Reply(300, {}, json.dumps({"payment_id": "pay_1", "status": "succeeded"}).encode())
        )
    assert info.value.status == 300


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (b"<html>" + b"x" * 300 + b"\xff", "<html>" + "x" * 194),
        (b'{"not": "a payment"}', {"not": "a payment"}),
        (b"[1, 2]", [1, 2]),
    ],
)
def test_a_2xx_that_is_not_the_object_is_an_error_keeping_what_came(
    body: bytes, kept: object
) -> None:
    """A proxy's page or a changed API: the error keeps the request id and the body."""
    flow = _payment_flow(Core(namespace="", retry=RetryPolicy(total=0)))
    with pytest.raises(UnexpectedResponseError) as info:
        flow.send(Reply(200, {"x-request-id": "req-proxy"}, body))
    error = info.value
    assert (error.status, error.request_id, error.body) == (200, "req-proxy", kept)
    assert (
        "GET /payments/pay_1: a 200 answer whose body is not the object asked for "
        "(a proxy, or a changed API)"
    ) in str(error)


def test_a_non_utf_8_proxy_page_is_kept_with_replacement_characters() -> None:
    flow = _payment_flow(Core(namespace="", retry=RetryPolicy(total=0)))
    with pytest.raises(UnexpectedResponseError) as info:
        flow.send(Reply(200, {}, b"\xff" * 199 + b"ab"))
    assert info.value.body == "\ufffd" * 199 + "a"


@pytest.mark.parametrize("signing_key", ["whsec_current", "whsec_retired"])
def test_every_key_of_a_rotation_verifies(signing_key: str) -> None:
    body = _body("evt_rot")
    signature = sign_payload(body, signing_key)
    assert verify_signature(body, signature, keys=["whsec_current", "whsec_retired"])
    assert not verify_signature(body, signature, keys=["whsec_other", "whsec_another"])
