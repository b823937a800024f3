"""Fidelity to the real Hyperswitch router: error mapping, deadlines, captures, keys.

The error codes below are transcribed from the router's ``ApiErrorResponse``
(``hyperswitch_domain_models/src/errors/api_error_response.rs``) with the HTTP status
its ``ErrorSwitch`` gives each variant; the docs table must agree with the client.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from veza_payments import (
    APIConnectionError,
    AsyncHyperswitchClient,
    AuthenticationError,
    ConnectorError,
    HyperswitchClient,
    HyperswitchError,
    InvalidIdempotencyKeyError,
    InvalidRequestError,
    NotFoundError,
    PaymentBlockedError,
    RetryPolicy,
    ServerError,
    StripeConnect,
    StripeError,
)
from veza_payments._core import Reply, error_class, error_from, is_retryable
from veza_payments.testing import FakeHyperswitch, FakeStripe, Fault

# The repository's docs, found upward (the tests also run from a copy, e.g. mutmut's).
DOCS = next(
    p / "docs" / "payments" / "errors.md"
    for p in Path(__file__).resolve().parents
    if (p / "docs" / "payments" / "errors.md").is_file()
)

# (code, HTTP status, type, message or meaning) as the router sends them.
REAL_CODES = [
    ("CE_00", 401, "connector", "The connector's own error, with the connector's status"),
    ("CE_00", 500, "connector", "The connector's own error, with the connector's status"),
    ("CE_01", 400, "invalid_request", "Payment failed during authorization with connector"),
    ("CE_03", 400, "invalid_request", "Capture attempt failed while processing with connector"),
    ("CE_06", 400, "invalid_request", "Refund failed while processing with connector"),
    ("HE_00", 422, "invalid_request", "Resource is busy (another request holds the lock)"),
    ("HE_00", 422, "invalid_request", "Failed to convert currency to minor unit"),
    ("HE_00", 500, "api", "Something went wrong"),
    ("HE_01", 400, "invalid_request", "Duplicate payment, refund, mandate, payment method..."),
    ("HE_02", 404, "invalid_request", "Payment, refund, customer... does not exist"),
    ("HE_02", 500, "api", "Mandate update failed"),
    ("HE_03", 200, "blocked", "This payment method is blocked (the blocklist)"),
    ("HE_03", 400, "invalid_request", "The payment has not succeeded yet; validation failed"),
    ("HE_03", 500, "api", "Invalid mandate id passed from connector"),
    ("HE_04", 404, "invalid_request", "Successful payment, dispute, file... not found"),
    ("HE_05", 500, "api", "Missing or invalid tenant; amount conversion failed"),
    ("IR_00", 501, "invalid_request", "Not implemented"),
    ("IR_01", 401, "invalid_request", "API key not provided or invalid API key used"),
    ("IR_02", 404, "invalid_request", "Unrecognized request URL"),
    ("IR_03", 405, "invalid_request", "The HTTP method is not applicable for this API"),
    ("IR_04", 400, "invalid_request", "Missing required param"),
    ("IR_05", 422, "invalid_request", "Field contains invalid data (format)"),
    ("IR_06", 422, "invalid_request", "Invalid request data (JSON, amount_to_capture...)"),
    ("IR_07", 400, "invalid_request", "Invalid value provided"),
    ("IR_08", 400, "invalid_request", "Client secret not provided or expired"),
    ("IR_09", 400, "invalid_request", "Client secret does not match"),
    ("IR_10", 400, "invalid_request", "Customer has active mandate/subscription"),
    ("IR_11", 400, "invalid_request", "Customer has already been redacted"),
    ("IR_12", 400, "invalid_request", "Reached maximum refund attempts"),
    ("IR_13", 400, "invalid_request", "The refund amount exceeds the amount captured"),
    ("IR_14", 400, "invalid_request", "The payment is in an unexpected state for this flow"),
    ("IR_15", 401, "invalid_request", "Invalid ephemeral key for the customer"),
    ("IR_16", 400, "invalid_request", "Precondition failed (cannot cancel in this state...)"),
    ("IR_17", 401, "invalid_request", "Access forbidden, invalid JWT token was used"),
    ("IR_18", 401, "invalid_request", "Unauthorized"),
    ("IR_19", 400, "invalid_request", "Payment method type not supported"),
    ("IR_20", 400, "invalid_request", "Flow not supported by the connector"),
    ("IR_21", 400, "invalid_request", "Missing required params"),
    ("IR_22", 403, "invalid_request", "Access forbidden to this resource"),
    ("IR_23", 400, "invalid_request", "File provider not supported"),
    ("IR_24", 422, "invalid_request", "Invalid wallet token"),
    ("IR_25", 400, "invalid_request", "Cannot delete the default payment method"),
    ("IR_26", 400, "invalid_request", "Invalid cookie"),
    ("IR_27", 404, "invalid_request", "Extended card info does not exist"),
    ("IR_28", 400, "invalid_request", "Currency not supported"),
    ("IR_29", 422, "invalid_request", "Unprocessable entity"),
    ("IR_30", 400, "invalid_request", "Connector account configured with an invalid value"),
    ("IR_31", 400, "invalid_request", "Card IIN does not exist"),
    ("IR_32", 400, "invalid_request", "Card IIN length invalid"),
    ("IR_33", 400, "invalid_request", "File not found in the request"),
    ("IR_34", 400, "invalid_request", "Dispute id not found in the request"),
    ("IR_35", 400, "invalid_request", "File purpose not found or invalid"),
    ("IR_36", 400, "invalid_request", "File content type not found"),
    ("IR_37", 404, "invalid_request", "Not found (generic)"),
    ("IR_38", 400, "invalid_request", "Duplicate (generic)"),
    ("IR_39", 400, "invalid_request", "No eligible connector for the payment method"),
    ("IR_40", 400, "invalid_request", "Payment link configuration error"),
    ("IR_41", 400, "invalid_request", "Payout failed while processing with connector"),
    ("IE_00", 500, "api", "Integrity check failed (data mismatched)"),
    (
        "RE_00",
        429,
        "invalid_request",
        "Too many requests (a gateway in front; the router sends none)",
    ),
]


def _posts(fake: FakeHyperswitch, path: str) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == path)


# --------------------------------------------------------------------------- error mapping


def _docs_rows() -> list[tuple[str, int, str, str, str, str]]:
    pattern = re.compile(r"^\| `(\w+)` \| (\d+) \| `(\w+)` \| (.+?) \| `(\w+)` \| (yes|no) \|$")
    rows = []
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = pattern.match(line)
        if match:
            code, status, kind, meaning, raised, retried = match.groups()
            rows.append((code, int(status), kind, meaning, raised, retried))
    return rows


def test_the_docs_table_lists_every_real_code_and_matches_the_client() -> None:
    rows = _docs_rows()
    assert [(c, s, k, m) for c, s, k, m, _, _ in rows] == REAL_CODES
    for code, status, kind, meaning, raised, retried in rows:
        cls = error_class(status, kind, code, meaning)
        assert cls.__name__ == raised, (code, status)
        assert is_retryable(cls("x", status=status, code=code)) == (retried == "yes"), code


@pytest.mark.parametrize(("code", "status", "kind", "message"), REAL_CODES)
def test_every_real_code_maps_through_the_wire_format(
    code: str, status: int, kind: str, message: str
) -> None:
    import json

    body = json.dumps({"error": {"type": kind, "code": code, "message": message}}).encode()
    error = error_from(Reply(status, {"x-request-id": "req_1"}, body))
    assert (error.status, error.code, error.request_id) == (status, code, "req_1")
    kind_class = error_class(status, kind, code, message)
    assert isinstance(error, kind_class) and isinstance(error, HyperswitchError)
    assert not isinstance(error, StripeError) and error.provider == "hyperswitch"
    assert type(error).__name__ == f"Hyperswitch{kind_class.__name__}"


@pytest.mark.parametrize(
    ("status", "kind", "code", "message", "expected"),
    [
        (401, "connector", "CE_00", "401: invalid credentials at the acquirer", ConnectorError),
        (500, "api", "HE_02", "Mandate update failed", ServerError),
        (
            422,
            "invalid_request",
            "HE_00",
            "Failed to convert currency to minor unit",
            InvalidRequestError,
        ),
        (422, "invalid_request", "HE_00", "Resource is busy. Please try again later.", ServerError),
        (200, "blocked", "HE_03", "Payment rejected by the merchant's rules", PaymentBlockedError),
        (400, "invalid_request", "HE_03", "This payment method is blocked", InvalidRequestError),
        (404, "invalid_request", "HE_02", "Payment does not exist in our records", NotFoundError),
        (403, "invalid_request", "IR_22", "Access forbidden", AuthenticationError),
    ],
)
def test_the_mapping_cases_the_review_found(
    status: int, kind: str, code: str, message: str, expected: type
) -> None:
    assert error_class(status, kind, code, message) is expected


def test_a_deterministic_422_he_00_is_not_retried(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {
            "type": "invalid_request",
            "code": "HE_00",
            "message": "Failed to convert currency to minor unit",
        }
        return httpx.Response(422, json={"error": error})

    with (
        HyperswitchClient(
            "k",
            base_url="http://hs.test",
            transport=httpx.MockTransport(handler),
            sleep=sleeps.append,
        ) as c,
        pytest.raises(InvalidRequestError),
    ):
        c.retrieve_payment("p_1")
    assert sleeps == []


def test_a_500_he_02_is_retried_as_a_server_error(sleeps: list[float]) -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            error = {"type": "api", "code": "HE_02", "message": "Mandate update failed"}
            return httpx.Response(500, json={"error": error})
        return httpx.Response(
            200, json={"payment_id": "p_1", "status": "succeeded", "amount": 5, "currency": "EUR"}
        )

    with HyperswitchClient(
        "k", base_url="http://hs.test", transport=httpx.MockTransport(handler), sleep=sleeps.append
    ) as c:
        assert c.retrieve_payment("p_1").status == "succeeded"
    assert calls[0] == 2


# --------------------------------------------------------------------------- blocked payments


def test_blocked_detection_uses_the_type_not_the_wording(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    """Through the real path: the fake answers as the router's blocklist does (HTTP 200)."""
    fake.blocked_customers.add("cus_1")
    fake.blocked_message = "Payment rejected by the merchant's rules"
    fake.blocked_reason = "rule 7"
    with pytest.raises(PaymentBlockedError) as info:
        client.create_payment("o", amount=100, currency="EUR", confirm=True, customer_id="cus_1")
    assert info.value.status == 200 and "block" not in info.value.message.lower()


