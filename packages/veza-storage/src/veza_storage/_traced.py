"""``TracedStorage``: every storage operation as an OpenTelemetry span, any backend.

A wrapper rather than code inside each backend: it works the same over
:class:`LocalStorage`, :class:`S3Storage` and your own :class:`Storage`, and costs
nothing when you do not wrap. Capabilities the wrapped backend has (upload staging,
server-side copy, presigning) stay visible through it, so :class:`ResumableUploads`
and the migration use them as before.

Spans are named ``storage <operation>`` (``storage put``) with ``veza.storage.backend``,
``veza.storage.key`` and, where known, ``veza.storage.bytes``; S3 backends add
``aws.s3.bucket``. Presigned URLs, credentials and bodies are never recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from veza_storage import _tracing
from veza_storage._protocol import Storage
from veza_storage._stream import ObjectReader, Source
from veza_storage._types import ByteRange, ObjectInfo

if TYPE_CHECKING:  # the [otel] extra's types; never imported at run time
    from opentelemetry.trace import Span, TracerProvider


class TracedStorage:
    """A :class:`Storage` whose operations are spans (``veza-storage[otel]``).

    Args:
        storage: The backend to wrap.
        tracer_provider: An OpenTelemetry tracer provider; the global one by default.
            Without the ``otel`` extra the wrapper only delegates.
    """

    def __init__(self, storage: Storage, *, tracer_provider: TracerProvider | None = None) -> None:
        self.wrapped = storage
        self._tracer = _tracing.tracer(tracer_provider)
        backend = type(storage).__name__.removesuffix("Storage").lower() or "custom"
        self._base: dict[str, str | int] = {"veza.storage.backend": backend}
        bucket = getattr(storage, "bucket", None)
        if isinstance(bucket, str):
            self._base["aws.s3.bucket"] = bucket

    def __repr__(self) -> str:
        return f"TracedStorage({self.wrapped!r})"

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the backend's own attributes
        # capabilities (staging, copy, presign) and settings stay reachable
        return getattr(self.wrapped, name)

    def _span(
        self, operation: str, key: str, **extra: str | int
    ) -> contextlib.AbstractContextManager[Span | None]:
        attributes = {**self._base, "veza.storage.key": key, **extra}
        return _tracing.span(self._tracer, f"storage {operation}", attributes)

    def put(
        self,
        key: str,
        stream: Source,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Store ``stream`` under ``key`` (a span with the stored size)."""
        with self._span("put", key) as current:
            info = self.wrapped.put(
                key, stream, content_type=content_type, metadata=metadata, if_absent=if_absent
            )
            if current is not None:
                current.set_attribute("veza.storage.bytes", info.size)
            return info

    def open(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectReader:
        """Open a streaming reader (the span covers opening, not the caller's reads)."""
        extra: dict[str, str | int] = {}
        if byte_range is not None:
            extra["veza.storage.range"] = f"{byte_range.start}-{byte_range.end}"
        with self._span("open", key, **extra):
            return self.wrapped.open(key, byte_range=byte_range)

    def stat(self, key: str) -> ObjectInfo:
        """The object's info."""
        with self._span("stat", key):
            return self.wrapped.stat(key)

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        with self._span("exists", key):
            return self.wrapped.exists(key)

    def delete(self, key: str) -> None:
        """Delete the object."""
        with self._span("delete", key):
            self.wrapped.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix``, still lazily; the span ends when the listing does."""
        span = _tracing.start(
            self._tracer, "storage list", {**self._base, "veza.storage.key": prefix}
        )
        count = 0
        try:
            for info in self.wrapped.list(prefix):
                count += 1
                yield info
        finally:
            if span is not None:
                span.set_attribute("veza.storage.objects", count)
                span.end()

    def copy(self, source_key: str, destination_key: str, *, if_absent: bool = False) -> ObjectInfo:
        """Copy an object within the backend."""
        with self._span("copy", source_key, **{"veza.storage.destination_key": destination_key}):
            return self.wrapped.copy(source_key, destination_key, if_absent=if_absent)

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A presigned GET URL (the URL itself is never recorded)."""
        with self._span("presign_get", key, **{"veza.storage.expires_in": expires_in}):
            return self.wrapped.presign_get(
                key,
                expires_in=expires_in,
                download_filename=download_filename,
                content_type=content_type,
            )
