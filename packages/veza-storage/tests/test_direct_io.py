"""Durable writes around the page cache (``O_DIRECT``): same bytes, any alignment, no loss.

Resumable chunks (``_direct``) and durable ``put`` (``_copy``) both write whole aligned
blocks direct.

Direct I/O only takes whole aligned blocks, so each chunk is split into a buffered head,
direct blocks and a buffered tail. These tests publish objects whose chunk sizes and
arrival orders put the boundaries everywhere, with direct I/O on (the test disk accepts
it, asserted), off, and refused by the filesystem half-way; the published bytes and
their SHA-256 must be the uploaded ones in every case.
"""

from __future__ import annotations

import errno
import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import veza_storage._direct as direct_module
from veza_storage import InMemoryUploadSessionStore, LocalStorage, ResumableUploads
from veza_storage._direct import ALIGN, DirectWriter

pytestmark = pytest.mark.skipif(not getattr(os, "O_DIRECT", 0), reason="no O_DIRECT here")


def _upload(storage: LocalStorage, key: str, data: bytes, chunk: int, order: list[int]) -> str:
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    session = uploads.begin(key, len(data), chunk_size=chunk, content_type="x/y")
    for index in order:
        uploads.put_chunk(session, index, data=data[index * chunk : (index + 1) * chunk])
    info = uploads.complete(session)
    with storage.open(key) as reader:
        assert reader.read() == data
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    return info.sha256


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(min_value=1, max_value=5 * ALIGN + 77),
    chunk=st.sampled_from([1, 511, ALIGN - 1, ALIGN, ALIGN + 1, 3 * ALIGN, 10_000]),
    seed=st.randoms(use_true_random=False),
)
def test_any_chunk_alignment_and_order_publishes_the_uploaded_bytes(tmp_path, size, chunk, seed):
    # at most 600 chunks: each put_chunk reads the whole session, so 20,000 one-byte
    # chunks took 94-123 s (quadratic); a one-byte chunk never holds a whole aligned
    # block, so larger sizes at that chunk size cover nothing more of the direct path
    size = min(size, 600 * chunk)
    data = os.urandom(size)
    order = list(range(-(-size // chunk)))
    seed.shuffle(order)
    storage = LocalStorage(tmp_path / f"root-{size}-{chunk}")
    _upload(storage, "a/b.bin", data, chunk, order)


def test_direct_blocks_really_go_direct_and_only_whole_blocks(tmp_path, monkeypatch):
    """The aligned middle of each chunk is written through an ``O_DIRECT`` descriptor.

    This also proves the test disk accepts ``O_DIRECT``: the other tests then cover the
    direct path, not only the fallback.
    """
    direct_writes: list[tuple[int, int]] = []
    real_write = direct_module.write_all

    def spy(fd, data, offset=None):
        if fcntl_flags(fd) & os.O_DIRECT:
            direct_writes.append((offset, len(data)))
        return real_write(fd, data, offset=offset)

    monkeypatch.setattr(direct_module, "write_all", spy)
    chunk = 3 * ALIGN + 100
    data = os.urandom(3 * chunk + 5)
    _upload(LocalStorage(tmp_path / "root"), "k.bin", data, chunk, [2, 0, 3, 1])
    assert direct_writes  # the middle of each chunk went direct
    assert all(offset % ALIGN == 0 and count % ALIGN == 0 for offset, count in direct_writes)


def fcntl_flags(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL)


def test_a_filesystem_refusing_o_direct_at_open_gets_buffered_writes(tmp_path, monkeypatch):
    real_open = os.open

    def refusing(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(direct_module.os, "open", refusing)
    storage = LocalStorage(tmp_path / "root")
    data = os.urandom(5 * ALIGN + 3)
    _upload(storage, "k.bin", data, 2 * ALIGN, [1, 0, 2])
    writer = DirectWriter()
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        assert writer.open_direct(folder, "x", os.O_WRONLY | os.O_CREAT) is None
    finally:
        os.close(folder)
    assert not writer.supported  # asked once, then never again


def test_a_refused_first_direct_write_falls_back_without_losing_bytes(tmp_path, monkeypatch):
    """Some filesystems open ``O_DIRECT`` but want other alignments: ``EINVAL`` on write."""
    real_write = direct_module.write_all
    refused = []

    def refusing(fd, data, offset=None):
        if fcntl_flags(fd) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data, offset=offset)

    monkeypatch.setattr(direct_module, "write_all", refusing)
    storage = LocalStorage(tmp_path / "root")
    data = os.urandom(6 * ALIGN)
    _upload(storage, "k.bin", data, 2 * ALIGN, [0, 1, 2])
    assert refused == [0]  # tried once, then every write went through the page cache


def test_other_errors_of_a_direct_open_are_not_swallowed(tmp_path):
    writer = DirectWriter()
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(FileNotFoundError):
            writer.open_direct(folder, "missing", os.O_WRONLY)
    finally:
        os.close(folder)
    assert writer.supported


# --- LocalStorage.put (fsync on): a readable source through aligned buffers, direct ---


def _put_file(storage: LocalStorage, tmp_path, data: bytes) -> str:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with source.open("rb") as stream:
        info = storage.put("p/object.bin", stream, content_type="x/y")
    with storage.open("p/object.bin") as reader:
        assert reader.read() == data
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    return info.sha256


@pytest.mark.parametrize("size", [1, ALIGN - 1, ALIGN, 5 * 1024 * 1024 + 3, 8 * 1024 * 1024])
def test_a_durable_put_writes_whole_blocks_direct_and_the_tail_buffered(
    tmp_path, monkeypatch, size
):
    import veza_storage._copy as copy_module

    direct_writes: list[tuple[int, int]] = []
    real_write = copy_module.write_all

    def spy(fd, data, offset=None):
        if fcntl_flags(fd) & os.O_DIRECT:
            direct_writes.append((offset, len(data)))
        return real_write(fd, data, offset=offset)

    monkeypatch.setattr(copy_module, "write_all", spy)
    _put_file(LocalStorage(tmp_path / "root"), tmp_path, os.urandom(size))
    assert all(offset % ALIGN == 0 and count % ALIGN == 0 for offset, count in direct_writes)
    assert sum(count for _, count in direct_writes) == size - size % ALIGN


def test_a_put_without_fsync_stays_buffered(tmp_path, monkeypatch):
    opened = []
    real_open = os.open

    def spy(path, flags, *args, **kwargs):
        opened.append(flags & os.O_DIRECT)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(direct_module.os, "open", spy)
    _put_file(LocalStorage(tmp_path / "root", fsync=False), tmp_path, os.urandom(3 * ALIGN))
    assert not any(opened)


def test_a_put_whose_first_direct_write_is_refused_falls_back(tmp_path, monkeypatch):
    import veza_storage._copy as copy_module

    real_write = copy_module.write_all
    refused = []

    def refusing(fd, data, offset=None):
        if fcntl_flags(fd) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data, offset=offset)

    monkeypatch.setattr(copy_module, "write_all", refusing)
    _put_file(LocalStorage(tmp_path / "root"), tmp_path, os.urandom(9 * 1024 * 1024 + 1))
    assert refused == [0]


def test_a_disk_error_in_a_direct_put_fails_the_put_and_leaves_nothing(tmp_path, monkeypatch):
    """An I/O error mid-way stops the reader, the hasher and the writer: no object, no temp."""
    import threading

    import veza_storage._copy as copy_module

    real_write = copy_module.write_all

    def failing(fd, data, offset=None):
        if fcntl_flags(fd) & os.O_DIRECT and offset and offset >= 8 * 1024 * 1024:
            raise OSError(errno.EIO, "Input/output error")
        return real_write(fd, data, offset=offset)

    monkeypatch.setattr(copy_module, "write_all", failing)
    storage = LocalStorage(tmp_path / "root")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(32 * 1024 * 1024))
    outcome: list[BaseException] = []

    def put() -> None:
        try:
            with source.open("rb") as stream:
                storage.put("p/object.bin", stream, content_type="x/y")
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=put)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the put hung after the disk error"
    assert [exc.errno for exc in outcome] == [errno.EIO]
    assert not storage.exists("p/object.bin")
    assert sorted(p.name for p in (tmp_path / "root" / "p").iterdir()) == []


def test_a_direct_read_refused_at_complete_falls_back_to_buffered_reads(tmp_path, monkeypatch):
    """Another process may complete an upload it never wrote to: a refused read is not fatal."""
    import veza_storage._staging_local as staging_module

    real_preadv = os.preadv
    refused = []

    def refusing(fd, buffers, offset):
        if fcntl_flags(fd) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(staging_module.os, "preadv", refusing)
    data = os.urandom(3 * ALIGN + 17)
    _upload(LocalStorage(tmp_path / "root"), "k.bin", data, 2 * ALIGN, [1, 0])
    assert refused == [0]