def test_an_he_03_that_is_not_a_block_is_not_reported_as_one() -> None:
    """Older routers refuse a refund on an unsucceeded payment with 400 HE_03."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            error = {"type": "invalid_request", "code": "HE_02", "message": "Refund does not exist"}
            return httpx.Response(404, json={"error": error})
        error = {
            "type": "invalid_request",
            "code": "HE_03",
            "message": "The payment has not succeeded yet. Please pass a successful payment "
            "to initiate refund",
        }
        return httpx.Response(400, json={"error": error})

    with (
        HyperswitchClient(
            "k", base_url="http://hs.test", transport=httpx.MockTransport(handler)
        ) as c,
        pytest.raises(InvalidRequestError) as info,
    ):
        c.create_refund("r", payment_id="p_1")
    assert not isinstance(info.value, PaymentBlockedError) and info.value.code == "HE_03"


# --------------------------------------------------------------------------- deadline


@pytest.fixture
def trickler() -> Iterator[str]:
    """A server that answers 200 with a 400-byte body, one byte every 0.25 s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            try:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 400\r\n\r\n"
                )
                for _ in range(400):
                    if stop.is_set():
                        return
                    conn.sendall(b" ")
                    time.sleep(0.25)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    host, port = server.getsockname()
    yield f"http://{host}:{port}"
    stop.set()
    server.close()


