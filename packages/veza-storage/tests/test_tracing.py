"""TracedStorage: every operation a span, over both backends, capabilities kept, no URL recorded."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from veza_storage import (
    InMemoryUploadSessionStore,
    InvalidKeyError,
    LocalStorage,
    LocalURLSigner,
    ObjectNotFoundError,
    ResumableUploads,
    Storage,
    TracedStorage,
)


@pytest.fixture
def traced(tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    backend = LocalStorage(
        tmp_path / "root", signer=LocalURLSigner("0123456789abcdef-key", "/files")
    )
    storage = TracedStorage(backend, tracer_provider=provider)
    return storage, exporter


def test_each_operation_is_a_span(traced):
    storage, exporter = traced
    assert isinstance(storage, Storage)
    storage.put("a/b.mp3", b"12345", content_type="audio/mpeg")
    with storage.open("a/b.mp3") as reader:
        assert reader.read() == b"12345"
    assert storage.stat("a/b.mp3").size == 5
    assert storage.exists("a/b.mp3")
    assert [o.key for o in storage.list("a/")] == ["a/b.mp3"]
    storage.copy("a/b.mp3", "a/c.mp3")
    url = storage.presign_get("a/b.mp3", expires_in=60)
    storage.delete("a/c.mp3")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "storage put",
        "storage open",
        "storage stat",
        "storage exists",
        "storage list",
        "storage copy",
        "storage presign_get",
        "storage delete",
    ]
    put = spans[0]
    assert put.attributes["veza.storage.backend"] == "local"
    assert put.attributes["veza.storage.key"] == "a/b.mp3"
    assert put.attributes["veza.storage.bytes"] == 5
    assert spans[4].attributes["veza.storage.objects"] == 1
    assert url not in json.dumps([dict(s.attributes) for s in spans])


def test_failures_are_error_spans(traced):
    storage, exporter = traced
    with pytest.raises(ObjectNotFoundError):
        storage.stat("missing.mp3")
    with pytest.raises(InvalidKeyError):
        storage.put("../escape", b"x", content_type="text/plain")
    errors = [s for s in exporter.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert [s.attributes["error.type"] for s in errors] == [
        "ObjectNotFoundError",
        "InvalidKeyError",
    ]


def test_resumable_uploads_still_see_the_backends_capabilities(traced, tmp_path):
    storage, _ = traced
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    session_id = uploads.begin("up/x.bin", 8, chunk_size=4, content_type="application/octet-stream")
    uploads.put_chunk(session_id, 0, data=b"abcd")
    uploads.put_chunk(session_id, 1, data=b"efgh")
    info = uploads.complete(session_id)
    assert info.size == 8
    assert storage.stat("up/x.bin").size == 8
