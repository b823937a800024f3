"""OpenTelemetry spans for provider calls, seen by the SDK's in-memory exporter; no secret."""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from veza_payments import HyperswitchClient, RetryPolicy
from veza_payments.testing import FakeHyperswitch, FakeStripe, Fault


@pytest.fixture
def traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _everything(spans) -> str:
    return json.dumps(
        [(s.name, dict(s.attributes or {}), [e.name for e in s.events]) for s in spans]
    )


def test_a_payment_is_one_operation_span_with_one_http_span_per_attempt(traced):
    provider, exporter = traced
    with (
        FakeHyperswitch() as fake,
        HyperswitchClient(
            fake.api_key,
            base_url=fake.url,
            tracer_provider=provider,
            sleep=lambda _: None,
            max_retries=RetryPolicy(total=3),
        ) as client,
    ):
        fake.inject(Fault("status", status=503, method="POST"))
        payment = client.create_payment("order-trace-1", amount=1999, currency="EUR")
        base = fake.url
    spans = exporter.get_finished_spans()
    operation = next(s for s in spans if s.name == "hyperswitch create_payment")
    attempts = [s for s in spans if s.kind is SpanKind.CLIENT]
    # 503 before the commit: the client reads the deterministic id back, then sends again
    assert [s.name for s in attempts] == ["POST /payments", "GET /payments/{id}", "POST /payments"]
    assert all(s.parent.span_id == operation.context.span_id for s in attempts)
    first, read_back, second = attempts
    assert read_back.attributes["http.response.status_code"] == 404
    assert read_back.attributes["http.request.resend_count"] == 1
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["error.type"] == "503"
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["http.request.resend_count"] == 2
    assert second.attributes["http.request.method"] == "POST"
    assert second.attributes["server.address"] == "127.0.0.1"
    assert second.attributes["url.full"] == f"{base}/payments"
    assert operation.attributes["veza.operation"] == "create_payment"
    assert fake.api_key not in _everything(spans)
    assert payment.payment_id


def test_a_read_is_named_by_its_route_template(traced):
    provider, exporter = traced
    with (
        FakeHyperswitch() as fake,
        HyperswitchClient(fake.api_key, base_url=fake.url, tracer_provider=provider) as client,
    ):
        payment = client.create_payment("order-trace-2", amount=500, currency="EUR")
        client.retrieve_payment(payment.payment_id)
    names = [s.name for s in exporter.get_finished_spans()]
    assert "GET /payments/{id}" in names
    assert all(payment.payment_id not in n for n in names)  # low-cardinality names


def test_the_trace_context_goes_out_as_traceparent(traced):
    provider, _ = traced
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        return httpx.Response(404, json={"error": {"type": "invalid_request", "code": "HE_02"}})

    client = HyperswitchClient(
        "snd_key",
        base_url="http://hs.test",
        transport=httpx.MockTransport(handler),
        tracer_provider=provider,
    )
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("app request") as parent, pytest.raises(Exception):  # noqa: B017, PT011 - any mapped error
        client.retrieve_payment("pay_missing")
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert seen and seen[0] is not None and seen[0].split("-")[1] == trace_id
    client.close()


def test_a_failed_call_is_an_error_span(traced):
    provider, exporter = traced
    with (
        FakeHyperswitch() as fake,
        HyperswitchClient("snd_wrong", base_url=fake.url, tracer_provider=provider) as client,
        pytest.raises(Exception),  # noqa: B017, PT011 - the mapped authentication error
    ):
        client.create_payment("order-trace-3", amount=500, currency="EUR")
    operation = next(
        s for s in exporter.get_finished_spans() if s.name == "hyperswitch create_payment"
    )
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.attributes["error.type"].endswith("AuthenticationError")
    assert "snd_wrong" not in _everything(exporter.get_finished_spans())


def test_stripe_calls_are_spans(traced, make_connect):
    provider, exporter = traced
    with (
        FakeStripe() as fake,
        make_connect(fake.api_key, base_url=fake.url, tracer_provider=provider) as connect,
        pytest.raises(Exception),  # noqa: B017, PT011 - not found
    ):
        connect.retrieve_transfer("tr_missing")
    span = next(s for s in exporter.get_finished_spans() if s.name == "stripe retrieve transfer")
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["veza.provider"] == "stripe"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.status.status_code is StatusCode.ERROR
    assert fake.api_key not in _everything(exporter.get_finished_spans())


def test_without_a_provider_nothing_is_recorded_and_nothing_breaks():
    with (
        FakeHyperswitch() as fake,
        HyperswitchClient(fake.api_key, base_url=fake.url) as client,
    ):
        assert client.create_payment("order-trace-4", amount=100, currency="EUR").payment_id
