"""Local resumable uploads: the whole-object digest kept while in-order chunks are written.

A process that writes chunks 0, 1, 2, ... in order hashes the whole object as it goes;
``complete`` then checks each chunk on disk against its recorded digest instead of
hashing the whole file again. These tests pin when that path is taken, that every
other case falls back to hashing the assembled file, and that whatever path is taken
the published object's bytes are the ones its SHA-256 describes. Two
``ResumableUploads`` on one session store and one root stand for two processes.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import veza_storage._staging_local as staging_module
from veza_storage import (
    ChecksumMismatchError,
    FileUploadSessionStore,
    LocalStorage,
    ResumableUploads,
    UploadIncompleteError,
)
from veza_storage._staging import ObservesRecords

KiB = 1024
CHUNK = 64 * KiB


def chunks_of(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def paths(monkeypatch):
    """Records which verification each ``complete`` used: ``chunks`` or ``whole``."""
    taken: list[str] = []
    real_chunks, real_whole = staging_module._verify_chunks, staging_module._verify_staged

    def verify_chunks(*args, **kwargs):
        taken.append("chunks")
        return real_chunks(*args, **kwargs)

    def verify_whole(*args, **kwargs):
        taken.append("whole")
        return real_whole(*args, **kwargs)

    monkeypatch.setattr(staging_module, "_verify_chunks", verify_chunks)
    monkeypatch.setattr(staging_module, "_verify_staged", verify_whole)
    return taken


def published(storage: LocalStorage, key: str) -> bytes:
    with storage.open(key) as reader:
        return reader.read()


def tamper(storage: LocalStorage, session: str, index: int, data: bytes) -> None:
    with (storage.root / ".veza-uploads" / session / "data").open("r+b") as f:
        f.seek(index * CHUNK)
        f.write(data)


def test_local_staging_hears_which_digest_was_recorded(local_storage):
    assert isinstance(local_storage.upload_staging(), ObservesRecords)


def test_in_order_chunks_complete_by_checking_each_chunk(local_storage, tmp_path, paths):
    data = os.urandom(5 * CHUNK + 123)
    uploads = ResumableUploads(local_storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("a/in-order", len(data), chunk_size=CHUNK, content_type="x/y")
    for index, piece in enumerate(chunks_of(data)):
        uploads.put_chunk(session, index, piece)
    info = uploads.complete(session)
    assert paths == ["chunks"]
    assert info.sha256 == sha(data)
    assert published(local_storage, "a/in-order") == data
    assert uploads.complete(session).sha256 == sha(data)  # idempotent, no second pass
    assert paths == ["chunks"]


def test_a_large_in_order_upload_hashes_beside_the_writes(local_storage, tmp_path, paths):
    """Chunks of 1 MiB or more take the threaded branch; the digest is still exact."""
    data = os.urandom(3 * 1024 * KiB + 5)
    uploads = ResumableUploads(local_storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("big", len(data), chunk_size=1024 * KiB, content_type="x/y")
    for index, piece in enumerate(chunks_of(data, 1024 * KiB)):
        uploads.put_chunk(session, index, piece)
    assert uploads.complete(session).sha256 == sha(data)
    assert paths == ["chunks"]
    assert published(local_storage, "big") == data


@pytest.mark.parametrize(
    "case", ["out of order", "another process wrote one", "restarted", "declared wrong"]
)
def test_every_other_case_hashes_the_assembled_file(local_storage, tmp_path, paths, case):
    data = os.urandom(4 * CHUNK)
    store = FileUploadSessionStore(tmp_path / "s")
    first, second = ResumableUploads(local_storage, store), ResumableUploads(local_storage, store)
    declared = "0" * 64 if case == "declared wrong" else sha(data)
    session = first.begin("k", len(data), chunk_size=CHUNK, content_type="x/y", sha256=declared)
    order = [1, 0, 2, 3] if case == "out of order" else [0, 1, 2, 3]
    for index in order:
        sender = second if case == "another process wrote one" and index == 2 else first
        sender.put_chunk(session, index, chunks_of(data)[index])
    completer = second if case == "restarted" else first
    if case == "declared wrong":  # every chunk is as recorded: the declaration is wrong
        with pytest.raises(ChecksumMismatchError, match="does not match"):
            completer.complete(session)
        assert paths == ["chunks"]
        assert not local_storage.exists("k")
        return
    assert completer.complete(session).sha256 == sha(data)
    assert paths == ["whole"]
    assert published(local_storage, "k") == data


def test_a_chunk_changed_on_disk_after_it_was_written_is_asked_for_again(
    local_storage, tmp_path, paths
):
    data = os.urandom(4 * CHUNK)
    uploads = ResumableUploads(local_storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("t", len(data), chunk_size=CHUNK, content_type="x/y")  # no sha256
    for index, piece in enumerate(chunks_of(data)):
        uploads.put_chunk(session, index, piece)
    tamper(local_storage, session, 2, os.urandom(CHUNK))
    with pytest.raises(UploadIncompleteError, match="send them again"):
        uploads.complete(session)
    assert paths == ["chunks"]
    assert uploads.status(session).missing == (2,)
    assert not local_storage.exists("t")
    uploads.put_chunk(session, 2, chunks_of(data)[2])
    assert uploads.complete(session).sha256 == sha(data)
    assert published(local_storage, "t") == data


def test_a_chunk_rewritten_by_another_process_after_it_was_lost_is_not_trusted(
    local_storage, tmp_path, paths
):
    """The running digest holds the old chunk; the session records the new one.

    Each chunk on disk matches its record, so only the comparison of the records with
    the digests the running hash was fed with can tell that the running digest is not
    the object's.
    """
    data = os.urandom(3 * CHUNK)
    other = os.urandom(CHUNK)
    store = FileUploadSessionStore(tmp_path / "s")
    first, second = ResumableUploads(local_storage, store), ResumableUploads(local_storage, store)
    session = first.begin("r", len(data), chunk_size=CHUNK, content_type="x/y")
    for index, piece in enumerate(chunks_of(data)):
        first.put_chunk(session, index, piece)
    tamper(local_storage, session, 1, bytes(CHUNK))  # lost in a host crash...
    crashed = store.get(session)  # ... so the host came back under a new boot
    crashed.backend["boots"] = ["the-boot-before", *crashed.backend["boots"]]
    assert store.replace(crashed, expected_version=crashed.version)
    with pytest.raises(UploadIncompleteError, match="lost"):
        second.complete(session)  # the other process finds chunk 1 lost...
    second.put_chunk(session, 1, other)  # ... and receives other bytes for it
    expected = data[:CHUNK] + other + data[2 * CHUNK :]
    info = first.complete(session)
    assert paths == ["whole", "whole"]
    assert info.sha256 == sha(expected)
    assert published(local_storage, "r") == expected


class FailingOnce(FileUploadSessionStore):
    """A session store whose next ``replace`` fails (the database went away)."""

    fail_next = False

    def replace(self, session, *, expected_version):
        if self.fail_next:
            self.fail_next = False
            msg = "the store is unreachable"
            raise OSError(msg)
        return super().replace(session, expected_version=expected_version)


def test_a_chunk_whose_record_failed_ends_the_running_digest(local_storage, tmp_path, paths):
    data, other = os.urandom(3 * CHUNK), os.urandom(CHUNK)
    store = FailingOnce(tmp_path / "s")
    first, second = ResumableUploads(local_storage, store), ResumableUploads(local_storage, store)
    session = first.begin("f", len(data), chunk_size=CHUNK, content_type="x/y")
    first.put_chunk(session, 0, chunks_of(data)[0])
    store.fail_next = True
    with pytest.raises(OSError, match="unreachable"):
        first.put_chunk(session, 1, chunks_of(data)[1])  # written, never recorded
    second.put_chunk(session, 1, other)  # the client retried elsewhere, other bytes
    first.put_chunk(session, 2, chunks_of(data)[2])
    expected = data[:CHUNK] + other + data[2 * CHUNK :]
    assert first.complete(session).sha256 == sha(expected)
    assert paths == ["whole"]
    assert published(local_storage, "f") == expected


def test_running_digests_are_bounded_and_an_evicted_session_still_completes(
    local_storage, tmp_path, paths, monkeypatch
):
    monkeypatch.setattr(staging_module, "_TRACKED", 2)
    uploads = ResumableUploads(local_storage, FileUploadSessionStore(tmp_path / "s"))
    data = os.urandom(2 * CHUNK)
    sessions = [
        uploads.begin(f"b/{n}", len(data), chunk_size=CHUNK, content_type="x/y") for n in range(3)
    ]
    for session in sessions:
        uploads.put_chunk(session, 0, data[:CHUNK])
    assert len(uploads._staging._running) == 2
    for session in sessions:
        uploads.put_chunk(session, 1, data[CHUNK:])
        assert uploads.complete(session).sha256 == sha(data)
    assert paths == ["whole", "chunks", "chunks"]  # the first was forgotten
    assert uploads._staging._running == {}
    aborted = uploads.begin("b/x", len(data), chunk_size=CHUNK, content_type="x/y")
    uploads.put_chunk(aborted, 0, data[:CHUNK])
    uploads.abort(aborted)
    assert uploads._staging._running == {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.just([0, 1, 2, 3]) | st.permutations(range(4)),  # in order: the fast path
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
                session, index, bytes(data[index * CHUNK : (index + 1) * CHUNK])
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
                session, lost, bytes(data[lost * CHUNK : (lost + 1) * CHUNK])
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
