"""OpenTelemetry spans for probes: one per URL under one ``ice probe`` span, no credential."""

from __future__ import annotations

import json

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from veza_services import free_udp_tcp_port
from veza_webrtc import probe_ice_servers


def test_each_url_is_a_child_span_with_its_verdict():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    port = free_udp_tcp_port()  # nothing answers there
    results = probe_ice_servers(
        {
            "iceServers": [
                {"urls": f"stun:127.0.0.1:{port}"},
                {
                    "urls": f"turn:127.0.0.1:{port}?transport=tcp",
                    "username": "1900000000:alice",
                    "credential": "very-secret-credential",
                },
            ]
        },
        timeout=0.5,
        tracer_provider=provider,
    )
    assert [r.ok for r in results] == [False, False]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    parent = spans["ice probe"]
    assert parent.attributes["veza.probe.failed"] == 2
    for name, transport in (("stun probe", "udp"), ("turn probe", "tcp")):
        child = spans[name]
        assert child.parent.span_id == parent.context.span_id
        assert child.attributes["server.port"] == port
        assert child.attributes["network.transport"] == transport
        assert child.attributes["veza.probe.ok"] is False
        assert child.attributes["error.type"]
        assert child.status.status_code is StatusCode.ERROR
    dumped = json.dumps([dict(s.attributes or {}) for s in exporter.get_finished_spans()])
    assert "very-secret-credential" not in dumped
    assert "alice" not in dumped
