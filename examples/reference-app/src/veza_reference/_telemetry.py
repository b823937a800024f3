"""Tracing for the reference app: OTLP export when configured.

The packages emit their spans through the OpenTelemetry API (``veza-x[otel]``) into the
global tracer provider; an application decides where they go. This one:

* gets a SERVER span per HTTP request from FastAPI's own OpenTelemetry instrumentation
  (``METHOD /route/{template}``, continuing the caller's ``traceparent``). Routes run in
  the threadpool with the request's context, so the packages' spans (the Hyperswitch
  call under ``POST /api/v1/orders``) are its children, and the Hyperswitch call sends
  the same trace on as ``traceparent``;
* at start-up (:func:`configure_tracing`), when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, installs an SDK tracer provider that
  batches spans to that OTLP/HTTP endpoint, with ``OTEL_SERVICE_NAME`` (default
  ``veza-reference``). Without it nothing is installed and the API stays a no-op.

Query strings, headers and bodies are never recorded (tokens and session cookies live
there).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace


def configure_tracing(environ: Mapping[str, str]) -> bool:
    """Install an OTLP/HTTP-exporting tracer provider when the environment asks for one.

    Returns:
        Whether a provider was installed (``False``: no endpoint configured).
    """
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = environ.get("OTEL_SERVICE_NAME", "veza-reference")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