def test_a_trickled_body_cannot_stretch_the_deadline(trickler: str) -> None:
    """timeout=0.5, max_elapsed=1.0: the whole call is over in about a second (was 9.8 s)."""
    policy = RetryPolicy(total=4, max_elapsed=1.0, backoff_base=0.01)
    with HyperswitchClient("k", base_url=trickler, timeout=0.5, max_retries=policy) as c:
        started = time.monotonic()
        with pytest.raises(APIConnectionError):
            c.retrieve_payment("p_1")
        elapsed = time.monotonic() - started
    assert elapsed < 1.6, elapsed


def test_the_async_client_keeps_the_same_deadline(trickler: str) -> None:
    async def scenario() -> float:
        policy = RetryPolicy(total=4, max_elapsed=1.0, backoff_base=0.01)
        async with AsyncHyperswitchClient(
            "k", base_url=trickler, timeout=0.5, max_retries=policy
        ) as c:
            started = time.monotonic()
            with pytest.raises(APIConnectionError):
                await c.create_payment("o", amount=5, currency="EUR")
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.6


def test_one_attempt_is_bounded_by_its_timeout(trickler: str) -> None:
    with HyperswitchClient("k", base_url=trickler, timeout=0.5, max_retries=0) as c:
        started = time.monotonic()
        with pytest.raises(APIConnectionError):
            c.retrieve_payment("p_1")
        assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------- captures


