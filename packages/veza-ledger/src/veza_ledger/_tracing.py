"""OpenTelemetry spans for ledger operations, when ``veza-ledger[otel]`` is installed.

Without the extra every helper here is a no-op costing one attribute lookup. With it,
spans go to the tracer provider the caller passes, or to the global one the
application configured (the OpenTelemetry API's own convention for libraries): veza
never installs a provider, an exporter or a propagator. Sweep and worker spans carry
the run's counts (rows examined, done, failed, parked); ids of money rows and provider
objects are not recorded on them (the provider call spans of veza-payments nest inside
when the worker uses it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from veza_ledger._version import __version__

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
    return source.get_tracer("veza_ledger", __version__)


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


P = ParamSpec("P")
R = TypeVar("R")


def _counts(report: object) -> dict[str, int]:
    """Numbers worth a span attribute from an attrs report: ints, list lengths, dict sums."""
    counts: dict[str, int] = {}
    for field in getattr(report, "__attrs_attrs__", ()):
        value = getattr(report, field.name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            counts[field.name] = value
        elif isinstance(value, list):
            counts[field.name] = len(value)
        elif isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
            counts[field.name] = sum(value.values())
    return counts


def traced_run(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a sweep or worker batch inside a span named ``name`` with its report's counts.

    Uses the global tracer provider (the application's), like every other library
    instrumented with the OpenTelemetry API; no-op without the ``otel`` extra.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(tracer(), name, {"veza.ledger.run": name}) as current:
                result = fn(*args, **kwargs)
                if current is not None:
                    for key, value in _counts(result).items():
                        current.set_attribute(f"veza.ledger.{key}", value)
                return result

        return run

    return decorate
