"""What the intake answers and records on each path, and what it tells the operator.

Written from mutmut survivors: each test checks an outcome field, a record field, a
log line or a registration rule that no other test looked at.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from veza_payments import (
    InMemoryWebhookLog,
    PaymentsConfigurationError,
    WebhookEvent,
    WebhookIntake,
    WebhookOutcome,
    sign_payload,
    stripe_signature_header,
)

KEY = "whsec_outcomes"
NOW = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)
PEER = "203.0.113.9"


def _intake(log: InMemoryWebhookLog, **kwargs: object) -> WebhookIntake:
    return WebhookIntake(log, KEY, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def _body(event_id: object = "evt_1", event_type: object = "payment_succeeded") -> bytes:
    return json.dumps(
        {"event_id": event_id, "event_type": event_type, "content": {"object": {"p": 1}}}
    ).encode()


def _headers(body: bytes, **extra: str) -> dict[str, str]:
    return {"X-Webhook-Signature-512": sign_payload(body, KEY), **extra}


def _assert_event(outcome: WebhookOutcome, event_id: str) -> None:
    event = outcome.event
    assert isinstance(event, WebhookEvent)
    assert (event.event_id, event.event_type, dict(event.object)) == (
        event_id,
        "payment_succeeded",
        {"p": 1},
    )


# --------------------------------------------------------------------------- outcomes


def test_every_handled_outcome_carries_its_event_and_a_valid_signature_flag() -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log)
    calls: list[str] = []

    @intake.on("payment_succeeded")
    def handler(event: WebhookEvent) -> None:
        calls.append(str(event.event_id))
        if len(calls) == 1:
            raise RuntimeError("database down")

    body = _body("evt_7")
    failed = intake.handle(_headers(body), body, source_ip=PEER)
    ok = intake.handle(_headers(body), body, source_ip=PEER)
    skipped = intake.handle(_headers(body), body, source_ip=PEER)
    assert [o.status for o in (failed, ok, skipped)] == [500, 200, 200]
    assert [o.processing_result for o in (failed, ok, skipped)] == [
        "error: database down",
        "ok",
        "skipped",
    ]
    for outcome in (failed, ok, skipped):
        _assert_event(outcome, "evt_7")
        assert outcome.record is not None
        assert outcome.record.signature_valid is True
    assert [r.processing_result for r in log.records] == ["error: database down", "ok", "skipped"]


def test_an_event_without_a_type_is_skipped_and_recorded_as_such() -> None:
    log = InMemoryWebhookLog()
    body = json.dumps({"event_id": "evt_2"}).encode()
    outcome = _intake(log).handle(_headers(body), body, source_ip=PEER)
    assert (outcome.status, outcome.processing_result, outcome.event) == (200, "skipped", None)
    assert log.records[-1].processing_result == "skipped"


def test_a_non_string_event_id_is_not_taken_for_one() -> None:
    log = InMemoryWebhookLog()
    body = _body(event_id=42)
    _intake(log).handle(_headers(body), body, source_ip=PEER)
    assert log.records[-1].event_id is None


def test_a_handler_failure_without_a_message_records_its_type_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = InMemoryWebhookLog()
    intake = _intake(log)

    @intake.on("payment_succeeded")
    def handler(event: WebhookEvent) -> None:
        raise ValueError

    body = _body("evt_3")
    with caplog.at_level(logging.WARNING, logger="veza_payments.webhooks"):
        outcome = intake.handle(_headers(body, **{"X-Request-Id": "req-3"}), body, source_ip=PEER)
    assert outcome.processing_result == "error: ValueError"
    assert [r.getMessage() for r in caplog.records] == [
        "webhook handler for payment_succeeded failed (event evt_3, request id req-3): ValueError"
    ]


def test_an_invalid_signature_is_logged_with_request_id_and_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = _body()
    headers = {"X-Webhook-Signature-512": "0" * 128, "X-Request-Id": "req-4"}
    with caplog.at_level(logging.WARNING, logger="veza_payments.webhooks"):
        outcome = _intake(InMemoryWebhookLog()).handle(headers, body, source_ip=PEER)
    assert outcome.status == 401
    assert [r.getMessage() for r in caplog.records] == [
        f"webhook signature invalid (request id req-4, source {PEER})"
    ]


def test_a_failing_log_lookup_is_logged_and_the_event_processed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class LookupFails(InMemoryWebhookLog):
        def processed_successfully(self, event_id: str) -> bool:
            raise OSError("log unreachable")

    log = LookupFails()
    intake = _intake(log)
    seen: list[WebhookEvent] = []
    intake.on("payment_succeeded", seen.append)
    body = _body("evt_5")
    with caplog.at_level(logging.WARNING, logger="veza_payments.webhooks"):
        outcome = intake.handle(_headers(body), body, source_ip=PEER)
    assert (outcome.status, len(seen)) == (200, 1)
    assert [r.getMessage() for r in caplog.records] == [
        "webhook log lookup failed for event evt_5; processing it"
    ]


def test_a_failing_log_write_is_logged_with_request_id_and_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class WriteFails(InMemoryWebhookLog):
        def record(self, record: object) -> None:
            raise OSError("disk full")

    body = _body()
    with caplog.at_level(logging.ERROR, logger="veza_payments.webhooks"):
        outcome = _intake(WriteFails()).handle(
            _headers(body, **{"X-Request-Id": "req-6"}), body, source_ip=PEER
        )
    assert outcome.status == 200
    assert [r.getMessage() for r in caplog.records] == [
        "could not write the webhook record (request id req-6, result skipped)"
    ]


# --------------------------------------------------------------------------- header limits


def test_headers_exactly_at_the_limit_are_accepted_one_byte_more_refused() -> None:
    body = _body()
    headers = _headers(body)
    size = sum(len(k) + len(v) for k, v in headers.items())
    log = InMemoryWebhookLog()
    assert _intake(log, max_headers=size).handle(headers, body, source_ip=PEER).status == 200
    refused = _intake(log, max_headers=size - 1).handle(headers, body, source_ip=PEER)
    assert refused.status == 431
    record = log.records[-1]
    assert (record.payload, record.source_ip, record.received_at) == ("", PEER, NOW)


# --------------------------------------------------------------------------- header shapes


def test_bytes_header_pairs_and_malformed_items_are_read_like_asgi_sends_them() -> None:
    body = _body()
    signature = sign_payload(body, KEY).encode()
    headers = [
        ("only-one",),
        (b"User-Agent", b"caf\xe9"),
        (b"X-Webhook-Signature-512", signature),
    ]
    log = InMemoryWebhookLog()
    outcome = _intake(log).handle(headers, body, source_ip=PEER)  # type: ignore[arg-type]
    assert outcome.status == 200
    assert log.records[-1].user_agent == "caf\u00e9"


def _one_shot(body: bytes) -> Iterator[tuple[str, str]]:
    yield from _headers(body).items()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    yield body


def test_one_shot_header_iterables_work_on_the_streaming_paths() -> None:
    body = _body()
    log = InMemoryWebhookLog()
    intake = _intake(log)
    assert intake.handle_stream(_one_shot(body), [body], source_ip=PEER).record.signature_valid  # type: ignore[union-attr]
    outcome = asyncio.run(intake.ahandle_stream(_one_shot(body), _chunks(body), source_ip=PEER))
    assert outcome.record is not None
    assert outcome.record.signature_valid


def _broken_headers() -> Iterator[tuple[str, str]]:
    yield ("x-request-id", "req-7")
    raise RuntimeError("connection reset while reading headers")


@pytest.mark.parametrize("mode", ["handle", "handle_stream", "ahandle_stream"])
def test_broken_headers_are_a_recorded_500_never_an_exception(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = _body()
    log = InMemoryWebhookLog()
    intake = _intake(log)
    with caplog.at_level(logging.ERROR, logger="veza_payments.webhooks"):
        if mode == "handle":
            outcome = intake.handle(_broken_headers(), body, source_ip=PEER)
        elif mode == "handle_stream":
            outcome = intake.handle_stream(_broken_headers(), [body], source_ip=PEER)
        else:
            outcome = asyncio.run(
                intake.ahandle_stream(_broken_headers(), _chunks(body), source_ip=PEER)
            )
    assert outcome.status == 500
    record = log.records[-1]
    assert outcome.record is record
    assert record.processing_result == "error: intake failure: RuntimeError"
    assert (record.payload, record.signature_valid, record.source_ip) == ("", False, PEER)
    assert record.received_at == NOW
    assert uuid.UUID(record.request_id)
    assert [r.getMessage() for r in caplog.records] == ["webhook intake failed unexpectedly"]


# --------------------------------------------------------------------------- registration


def test_bad_event_types_and_duplicate_families_are_refused_with_a_reason() -> None:
    intake = _intake(InMemoryWebhookLog())
    for bad in ("", "*"):
        with pytest.raises(PaymentsConfigurationError, match="must name a type or a family"):
            intake.on(bad, print)
    intake.on("dispute_*", print)
    intake.on("refund_*", print)  # another family is fine
    with pytest.raises(PaymentsConfigurationError, match="already registered for 'dispute_\\*'"):
        intake.on("dispute_*", print)


def test_the_longest_family_wins_whatever_the_registration_order() -> None:
    def broad(event: WebhookEvent) -> None: ...

    def narrow(event: WebhookEvent) -> None: ...

    for order in (
        (("payment_*", broad), ("payment_cancel*", narrow)),
        (("payment_cancel*", narrow), ("payment_*", broad)),
    ):
        intake = _intake(InMemoryWebhookLog())
        for pattern, fn in order:
            intake.on(pattern, fn)
        assert intake.handler_for("payment_cancelled") is narrow
        assert intake.handler_for("payment_succeeded") is broad


def test_an_empty_key_list_is_a_configuration_error_that_says_so() -> None:
    with pytest.raises(PaymentsConfigurationError) as caught:
        WebhookIntake(InMemoryWebhookLog(), [])
    assert str(caught.value) == (
        "WebhookIntake needs at least one non-empty key (the payment response hash key)"
    )


def test_stripe_mode_deliveries_are_checked_against_the_current_time() -> None:
    body = _body()
    import time

    fresh = stripe_signature_header(body, KEY, timestamp=int(time.time()))
    stale = stripe_signature_header(body, KEY, timestamp=int(time.time()) - 7200)
    intake = _intake(InMemoryWebhookLog(), stripe_compatible=True, stripe_tolerance=3600)
    assert intake.handle({"Stripe-Signature": fresh}, body, source_ip=PEER).status == 200
    assert intake.handle({"Stripe-Signature": stale}, body, source_ip=PEER).status == 401
