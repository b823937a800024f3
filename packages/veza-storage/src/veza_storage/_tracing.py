"""OpenTelemetry spans for storage operations, when ``veza-storage[otel]`` is installed.

Without the extra every helper here is a no-op costing one attribute lookup. With it,
spans go to the tracer provider the caller passes, or to the global one the
application configured (the OpenTelemetry API's own convention for libraries): veza
never installs a provider, an exporter or a propagator. Storage spans carry the
backend, the object key and sizes; credentials, presigned URLs and bodies are never
recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from veza_storage._version import __version__

if TYPE_CHECKING:  # the [otel] extra's types; never imported at run time
    from opentelemetry.trace import Span, Tracer, TracerProvider

try:  # the [otel] extra
    import opentelemetry.trace

    _otel: Any = opentelemetry
except ImportError:  # pragma: no cover - exercised by the isolated import check
    _otel = None

Attributes = Mapping[str, str | int | float | bool]


def tracer(provider: TracerProvider | None = None) -> Tracer | None:
    """The package's tracer from ``provider`` (default: the global provider), or ``None``."""
    if _otel is None:
        return None
    source = provider if provider is not None else _otel.trace.get_tracer_provider()
    return source.get_tracer("veza_storage", __version__)


@contextlib.contextmanager
def span(
    active: Tracer | None,
    name: str,
    attributes: Attributes,
    *,
    client: bool = False,
) -> Iterator[Span | None]:
    """A span around a block; exceptions are recorded with ``error.type``, then re-raised."""
    if active is None:
        yield None
        return
    trace = _otel.trace
    kind = trace.SpanKind.CLIENT if client else trace.SpanKind.INTERNAL
    with active.start_as_current_span(
        name, kind=kind, attributes=dict(attributes), record_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__name__)
            current.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            raise


def start(active: Tracer | None, name: str, attributes: Attributes) -> Span | None:
    """A span that is not made current (for work spread over a generator's life), or None."""
    if active is None:
        return None
    return active.start_span(name, attributes=dict(attributes))
