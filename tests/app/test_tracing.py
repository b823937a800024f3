"""One purchase through the reference app as OpenTelemetry spans (the SDK's in-memory exporter).

The buy request, the payment's webhook and the seller's transfer are three traces: the
buyer's click, the provider's delivery and the worker's batch. Inside each, the
packages' spans are children of the request (or batch) span, the Hyperswitch call sends
the trace on as ``traceparent``, and no secret appears in any attribute. The span tree
is written to the test output folder: docs/tracing.md shows one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _global_provider() -> None:
    """The application's provider, as ``configure_tracing`` installs one (in memory here)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


def _wait(predicate: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _tree(spans: list[ReadableSpan], trace_id: int) -> list[str]:
    mine = [s for s in spans if s.context.trace_id == trace_id]
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(mine, key=lambda s: s.start_time or 0):
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            keys = ("http.response.status_code", "veza.ledger.done", "http.request.resend_count")
            extra = " ".join(f"{k}={span.attributes[k]}" for k in keys if k in span.attributes)
            lines.append(f"{'  ' * depth}{span.name} [{span.kind.name.lower()}] {extra}".rstrip())
            walk(span.context.span_id, depth + 1)

    roots = {s.parent.span_id for s in mine if s.parent} - {s.context.span_id for s in mine}
    for root in [None, *roots]:
        walk(root, 0)
    return lines


def test_one_purchase_as_spans(demo: Any, login: Any, output_dir: Any) -> None:
    EXPORTER.clear()
    buyer = login(demo.url, "listener", demo.services.extra["demo_passwords"]["listener"])
    order = buyer.post("/api/v1/orders", json={"track_id": "demo-2"}).json()
    buyer.post(f"/api/v1/sandbox/payments/{order['payment_id']}/confirm").raise_for_status()
    _wait(lambda: buyer.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "paid")
    _wait(
        lambda: (
            buyer.get(f"/api/v1/orders/{order['order_id']}").json()["transfers"][0]["status"]
            == "completed"
        )
    )
    # the batch's span ends when the worker's run returns, a moment after the commit
    _wait(
        lambda: any(
            s.name == "ledger transfer worker" and s.attributes.get("veza.ledger.done")
            for s in EXPORTER.get_finished_spans()
        )
    )
    spans = list(EXPORTER.get_finished_spans())
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)

    # 1. the buyer's click: the server span, the Hyperswitch call inside it
    (buy,) = by_name["POST /api/v1/orders"]
    assert buy.kind is trace.SpanKind.SERVER
    assert buy.attributes["http.route"] == "/api/v1/orders"
    payment = next(
        s
        for s in by_name["hyperswitch create_payment"]
        if s.context.trace_id == buy.context.trace_id
    )
    assert payment.parent is not None
    http_attempt = next(
        s for s in by_name["POST /payments"] if s.parent.span_id == payment.context.span_id
    )
    assert http_attempt.attributes["http.response.status_code"] == 200
    # 2. the provider's webhook: its own server span
    (hook,) = by_name["POST /webhooks/hyperswitch"]
    assert hook.attributes["http.response.status_code"] == 200
    # 3. the worker's batch that paid the seller, the Stripe call inside it
    batch = next(
        s for s in by_name["ledger transfer worker"] if s.attributes.get("veza.ledger.done")
    )
    stripe_call = next(
        s for s in by_name["stripe transfer"] if s.context.trace_id == batch.context.trace_id
    )
    assert stripe_call.parent is not None
    # never a secret
    dumped = json.dumps([dict(s.attributes or {}) for s in spans])
    for secret in (demo.services.extra["demo_passwords"]["listener"], "api-key", "Bearer"):
        assert secret not in dumped
    # the trees, for the docs
    text = []
    for title, span in (("buy", buy), ("webhook", hook), ("transfer", batch)):
        text.append(f"# {title}")
        text.extend(_tree(spans, span.context.trace_id))
    (output_dir / "purchase-trace.txt").write_text("\n".join(text) + "\n")
    print("\n".join(text))  # noqa: T201 - shown with -s, kept in the output folder


def test_an_incoming_traceparent_is_continued(demo: Any) -> None:
    EXPORTER.clear()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with httpx.Client(base_url=demo.url) as http:
        http.get("/healthz", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    # the server span ends as the response is sent: it may be exported a moment later
    (span,) = _wait(lambda: [s for s in EXPORTER.get_finished_spans() if s.name == "GET /healthz"])
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and span.parent.is_remote


def test_otlp_export_when_the_endpoint_is_configured(tmp_path: Any) -> None:
    """A real OTLP/HTTP receiver on 127.0.0.1 gets the app's spans (in a fresh process)."""
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            del args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "import os\n"
        "from opentelemetry import trace\n"
        "from veza_reference._telemetry import configure_tracing\n"
        "assert configure_tracing(os.environ)\n"
        "from veza_payments import HyperswitchClient\n"
        "import httpx\n"
        "missing = {'error': {'type': 'invalid_request', 'code': 'HE_02', 'message': 'no'}}\n"
        "transport = httpx.MockTransport(lambda r: httpx.Response(404, json=missing))\n"
        "client = HyperswitchClient('snd_k', base_url='http://hs.test', transport=transport)\n"
        "try:\n    client.retrieve_payment('pay_x')\nexcept Exception:\n    pass\n"
        "trace.get_tracer_provider().shutdown()\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        "OTEL_SERVICE_NAME": "veza-reference-test",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    server.shutdown()
    server.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    paths = {path for path, _ in received}
    assert paths == {"/v1/traces"}
    body = b"".join(payload for _, payload in received)
    assert b"hyperswitch retrieve_payment" in body and b"veza-reference-test" in body
    assert b"snd_k" not in body
