"""Staged chunks written around the page cache (``_direct``): same bytes, any alignment.

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
