"""A third-party storage takes part in resumable uploads through the capability protocol.

``MemoryStorage`` below is written here, outside veza-storage, the way an integrator
would write a GCS or Azure adapter: it implements ``Storage`` and ``upload_staging()``,
and ``ResumableUploads`` drives it without knowing its class.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from datetime import UTC, datetime

import pytest

from veza_storage import (
    ChecksumMismatchError,
    ChunkConflictError,
    InMemoryUploadSessionStore,
    LostChunksError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectReader,
    ResumableUploads,
    Storage,
    StorageConfigurationError,
    SupportsUploadStaging,
    UploadIncompleteError,
    UploadStaging,
    validate_key,
)

KiB = 1024


class MemoryStorage:
    """Objects in a dict: the Storage protocol plus the staging capability."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.modified: dict[str, datetime] = {}

    def _info(self, key: str) -> ObjectInfo:
        if key not in self.objects:
            raise ObjectNotFoundError(key)
        data, content_type = self.objects[key]
        return ObjectInfo(
            key=key,
            size=len(data),
            content_type=content_type,
            sha256=hashlib.sha256(data).hexdigest(),
            last_modified=self.modified[key],
            metadata={},
        )

    def put(self, key, stream, *, content_type, metadata=None, if_absent=False):
        validate_key(key)
        data = stream if isinstance(stream, bytes) else b"".join(stream)
        self.objects[key] = (data, content_type)
        self.modified[key] = datetime.now(tz=UTC)
        return self._info(key)

    def open(self, key, *, byte_range=None):
        info = self._info(key)
        return ObjectReader(io.BytesIO(self.objects[key][0]), info, start=0, length=info.size)

    def stat(self, key):
        return self._info(key)

    def exists(self, key):
        return key in self.objects

    def delete(self, key):
        self.objects.pop(key, None)

    def list(self, prefix=""):
        return iter([self._info(k) for k in sorted(self.objects) if k.startswith(prefix)])

    def copy(self, source_key, destination_key, *, if_absent=False):
        self.objects[destination_key] = self.objects[source_key]
        self.modified[destination_key] = datetime.now(tz=UTC)
        return self._info(destination_key)

    def presign_get(self, key, *, expires_in, download_filename=None, content_type=None):
        return f"memory://{key}"

    def upload_staging(self) -> UploadStaging:
        return MemoryStaging(self)


class MemoryStaging:
    """Chunks in a dict per session; one lock per session."""

    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage
        self.chunks: dict[str, dict[int, bytes]] = {}
        self._locks: dict[str, threading.Lock] = {}

    def begin(self, session):
        self.chunks[session.id] = {}
        self._locks[session.id] = threading.Lock()
        return {"parts": {}}

    @contextlib.contextmanager
    def chunk_lock(self, session):
        with self._locks[session.id]:
            yield

    def write_chunk(self, session, index, data):
        self.chunks[session.id][index] = bytes(data)

    def ready_parts(self, session):
        return [], []

    def complete(self, session, update):
        staged = self.chunks[session.id]
        lost = [
            i
            for i in range(session.chunk_count)
            if hashlib.sha256(staged.get(i, b"")).hexdigest() != session.chunks[i]
        ]
        if lost:
            raise LostChunksError(lost)
        data = b"".join(staged[i] for i in range(session.chunk_count))
        if session.sha256 and hashlib.sha256(data).hexdigest() != session.sha256:
            raise ChecksumMismatchError("the assembled object does not match")
        return self._storage.put(session.key, data, content_type=session.content_type)

    def cleanup(self, session):
        self.chunks.pop(session.id, None)

    def abort(self, session):
        self.cleanup(session)

    def sweep_orphans(self, older_than, known):
        orphans = [sid for sid in self.chunks if not known(sid)]
        for sid in orphans:
            del self.chunks[sid]
        return len(orphans)


def test_a_third_party_storage_runs_resumable_uploads():
    storage = MemoryStorage()
    assert isinstance(storage, Storage)
    assert isinstance(storage, SupportsUploadStaging)
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(200 * KiB)
    session = uploads.begin(
        "third/party.flac",
        len(data),
        chunk_size=64 * KiB,
        content_type="audio/flac",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    pieces = [data[i : i + 64 * KiB] for i in range(0, len(data), 64 * KiB)]
    for index in (3, 1, 0, 2):
        uploads.put_chunk(session, index, data=pieces[index])
    uploads.put_chunk(session, 1, data=pieces[1])  # idempotent
    with pytest.raises(ChunkConflictError):
        uploads.put_chunk(session, 1, data=os.urandom(64 * KiB))
    staging = uploads._staging
    staging.chunks[session][2] = os.urandom(64 * KiB)  # the staged bytes went bad
    with pytest.raises(UploadIncompleteError, match="send them again"):
        uploads.complete(session)
    uploads.put_chunk(session, 2, data=pieces[2])
    info = uploads.complete(session)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.objects["third/party.flac"][0] == data
    assert uploads.complete(session) == storage.stat("third/party.flac")


def test_a_storage_without_the_capability_is_refused_by_name():
    class ReadOnly(MemoryStorage):
        upload_staging = None  # type: ignore[assignment]

    with pytest.raises(StorageConfigurationError, match="upload_staging"):
        ResumableUploads(ReadOnly(), InMemoryUploadSessionStore())  # type: ignore[arg-type]