def test_manual_multiple_captures_are_all_made(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual_multiple"
    )
    first = client.capture_payment("c1", payment.payment_id, amount_to_capture=300)
    assert (first.status, first.amount_received) == ("partially_captured_and_capturable", 300)
    second = client.capture_payment("c2", payment.payment_id, amount_to_capture=300)
    assert second.amount_received == 600
    assert _posts(fake, f"/payments/{payment.payment_id}/capture") == 2
    last = client.capture_payment("c3", payment.payment_id)
    assert (last.status, last.amount_received) == ("succeeded", 1000)


def test_a_manual_multiple_capture_whose_response_was_lost_is_made_once(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual_multiple"
    )
    client.capture_payment("c1", payment.payment_id, amount_to_capture=200)
    fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/payments/"))
    again = client.capture_payment("c2", payment.payment_id, amount_to_capture=200)
    assert again.amount_received == 400
    assert fake.payments[payment.payment_id]["amount_received"] == 400


def test_a_partially_captured_payment_is_not_captured_again(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual"
    )
    done = client.capture_payment("c", payment.payment_id, amount_to_capture=400)
    assert done.status == "partially_captured"
    posts = len(fake.requests)
    assert client.capture_payment("c", payment.payment_id, amount_to_capture=400) == done
    assert [r.method for r in fake.requests[posts:]] == ["GET"]


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("bad", ["order 1", "order-1\n", "ordér", "\x00", "k" * 256])
def test_hostile_keys_fail_before_any_io_on_both_providers(
    client: HyperswitchClient,
    fake: FakeHyperswitch,
    connect: StripeConnect,
    fake_stripe: FakeStripe,
    bad: str,
) -> None:
    for call in (
        lambda: client.create_payment(bad, amount=1, currency="EUR"),
        lambda: client.create_refund(bad, payment_id="p_1"),
        lambda: client.capture_payment(bad, "p_1"),
        lambda: client.cancel_payment(bad, "p_1"),
        lambda: connect.create_transfer(bad, amount=1, currency="EUR", destination="acct_a"),
        lambda: connect.reverse_transfer(bad, "tr_1"),
    ):
        with pytest.raises(InvalidIdempotencyKeyError) as info:
            call()
        assert isinstance(info.value, ValueError)
    assert fake.requests == [] and fake_stripe.requests == []


# --------------------------------------------------------------------------- tables

# common_enums::Currency (the router's crates/common_enums/src/enums.rs), by places.
HS_ZERO = "BIF CLP DJF GNF IRR JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF"
HS_THREE = "BHD IQD JOD KWD LYD OMR TND"
HS_FOUR = "CLF"
HS_TWO = """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN
BWP BYN BZD CAD CDF CHF CNY COP CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP
GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR ISK JMD KES KGS KHR KPW KYD
KZT LAK LBP LKR LRD LSL MAD MDL MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO
NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL
SOS SRD SSP STD STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST
XCD YER ZAR ZMW ZWL"""
# IntentStatus, RefundStatus (API spelling) and EventType, snake_case as sent.
HS_INTENT_STATUSES = """succeeded failed cancelled cancelled_post_capture processing
requires_customer_action requires_merchant_action requires_payment_method
requires_confirmation requires_capture partially_captured partially_captured_and_capturable
partially_captured_and_processing partially_authorized_and_requires_capture conflicted
expired"""
HS_TERMINAL = "succeeded failed cancelled cancelled_post_capture partially_captured expired"
HS_REFUND_STATUSES = "succeeded failed pending review"
HS_EVENTS = """payment_succeeded payment_failed payment_processing payment_cancelled
payment_cancelled_post_capture payment_authorized payment_partially_authorized
payment_captured payment_expired action_required refund_succeeded refund_failed
dispute_opened dispute_expired dispute_accepted dispute_cancelled dispute_challenged
dispute_won dispute_lost mandate_active mandate_revoked payout_success payout_failed
payout_initiated payout_processing payout_cancelled payout_expired payout_reversed
invoice_paid"""


