"""Copy and verify buffers are never zero-filled on the Python heap while the GIL is held.

``bytearray(4 MiB)`` page-faults and zero-fills its memory inside the allocation,
holding the GIL: three of them cost 20-60 ms on a busy two-core machine, during which
an application's event loop (the reference app runs ``complete`` in its threadpool)
cannot run at all. ``bench/healthz.py`` saw it as the ``/healthz`` tail under upload
load. The buffers are anonymous memory maps now: the kernel hands out zeroed pages when
``preadv``/``readinto`` first write them, with the GIL released. ``tracemalloc`` sees
every Python-heap allocation and none of the maps, so the peak it reports while a
small upload completes (or a small stream is stored) shows whether big buffers were
allocated on the heap.
"""

import io
import tracemalloc
from collections.abc import Callable

import pytest

from veza_storage import InMemoryUploadSessionStore, LocalStorage, ResumableUploads
from veza_storage._buffers import zeroed

KiB, MiB = 1024, 1024 * 1024


def _heap_peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_completing_an_upload_allocates_no_big_heap_buffer(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "objects")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore(), ttl=3600)
    data = bytes(range(256)) * 1200  # 300 KiB in two chunks
    upload = uploads.begin(
        "tracks/a.wav", len(data), chunk_size=256 * KiB, content_type="audio/wav"
    )
    uploads.put_chunk(upload, 0, data=data[: 256 * KiB])
    uploads.put_chunk(upload, 1, data=data[256 * KiB :])

    peak = _heap_peak(lambda: uploads.complete(upload))

    assert peak < 1 * MiB, f"completing a 300 KiB upload peaked at {peak / MiB:.1f} MiB of heap"
    with storage.open("tracks/a.wav") as reader:
        assert reader.read() == data  # and the bytes are right


def test_storing_a_stream_allocates_no_big_heap_buffer(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "objects")
    data = bytes(range(256)) * 4096  # 1 MiB, not a regular file: the pipelined path

    peak = _heap_peak(
        lambda: storage.put("a.bin", io.BytesIO(data), content_type="application/octet-stream")
    )

    # the source itself is 1 MiB on the heap already; the three 4 MiB buffers are not
    assert peak < 3 * MiB, f"storing a 1 MiB stream peaked at {peak / MiB:.1f} MiB of heap"
    with storage.open("a.bin") as reader:
        assert reader.read() == data


@pytest.mark.parametrize("size", [1, 4095, 4096, 4 * MiB])
def test_zeroed_is_a_writable_zero_filled_buffer(size: int) -> None:
    buffer = zeroed(size)
    assert len(buffer) == size and not buffer.readonly
    assert bytes(buffer) == bytes(size)
    buffer[-1] = 7
    assert buffer[-1] == 7


def test_zeroed_refuses_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        zeroed(0)
