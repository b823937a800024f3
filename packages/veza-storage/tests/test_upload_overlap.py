"""A chunk is hashed while it is written, without loosening what a chunk may do.

The overlap is proven deterministically: a fake hash blocks inside ``update`` until the
write has started, and the staging's ``write_chunk`` blocks until hashing has started.
Hashing first and then writing (the old order) times both out; overlapping meets both.
"""

import hashlib
import os
import threading
import types

import pytest

from veza_storage import (
    ChecksumMismatchError,
    ChunkConflictError,
    InMemoryUploadSessionStore,
    ResumableUploads,
    _uploads,
)
from veza_storage._staging_local import LocalStaging

MiB = 1024 * 1024


class Meeting:
    """Two events: each side sets its own, then waits (bounded) for the other's."""

    def __init__(self) -> None:
        self.hashing = threading.Event()
        self.writing = threading.Event()
        self.met: list[str] = []
        self.patience = 3.0  # seconds each side waits for the other

    def hash_side(self) -> None:
        self.hashing.set()
        if self.writing.wait(self.patience):
            self.met.append("hash saw the write")

    def write_side(self) -> None:
        self.writing.set()
        if self.hashing.wait(self.patience):
            self.met.append("write saw the hash")


@pytest.fixture
def meeting(monkeypatch):
    meeting = Meeting()
    real_sha256 = hashlib.sha256

    class MeetingHash:
        def __init__(self, data: bytes = b"") -> None:
            self._inner = real_sha256()
            if data:
                self.update(data)

        def update(self, data: bytes) -> None:
            if len(data) >= MiB:  # only the chunk itself, not small helpers
                meeting.hash_side()
            self._inner.update(data)

        def hexdigest(self) -> str:
            return self._inner.hexdigest()

    monkeypatch.setattr(_uploads, "hashlib", types.SimpleNamespace(sha256=MeetingHash))
    real_record = LocalStaging.chunk_record

    def chunk_record(self, data):  # local disk records a CRC-32: computed while written too
        if len(data) >= MiB:
            meeting.hash_side()
        return real_record(self, data)

    monkeypatch.setattr(LocalStaging, "chunk_record", chunk_record)
    real_write = LocalStaging.write_chunk
    writes: list[int] = []

    def write_chunk(self, session, index, data):
        writes.append(index)
        meeting.write_side()
        return real_write(self, session, index, data)

    monkeypatch.setattr(LocalStaging, "write_chunk", write_chunk)
    meeting.writes = writes
    return meeting


def _upload(storage, size: int, chunk: int) -> tuple[ResumableUploads, str]:
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    session = uploads.begin("overlap/a.bin", size, chunk_size=chunk, content_type="x/y")
    return uploads, session


def test_a_chunk_is_hashed_while_it_is_written(local_storage, meeting):
    data = os.urandom(2 * MiB)
    uploads, session = _upload(local_storage, len(data), len(data))
    uploads.put_chunk(session, 0, data=data)
    assert sorted(meeting.met) == ["hash saw the write", "write saw the hash"]
    info = uploads.complete(session)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    with local_storage.open("overlap/a.bin") as reader:
        assert reader.read() == data


def test_a_chunk_with_a_wrong_declared_digest_is_never_written(local_storage, meeting):
    meeting.patience = 0  # no overlap expected: the digest is checked before writing
    data = os.urandom(2 * MiB)
    uploads, session = _upload(local_storage, len(data), len(data))
    with pytest.raises(ChecksumMismatchError):
        uploads.put_chunk(session, 0, data=data, sha256="0" * 64)
    assert meeting.writes == []
    assert uploads.status(session).received == ()


def test_a_received_chunk_is_never_written_again(local_storage, meeting):
    meeting.patience = 0.1
    data, other = os.urandom(2 * MiB), os.urandom(2 * MiB)
    uploads, session = _upload(local_storage, 2 * len(data), len(data))
    uploads.put_chunk(session, 0, data=data)
    uploads.put_chunk(session, 0, data=data)  # idempotent
    with pytest.raises(ChunkConflictError):
        uploads.put_chunk(session, 0, data=other)
    assert meeting.writes == [0]
    uploads.put_chunk(session, 1, data=other)
    assert uploads.complete(session).sha256 == hashlib.sha256(data + other).hexdigest()