def test_the_currency_table_is_hyperswitchs() -> None:
    from veza_payments import exponent
    from veza_payments._money import ALL_CURRENCIES

    table = {0: HS_ZERO, 2: HS_TWO, 3: HS_THREE, 4: HS_FOUR}
    expected = {code: places for places, codes in table.items() for code in codes.split()}
    assert set(ALL_CURRENCIES) == set(expected)
    assert {code: exponent(code) for code in expected} == expected
    # Where the router departs from ISO 4217, the router wins (it reads the amount).
    assert (exponent("ISK"), exponent("IRR"), exponent("MGA")) == (2, 0, 0)


def test_uyi_is_refused_before_any_io(client: HyperswitchClient, fake: FakeHyperswitch) -> None:
    from veza_payments import PaymentsConfigurationError

    with pytest.raises(PaymentsConfigurationError, match="UYI"):
        client.create_payment("o", amount=100, currency="UYI")
    assert fake.requests == []


def test_statuses_are_hyperswitchs() -> None:
    from veza_payments._models import (
        PAYMENT_STATUSES,
        REFUND_STATUSES,
        TERMINAL_PAYMENT_STATUSES,
    )

    assert set(HS_INTENT_STATUSES.split()) == PAYMENT_STATUSES
    assert set(HS_TERMINAL.split()) == TERMINAL_PAYMENT_STATUSES
    assert set(HS_REFUND_STATUSES.split()) == REFUND_STATUSES


def test_partially_captured_is_terminal_and_known(
    client: HyperswitchClient, fake: FakeHyperswitch
) -> None:
    payment = client.create_payment(
        "o", amount=1000, currency="EUR", confirm=True, capture_method="manual"
    )
    done = client.capture_payment("c", payment.payment_id, amount_to_capture=10)
    assert done.status == "partially_captured" and done.is_terminal
    assert not done.needs_attention
    fake.set_payment_status(payment.payment_id, "cancelled_post_capture")
    after = client.retrieve_payment(payment.payment_id)
    assert after.is_terminal and not after.needs_attention


def test_event_types_and_families_are_hyperswitchs() -> None:
    from veza_payments._webhooks import EVENT_FAMILIES, EVENT_TYPES

    assert set(HS_EVENTS.split()) == EVENT_TYPES
    for event_type in EVENT_TYPES:
        assert event_type.startswith(EVENT_FAMILIES), event_type


def test_an_invoice_event_reaches_a_family_handler(fake: FakeHyperswitch) -> None:
    from veza_payments import InMemoryWebhookLog, WebhookEvent, WebhookIntake, sign_payload

    seen: list[WebhookEvent] = []
    intake = WebhookIntake(InMemoryWebhookLog(), "k")
    intake.on("invoice_*", seen.append)
    body = fake.webhook_body("invoice_paid", {"invoice_id": "in_1"})
    outcome = intake.handle({"x-webhook-signature-512": sign_payload(body, "k")}, body)
    assert outcome.status == 200 and seen[0].event_type == "invoice_paid"
    assert seen[0].payload["content"]["type"] == "subscription_details"


# --------------------------------------------------------------------------- error bases


def test_stripe_failures_are_stripe_errors_not_hyperswitch_errors(
    connect: StripeConnect,
) -> None:
    from veza_payments import NotFoundError, ProviderError

    with pytest.raises(NotFoundError) as info:
        connect.retrieve_transfer("tr_missing")
    error = info.value
    assert isinstance(error, StripeError) and isinstance(error, ProviderError)
    assert not isinstance(error, HyperswitchError) and error.provider == "stripe"


def test_hyperswitch_failures_keep_their_old_bases(client: HyperswitchClient) -> None:
    from veza_payments import NotFoundError, ProviderError

    with pytest.raises(HyperswitchError) as info:
        client.retrieve_payment("p_missing")
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, ProviderError)
    assert isinstance(info.value, ValueError)  # InvalidRequestError was one, still is
