"""``veza-payments probe``: keys checked against the fakes, the webhook key against a live intake.

The providers are the package's strict fakes (real HTTP servers on 127.0.0.1 that check
``api-key`` / ``Authorization`` before routing, as the router and Stripe do); the
webhook endpoint is a real HTTP server running ``WebhookIntake``, so the probe's
self-test delivery is verified by the same code as production's, and the log shows it
was recorded and acted on by nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from veza_payments import InMemoryWebhookLog, PaymentsConfig, WebhookIntake
from veza_payments._cli import main
from veza_payments._probe import PROBE_EVENT_TYPE, probe_payments
from veza_payments.testing import FakeHyperswitch, FakeStripe
from veza_services import free_port

WEBHOOK_KEY = "whk_probe_0123456789"


class _Endpoint:
    """A webhook endpoint: the real intake behind a real HTTP server."""

    def __init__(self, keys: tuple[str, ...], *, verify: bool = True) -> None:
        self.log = InMemoryWebhookLog()
        intake = WebhookIntake(self.log, keys)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = (
                    intake.handle(
                        dict(self.headers.items()), body, source_ip=self.client_address[0]
                    ).status
                    if verify
                    else 200
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/hyperswitch"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[_Endpoint]:
    server = _Endpoint((WEBHOOK_KEY,))
    yield server
    server.close()


def _config(fake: FakeHyperswitch, stripe: FakeStripe | None, **changes: object) -> PaymentsConfig:
    values: dict[str, object] = {
        "hyperswitch_api_key": fake.api_key,
        "webhook_keys": (WEBHOOK_KEY,),
        "hyperswitch_base_url": fake.url,
        "stripe_secret_key": stripe.api_key if stripe else "",
        "stripe_api_base": stripe.url if stripe else "",
    }
    values.update(changes)
    return PaymentsConfig(**values)  # type: ignore[arg-type]


def test_a_working_configuration_passes_every_check(fake, fake_stripe, endpoint):
    report = probe_payments(_config(fake, fake_stripe), webhook_url=endpoint.url)
    assert report.ok, report.diagnosis
    assert [(c.name, c.status) for c in report.checks] == [
        ("hyperswitch_key", 404),
        ("stripe_key", 200),
        ("webhook_signed", 200),
        ("webhook_forged", 401),
        ("clock_skew", None),
    ]
    assert report.clock_skew_seconds is not None
    assert abs(report.clock_skew_seconds) <= 2
    # both deliveries are in the log; the signed one was acted on by nothing
    records = endpoint.log.records
    assert [(r.signature_valid, r.processing_result) for r in records] == [
        (True, "skipped"),
        (False, "signature_invalid"),
    ]
    assert {r.event_type for r in records} == {PROBE_EVENT_TYPE}


def test_without_stripe_and_webhook_url_only_hyperswitch_and_clock(fake):
    report = probe_payments(_config(fake, None))
    assert [c.name for c in report.checks] == ["hyperswitch_key", "clock_skew"]
    assert report.ok


def test_a_wrong_hyperswitch_key_is_named(fake, fake_stripe):
    report = probe_payments(_config(fake, fake_stripe, hyperswitch_api_key="snd_wrong"))
    assert not report.ok
    check = report.check("hyperswitch_key")
    assert (check.ok, check.status) == (False, 401)
    assert report.diagnosis == (check.detail,)
    assert "refused HYPERSWITCH_API_KEY" in check.detail


def test_a_wrong_stripe_key_is_named(fake, fake_stripe):
    report = probe_payments(_config(fake, fake_stripe, stripe_secret_key="sk_test_wrong"))
    check = report.check("stripe_key")
    assert (check.ok, check.status) == (False, 401)
    assert report.diagnosis == (
        "Stripe refused STRIPE_SECRET_KEY (401): wrong, rolled or restricted key",
    )


def test_an_endpoint_with_another_key_refuses_the_signed_delivery(fake):
    other = _Endpoint(("the-endpoints-own-key",))
    try:
        report = probe_payments(_config(fake, None), webhook_url=other.url)
    finally:
        other.close()
    signed = report.check("webhook_signed")
    assert (signed.ok, signed.status) == (False, 401)
    assert "endpoint's key differs" in signed.detail
    assert report.check("webhook_forged").ok


def test_an_endpoint_that_does_not_verify_is_caught(fake):
    careless = _Endpoint((WEBHOOK_KEY,), verify=False)
    try:
        report = probe_payments(_config(fake, None), webhook_url=careless.url)
    finally:
        careless.close()
    assert report.check("webhook_signed").ok
    forged = report.check("webhook_forged")
    assert (forged.ok, forged.status) == (False, 200)
    assert "does not verify webhook signatures" in forged.detail


@pytest.mark.parametrize(("shift", "word"), [(120.0, "ahead of"), (-120.0, "behind")])
def test_clock_skew_is_measured_against_the_providers_date(fake, shift, word):
    report = probe_payments(_config(fake, None), clock=lambda: time.time() + shift)
    assert report.clock_skew_seconds is not None
    assert abs(report.clock_skew_seconds - shift) <= 2
    check = report.check("clock_skew")
    assert not check.ok
    assert f"s {word} the providers'" in check.detail
    # within the allowance it passes
    assert probe_payments(_config(fake, None), clock=lambda: time.time() + shift, max_skew=300).ok


def test_unreachable_provider_and_endpoint(fake):
    closed = f"http://127.0.0.1:{free_port()}"
    report = probe_payments(
        _config(fake, None, hyperswitch_base_url=closed), webhook_url=f"{closed}/hook", timeout=2
    )
    assert report.check("hyperswitch_key").detail.startswith("Hyperswitch is unreachable")
    assert report.check("webhook_signed").detail.startswith("the webhook endpoint is unreachable")
    assert report.clock_skew_seconds is None
    assert report.check("clock_skew") is None
    assert not report.ok


def test_no_secret_in_the_report(fake, fake_stripe, endpoint):
    report = probe_payments(
        _config(fake, fake_stripe, hyperswitch_api_key="snd_wrong_secret_value"),
        webhook_url=endpoint.url,
    )
    text = json.dumps(report.to_dict()) + repr(report)
    for secret in ("snd_wrong_secret_value", fake_stripe.api_key, WEBHOOK_KEY):
        assert secret not in text


def _env(monkeypatch, fake: FakeHyperswitch, stripe: FakeStripe) -> None:
    for name, value in {
        "HYPERSWITCH_API_KEY": fake.api_key,
        "HYPERSWITCH_BASE_URL": fake.url,
        "HYPERSWITCH_WEBHOOK_KEYS": WEBHOOK_KEY,
        "STRIPE_SECRET_KEY": stripe.api_key,
        "STRIPE_API_BASE": stripe.url,
    }.items():
        monkeypatch.setenv(name, value)


def test_cli_probe(monkeypatch, capsys, fake, fake_stripe, endpoint):
    _env(monkeypatch, fake, fake_stripe)
    assert main(["probe", "--webhook-url", endpoint.url]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("payments configuration works")
    assert fake.api_key not in out
    monkeypatch.setenv("HYPERSWITCH_API_KEY", "snd_wrong")
    assert main(["probe", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["checks"][0]["status"] == 401


def test_cli_probe_configuration_error_is_one_line(monkeypatch, capsys):
    monkeypatch.delenv("HYPERSWITCH_API_KEY", raising=False)
    assert main(["probe"]) == 2
    err = capsys.readouterr().err
    assert err == "veza-payments: error: HYPERSWITCH_API_KEY is required\n"


def test_the_probe_is_one_span_with_an_event_per_check(fake, fake_stripe, endpoint):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    report = probe_payments(
        _config(fake, fake_stripe), webhook_url=endpoint.url, tracer_provider=provider
    )
    (span,) = exporter.get_finished_spans()
    assert span.name == "payments probe"
    assert span.attributes["veza.probe.ok"] is report.ok is True
    assert [e.name for e in span.events] == [c.name for c in report.checks]
