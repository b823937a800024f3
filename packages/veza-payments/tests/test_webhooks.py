"""Webhook signatures and the intake: one record per delivery, whatever happens."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
import threading
import time
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from veza_payments import (
    HYPERSWITCH_RETRY_WINDOW,
    MAX_BODY,
    InMemoryWebhookLog,
    PaymentsConfigurationError,
    WebhookEvent,
    WebhookIntake,
    WebhookLog,
    WebhookRecord,
    sign_payload,
    stripe_signature_header,
    verify_signature,
    verify_stripe_signature,
)
from veza_services import service_unavailable

KEY = "whsec_payment_response_hash_key"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def event_body(
    event_type: str = "payment_succeeded", event_id: str | None = None, **obj: object
) -> bytes:
    return json.dumps(
        {
            "merchant_id": "m_1",
            "event_id": event_id or f"evt_{uuid.uuid4().hex}",
            "event_type": event_type,
            "content": {"type": "payment_details", "object": {"payment_id": "p_1", **obj}},
            "timestamp": "2026-11-26T12:00:00Z",
        },
        ensure_ascii=False,
    ).encode("utf-8")


def signed(body: bytes, key: str = KEY, **extra: str) -> dict[str, str]:
    return {"X-Webhook-Signature-512": sign_payload(body, key), **extra}


@pytest.fixture
def log() -> InMemoryWebhookLog:
    return InMemoryWebhookLog()


@pytest.fixture
def intake(log: InMemoryWebhookLog) -> WebhookIntake:
    return WebhookIntake(log, KEY, clock=lambda: NOW)


# --------------------------------------------------------------------------- signatures


def test_signature_matches_an_independent_implementation() -> None:
    if shutil.which("openssl") is None:  # skipped locally, a failure under CI=true
        service_unavailable("openssl", "openssl is not on PATH", "apt-get install openssl")
    body = event_body(description="café ☕")
    out = subprocess.run(
        ["openssl", "dgst", "-sha512", "-hmac", KEY, "-hex"],
        input=body,
        capture_output=True,
        check=True,
    ).stdout.decode()
    expected = out.strip().rsplit(" ", 1)[-1]
    assert sign_payload(body, KEY) == expected
    assert verify_signature(body, expected, keys=KEY)


def test_reserialised_json_does_not_verify() -> None:
    body = event_body(description="Café crème, 10 €")
    signature = sign_payload(body, KEY)
    reserialised = json.dumps(json.loads(body)).encode()  # ASCII escapes: different bytes
    assert reserialised != body
    assert verify_signature(body, signature, keys=KEY)
    assert not verify_signature(reserialised, signature, keys=KEY)


def test_rotation_accepts_any_listed_key() -> None:
    body = event_body()
    old = sign_payload(body, "old-key")
    assert verify_signature(body, old, keys=["new-key", "old-key"])
    assert not verify_signature(body, old, keys=["new-key"])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.upper(),  # case is ignored: still valid
        lambda s: f"  {s}\n",  # surrounding whitespace from proxies: still valid
    ],
)
def test_harmless_variations_still_verify(mangle) -> None:
    body = event_body()
    assert verify_signature(body, mangle(sign_payload(body, KEY)), keys=KEY)


@pytest.mark.parametrize(
    "bad",
    [None, "", "00", "zz" * 64, "sha512=" + "0" * 128, "é" * 128, "0" * 127, "0" * 129],
)
def test_malformed_signatures_are_invalid_not_errors(bad: str | None) -> None:
    assert verify_signature(b"{}", bad, keys=KEY) is False


def test_empty_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        verify_signature(b"{}", "00", keys=[])
    with pytest.raises(PaymentsConfigurationError):
        WebhookIntake(InMemoryWebhookLog(), "")


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_no_body_verifies_under_a_wrong_key(body: bytes, key: str, other: str) -> None:
    signature = sign_payload(body, key)
    assert verify_signature(body, signature, keys=key)
    if other != key:
        assert not verify_signature(body, signature, keys=other)
    if body:
        assert not verify_signature(body[:-1], signature, keys=key)


def test_stripe_mode_signature_and_explicit_tolerance() -> None:
    body = event_body()
    t = 1_795_000_000
    header = stripe_signature_header(body, KEY, timestamp=t)
    assert verify_stripe_signature(body, header, keys=KEY, tolerance=300, now=t + 10)
    # Hyperswitch retries for ~24 h with the original t: a 300 s tolerance refuses them...
    retry_at = t + 6 * 3600
    assert not verify_stripe_signature(body, header, keys=KEY, tolerance=300, now=retry_at)
    # ...the documented window accepts them, and no tolerance disables the check.
    assert verify_stripe_signature(
        body, header, keys=KEY, tolerance=HYPERSWITCH_RETRY_WINDOW, now=retry_at
    )
    assert verify_stripe_signature(body, header, keys=KEY, tolerance=None, now=t + 10**7)
    assert not verify_stripe_signature(body + b" ", header, keys=KEY, tolerance=None)
    assert not verify_stripe_signature(body, header, keys="other", tolerance=None)


def test_stripe_mode_accepts_any_v1_and_ignores_other_schemes() -> None:
    body = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
    good = stripe_signature_header(body, KEY, timestamp=100).split("v1=")[1]
    header = f"t=100,v0={'a' * 64},v1={'b' * 64},v1={good}"
    assert verify_stripe_signature(body, header, keys=KEY, tolerance=None)
    for bad in ["", "t=100", f"v1={good}", f"t=abc,v1={good}", f"t=100,v1={good[:-1]}"]:
        assert not verify_stripe_signature(body, bad, keys=KEY, tolerance=None)


def test_tolerance_is_a_required_argument() -> None:
    with pytest.raises(TypeError):
        verify_stripe_signature(b"{}", "t=1,v1=00", keys=KEY)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- intake


def test_the_in_memory_log_satisfies_the_protocol(log: InMemoryWebhookLog) -> None:
    assert isinstance(log, WebhookLog)


def test_a_good_delivery_is_processed_and_recorded_once(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    seen: list[WebhookEvent] = []
    intake.on("payment_succeeded", seen.append)
    body = event_body(event_id="evt_1", amount=1000)
    headers = signed(body, **{"User-Agent": "Hyperswitch/1", "X-Request-Id": "req-123"})
    outcome = intake.handle(headers, body, source_ip="203.0.113.9")
    assert (outcome.status, outcome.processing_result) == (200, "ok")
    assert [e.object["amount"] for e in seen] == [1000]
    assert seen[0].event_id == "evt_1" and seen[0].request_id == "req-123"
    assert log.records == [
        WebhookRecord(
            payload=body.decode(),
            signature_valid=True,
            processing_result="ok",
            source_ip="203.0.113.9",
            user_agent="Hyperswitch/1",
            request_id="req-123",
            event_id="evt_1",
            event_type="payment_succeeded",
            received_at=NOW,
        )
    ]
    assert json.loads(outcome.body) == {"result": "ok"}


def test_an_oversized_body_is_refused_but_still_recorded(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    body = b"{" + b" " * MAX_BODY + b"}"
    outcome = intake.handle(signed(body), body, source_ip="198.51.100.1")
    assert outcome.status == 413 and outcome.record is not None
    (record,) = log.records
    assert record is outcome.record and not record.signature_valid
    assert record.processing_result == (
        f"refused: body_too_large (limit {MAX_BODY}, received {MAX_BODY + 2})"
    )
    assert record.payload == "{" + " " * 1023 and record.source_ip == "198.51.100.1"
    assert json.loads(outcome.body) == {"result": "payload_too_large"}
    exactly = b" " * MAX_BODY  # the limit itself is allowed
    assert intake.handle(signed(exactly), exactly).status != 413


def test_an_invalid_signature_is_401_and_recorded(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    handled: list[WebhookEvent] = []
    intake.on("payment_succeeded", handled.append)
    body = event_body(event_id="evt_x")
    outcome = intake.handle(signed(body, key="attacker"), body, source_ip="192.0.2.66")
    assert outcome.status == 401 and handled == []
    (record,) = log.records
    assert (record.signature_valid, record.processing_result) == (False, "signature_invalid")
    assert record.event_id == "evt_x" and record.source_ip == "192.0.2.66"
    assert record.payload == body.decode()  # forensic: what the attacker sent
    missing = intake.handle({}, body)
    assert missing.status == 401 and len(log.records) == 2


def test_invalid_utf8_is_stored_as_empty_payload(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    body = b'{"event_type": "payment_succeeded", "x": "\xff\xfe"}'
    outcome = intake.handle(signed(body), body)
    (record,) = log.records
    assert record.payload == "" and record.event_type is None
    assert record.signature_valid and outcome.status == 400
    assert record.processing_result.startswith("error: ")


def test_malformed_json_is_recorded_without_event_type(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    body = b'{"event_type": "payment_succeeded",'
    outcome = intake.handle(signed(body), body)
    (record,) = log.records
    assert (record.event_type, record.event_id) == (None, None)
    assert outcome.status == 400 and record.processing_result == "error: malformed JSON body"
    assert record.payload == body.decode()


def test_unknown_types_are_acknowledged_and_skipped(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    body = event_body("mandate_revoked")
    outcome = intake.handle(signed(body), body)
    assert (outcome.status, outcome.processing_result) == (200, "skipped")
    assert log.records[0].event_type == "mandate_revoked"


def test_a_redelivery_of_a_processed_event_is_skipped(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    calls: list[str] = []
    intake.on("refund_succeeded", lambda e: calls.append(e.event_id or ""))
    body = event_body("refund_succeeded", event_id="evt_r1")
    assert intake.handle(signed(body), body).processing_result == "ok"
    again = intake.handle(signed(body), body)
    assert (again.status, again.processing_result) == (200, "skipped")
    assert calls == ["evt_r1"]
    assert [r.processing_result for r in log.records] == ["ok", "skipped"]


def test_a_failed_event_is_processed_again_on_redelivery(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    attempts: list[int] = []

    def flaky(event: WebhookEvent) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            msg = "ledger unavailable"
            raise RuntimeError(msg)

    intake.on("payment_succeeded", flaky)
    body = event_body(event_id="evt_f")
    first = intake.handle(signed(body), body)
    assert (first.status, first.processing_result) == (500, "error: ledger unavailable")
    second = intake.handle(signed(body), body)
    assert (second.status, second.processing_result) == (200, "ok")
    assert len(attempts) == 2
    assert [r.processing_result for r in log.records] == ["error: ledger unavailable", "ok"]


def test_a_log_write_failure_is_logged_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenLog:
        def record(self, record: WebhookRecord) -> None:
            msg = "database is down"
            raise OSError(msg)

        def processed_successfully(self, event_id: str) -> bool:
            msg = "database is down"
            raise OSError(msg)

    intake = WebhookIntake(BrokenLog(), KEY)
    handled: list[WebhookEvent] = []
    intake.on("payment_succeeded", handled.append)
    body = event_body()
    with caplog.at_level(logging.WARNING, logger="veza_payments.webhooks"):
        outcome = intake.handle(signed(body, **{"X-Request-Id": "req-9"}), body)
    assert outcome.status == 200 and len(handled) == 1  # acknowledged, still processed
    assert "could not write the webhook record (request id req-9" in caplog.text
    assert KEY not in caplog.text


def test_request_id_defaults_to_a_fresh_uuid(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    body = event_body()
    intake.handle(signed(body), body)
    intake.handle(signed(body), body)
    ids = [uuid.UUID(r.request_id) for r in log.records]
    assert len(set(ids)) == 2


def test_headers_are_case_insensitive_and_may_be_pairs(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    body = event_body()
    pairs = [("x-webhook-signature-512", sign_payload(body, KEY)), ("USER-AGENT", "ua")]
    assert intake.handle(pairs, body).status == 200
    assert log.records[0].user_agent == "ua" and log.records[0].signature_valid


def test_hostile_header_sizes_are_clipped(intake: WebhookIntake, log: InMemoryWebhookLog) -> None:
    body = event_body()
    intake.handle(signed(body, **{"X-Request-Id": "r" * 10_000, "User-Agent": "u" * 10_000}), body)
    record = log.records[0]
    assert len(record.request_id) == 128 and len(record.user_agent or "") == 512


def test_family_patterns_route_disputes(intake: WebhookIntake) -> None:
    disputes: list[str] = []
    exact: list[str] = []
    intake.on("dispute_*", lambda e: disputes.append(e.event_type))
    intake.on("dispute_lost", lambda e: exact.append(e.event_type))
    for event_type in ("dispute_opened", "dispute_won", "dispute_lost"):
        body = event_body(event_type)
        assert intake.handle(signed(body), body).processing_result == "ok"
    assert disputes == ["dispute_opened", "dispute_won"] and exact == ["dispute_lost"]


def test_decorator_registration_and_duplicates(intake: WebhookIntake) -> None:
    @intake.on("payout_success")
    def handler(event: WebhookEvent) -> None:
        return None

    assert intake.handler_for("payout_success") is handler
    with pytest.raises(PaymentsConfigurationError, match="already registered"):
        intake.on("payout_success", handler)
    with pytest.raises(PaymentsConfigurationError):
        intake.on("*", handler)
    assert KEY not in repr(intake)


def test_concurrent_redeliveries_run_the_handler_once(
    intake: WebhookIntake, log: InMemoryWebhookLog
) -> None:
    runs: list[int] = []
    gate = threading.Event()

    def slow(event: WebhookEvent) -> None:
        runs.append(1)
        gate.wait(0.2)

    intake.on("payment_succeeded", slow)
    body = event_body(event_id="evt_dup")
    threads = [threading.Thread(target=intake.handle, args=(signed(body), body)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1
    assert sorted(r.processing_result for r in log.records) == ["ok"] + ["skipped"] * 3
    assert intake._inflight == {}


def test_stripe_compatible_deliveries(log: InMemoryWebhookLog) -> None:
    intake = WebhookIntake(log, KEY, stripe_compatible=True)
    body = b'{"id":"evt_s1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1"}}}'
    seen: list[WebhookEvent] = []
    intake.on("payment_intent.succeeded", seen.append)
    first_t = int(time.time()) - 6 * 3600  # a retry six hours after the first attempt
    header = {"Stripe-Signature": stripe_signature_header(body, KEY, timestamp=first_t)}
    assert intake.handle(header, body).status == 200
    assert seen[0].object == {"id": "pi_1"} and seen[0].event_id == "evt_s1"
    strict = WebhookIntake(InMemoryWebhookLog(), KEY, stripe_compatible=True, stripe_tolerance=300)
    assert strict.handle(header, body).status == 401
    not_enabled = WebhookIntake(InMemoryWebhookLog(), KEY)
    assert not_enabled.handle(header, body).status == 401


# --------------------------------------------------------------------------- fuzz

header_names = st.sampled_from(
    ["X-Webhook-Signature-512", "x-request-id", "User-Agent", "Stripe-Signature", "Content-Type"]
) | st.text(max_size=20)
header_values = st.text(max_size=200) | st.binary(max_size=50).map(lambda b: b.hex())
bodies = (
    st.binary(max_size=4096)
    | st.builds(event_body, st.sampled_from(["payment_succeeded", "refund_failed", "x"]))
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode())
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(header_names, header_values), max_size=6),
    bodies,
    st.none() | st.text(max_size=50),
    st.booleans(),
    st.booleans(),
)
def test_fuzz_handle_never_raises_and_records_each_delivery_once(
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str | None,
    sign: bool,
    stripe_mode: bool,
) -> None:
    log = InMemoryWebhookLog()
    intake = WebhookIntake(log, KEY, stripe_compatible=stripe_mode)
    intake.on("payment_*", lambda e: None)
    intake.on("refund_failed", lambda e: (_ for _ in ()).throw(RuntimeError("boom")))
    if sign:
        headers = [*headers, ("X-Webhook-Signature-512", sign_payload(body, KEY))]
    outcome = intake.handle(headers, body, source_ip=source_ip)
    assert outcome.status in {200, 400, 401, 500}
    assert len(log.records) == 1
    record = log.records[0]
    assert record is outcome.record
    wrong_key_valid = verify_signature(body, sign_payload(body, "not-the-key"), keys=KEY)
    assert not wrong_key_valid
    if not record.signature_valid:
        assert (outcome.status, record.processing_result) == (401, "signature_invalid")
    if record.payload:
        assert record.payload.encode("utf-8") == body


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=MAX_BODY + 1, max_value=MAX_BODY * 3))
def test_fuzz_oversize_bodies_are_refused_and_logged_once(size: int) -> None:
    log = InMemoryWebhookLog()
    body = b"x" * size
    assert WebhookIntake(log, KEY).handle(signed(body), body).status == 413
    (record,) = log.records
    assert record.processing_result.startswith("refused: body_too_large")
    assert record.payload == "x" * 1024
