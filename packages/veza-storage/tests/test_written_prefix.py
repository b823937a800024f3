"""``complete`` without a read-back: the digest of what this process wrote, only while true.

A process that staged the chunks in index order knows the SHA-256 of the assembled
file without reading it (``veza_storage._written``). These tests hold it to the one
thing that matters: an object is published only with the bytes that were uploaded, and
whatever changed the staged file outside this process's own chunk writes (another
instance, a tamperer, a repair) sends ``complete`` back to reading the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import veza_storage._staging_local as staging_module
from veza_storage import (
    InMemoryUploadSessionStore,
    LocalStorage,
    ResumableUploads,
    UploadIncompleteError,
)
from veza_storage._written import changes_are_stamped

CHUNK = 64 * 1024  # the smallest chunk size; a multiple of the direct-I/O block


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ``preadv`` the staging makes: (offset, bytes read)."""
    real = os.preadv
    seen: list[tuple[int, int]] = []

    def spy(fd: int, buffers: list[memoryview], offset: int) -> int:
        count = real(fd, buffers, offset)
        seen.append((offset, count))
        return count

    monkeypatch.setattr(staging_module.os, "preadv", spy)
    return seen


def _pieces(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def _begin(uploads: ResumableUploads, key: str, data: bytes) -> str:
    return uploads.begin(
        key,
        len(data),
        chunk_size=CHUNK,
        content_type="x/y",
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _stamped(uploads: ResumableUploads) -> bool:
    """Whether this filesystem gives every change a new change time (else: always read)."""
    return bool(uploads._staging._stamped)


def _staged(storage: LocalStorage, session: str) -> Path:
    return storage.root / ".veza-uploads" / session / "data"


def test_the_probe_sees_multigrain_change_times_where_the_kernel_has_them(tmp_path):
    """Linux 6.13+ stamps every change after a read of the change time (ext4, tmpfs)."""
    fd = os.open(tmp_path / "probe", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        stamped = changes_are_stamped(fd)
    finally:
        os.close(fd)
    release = tuple(int(part) for part in os.uname().release.split(".")[:2] if part.isdigit())
    if release >= (6, 13):
        assert stamped
    assert (tmp_path / "probe").stat().st_size == 1  # one zero byte, written six times


def test_in_order_chunks_are_published_without_reading_them_back(tmp_path, reads):
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(4 * CHUNK + 100)
    session = _begin(uploads, "k.bin", data)
    for index, piece in enumerate(_pieces(data)):
        uploads.put_chunk(session, index, data=piece)
    info = uploads.complete(session)
    read_back = sum(count for _, count in reads)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert read_back == (0 if _stamped(uploads) else len(data))
    with storage.open("k.bin") as reader:
        assert reader.read() == data


def test_out_of_order_chunks_read_back_only_after_the_written_prefix(tmp_path, reads):
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(5 * CHUNK)
    session = _begin(uploads, "k.bin", data)
    pieces = _pieces(data)
    for index in (0, 2, 1, 3, 4):  # 2 arrives early: the prefix stops at 0 and 1
        uploads.put_chunk(session, index, data=pieces[index])
    info = uploads.complete(session)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    first = min(offset for offset, _ in reads)
    assert first == (2 * CHUNK if _stamped(uploads) else 0)
    assert sum(count for _, count in reads) == len(data) - first


def test_a_chunk_written_by_another_instance_sends_complete_back_to_reading(tmp_path, reads):
    storage = LocalStorage(tmp_path / "root")
    store = InMemoryUploadSessionStore()
    first, second = ResumableUploads(storage, store), ResumableUploads(storage, store)
    data = os.urandom(4 * CHUNK)
    session = _begin(first, "k.bin", data)
    pieces = _pieces(data)
    first.put_chunk(session, 0, data=pieces[0])
    second.put_chunk(session, 1, data=pieces[1])  # the other instance: the chain breaks
    first.put_chunk(session, 2, data=pieces[2])
    first.put_chunk(session, 3, data=pieces[3])
    assert first.complete(session).sha256 == hashlib.sha256(data).hexdigest()
    assert min(offset for offset, _ in reads) == 0
    assert sum(count for _, count in reads) == len(data)


def test_a_change_between_two_chunk_writes_is_seen_and_never_published(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(3 * CHUNK)
    session = _begin(uploads, "k.bin", data)
    pieces = _pieces(data)
    uploads.put_chunk(session, 0, data=pieces[0])
    with _staged(storage, session).open("r+b") as staged:  # a tamperer, between two chunks
        staged.write(b"\xff" * 100)
    uploads.put_chunk(session, 1, data=pieces[1])
    uploads.put_chunk(session, 2, data=pieces[2])
    with pytest.raises(UploadIncompleteError, match="send them again"):
        uploads.complete(session)
    assert not storage.exists("k.bin")
    uploads.put_chunk(session, 0, data=pieces[0])  # the resend repairs it
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()


def test_coarse_change_times_always_read_back(tmp_path, reads, monkeypatch):
    """Where two writes in one clock tick may share a change time, nothing is trusted."""
    monkeypatch.setattr(staging_module, "changes_are_stamped", lambda fd: False)
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(2 * CHUNK)
    session = _begin(uploads, "k.bin", data)
    for index, piece in enumerate(_pieces(data)):
        uploads.put_chunk(session, index, data=piece)
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()
    assert sum(count for _, count in reads) == len(data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.one_of(st.just([0, 1, 2, 3]), st.permutations(range(4))),  # in order: the fast path
    writers=st.lists(st.sampled_from([0, 0, 0, 1]), min_size=4, max_size=4),
    tamper=st.one_of(st.none(), st.tuples(st.integers(0, 4), st.integers(0, 3))),
)
def test_whatever_wrote_the_file_only_the_uploaded_bytes_are_published(
    tmp_path_factory, order, writers, tamper
):
    """Chunks in any order from two instances, a tamperer at any point: never a wrong object.

    ``tamper`` is (after how many chunk writes, which chunk): the tamperer overwrites that
    chunk's first bytes with other bytes. If a chunk write of its index came later, the
    bytes were repaired by it and the object is right; otherwise ``complete`` must refuse.
    """
    storage = LocalStorage(tmp_path_factory.mktemp("root"))
    store = InMemoryUploadSessionStore()
    instances = [ResumableUploads(storage, store), ResumableUploads(storage, store)]
    data = os.urandom(4 * CHUNK)
    pieces = _pieces(data)
    session = _begin(instances[0], "k.bin", data)
    damaged = False
    for step, index in enumerate([*order, None]):
        if tamper is not None and tamper[0] == step:
            with _staged(storage, session).open("r+b") as staged:
                staged.seek(tamper[1] * CHUNK)
                staged.write(bytes(b ^ 0xFF for b in pieces[tamper[1]][:16]))
            damaged = tamper[1] in order[:step]  # written before: nothing repairs it
        if index is not None:
            instances[writers[step]].put_chunk(session, index, data=pieces[index])
    if damaged:
        with pytest.raises(UploadIncompleteError):
            instances[0].complete(session)
        assert not storage.exists("k.bin")
        return
    assert instances[0].complete(session).sha256 == hashlib.sha256(data).hexdigest()
    with storage.open("k.bin") as reader:
        assert reader.read() == data
