"""Resumable uploads on local disk across processes: whatever the interleaving, what is
published is what its SHA-256 says.

Two ``ResumableUploads`` on one session store and one root stand for two processes
(two app instances receiving alternate chunks of one upload).
"""

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_storage import (
    ChecksumMismatchError,
    FileUploadSessionStore,
    LocalStorage,
    ResumableUploads,
    UploadIncompleteError,
)

KiB = 1024
CHUNK = 64 * KiB


def chunks_of(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def published(storage: LocalStorage, key: str) -> bytes:
    with storage.open(key) as reader:
        return reader.read()


def tamper(storage: LocalStorage, session: str, index: int, data: bytes) -> None:
    with (storage.root / ".veza-uploads" / session / "data").open("r+b") as f:
        f.seek(index * CHUNK)
        f.write(data)


class FailingOnce(FileUploadSessionStore):
    """A session store whose next ``replace`` fails (the database went away)."""

    fail_next = False

    def replace(self, session, *, expected_version):
        if self.fail_next:
            self.fail_next = False
            msg = "the store is unreachable"
            raise OSError(msg)
        return super().replace(session, expected_version=expected_version)


def test_a_chunk_written_but_never_recorded_can_be_replaced_by_other_bytes(local_storage, tmp_path):
    data, other = os.urandom(3 * CHUNK), os.urandom(CHUNK)
    store = FailingOnce(tmp_path / "s")
    first, second = ResumableUploads(local_storage, store), ResumableUploads(local_storage, store)
    session = first.begin("f", len(data), chunk_size=CHUNK, content_type="x/y")
    first.put_chunk(session, 0, data=chunks_of(data)[0])
    store.fail_next = True
    with pytest.raises(OSError, match="unreachable"):
        first.put_chunk(session, 1, data=chunks_of(data)[1])  # written, never recorded
    second.put_chunk(session, 1, data=other)  # the client retried elsewhere, other bytes
    first.put_chunk(session, 2, data=chunks_of(data)[2])
    expected = data[:CHUNK] + other + data[2 * CHUNK :]
    assert first.complete(session).sha256 == sha(expected)
    assert published(local_storage, "f") == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.just([0, 1, 2, 3]) | st.permutations(range(4)),  # in order, one process, often
    senders=st.just([False] * 4) | st.lists(st.booleans(), min_size=4, max_size=4),
    completer=st.just(False) | st.booleans(),
    lost=st.none() | st.integers(0, 3),
    resend_other=st.booleans(),
    declared=st.booleans(),
)
def test_whatever_the_interleaving_the_published_bytes_match_their_digest(
    order, senders, completer, lost, resend_other, declared
):
    """Any order, any process per chunk, a chunk lost on disk and sent again (maybe with
    other bytes): what is published hashes to its recorded SHA-256 and to the declared
    one. (A loss is only guaranteed to be seen with a declared SHA-256 or a reboot.)"""
    declared = declared or lost is not None
    with tempfile.TemporaryDirectory() as work:
        storage = LocalStorage(Path(work) / "root")
        store = FileUploadSessionStore(Path(work) / "s")
        processes = (ResumableUploads(storage, store), ResumableUploads(storage, store))
        data = bytearray(os.urandom(4 * CHUNK))
        digest = sha(bytes(data)) if declared else None
        session = processes[0].begin(
            "p", len(data), chunk_size=CHUNK, content_type="x/y", sha256=digest
        )
        for index in order:
            processes[senders[index]].put_chunk(
                session, index, data=bytes(data[index * CHUNK : (index + 1) * CHUNK])
            )
        finisher = processes[completer]
        if lost is not None:
            tamper(storage, session, lost, bytes(CHUNK))
            with pytest.raises(UploadIncompleteError, match="send them again"):
                finisher.complete(session)
            assert finisher.status(session).missing == (lost,)
            if resend_other:
                data[lost * CHUNK : (lost + 1) * CHUNK] = os.urandom(CHUNK)
            processes[senders[lost]].put_chunk(
                session, lost, data=bytes(data[lost * CHUNK : (lost + 1) * CHUNK])
            )
            if resend_other:  # the bytes no longer match the declared SHA-256
                with pytest.raises(ChecksumMismatchError, match="does not match"):
                    finisher.complete(session)
                assert not storage.exists("p")
                return
        info = finisher.complete(session)
        body = published(storage, "p")
        assert body == bytes(data)
        assert info.sha256 == sha(body)
        assert processes[not completer].complete(session).sha256 == sha(body)
