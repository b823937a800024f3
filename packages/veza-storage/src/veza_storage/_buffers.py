"""Big I/O buffers that are zero-filled by the kernel, not under the GIL.

``bytearray(n)`` page-faults and zero-fills all ``n`` bytes inside the allocation, with
the GIL held: three 4 MiB buffers cost 20-60 ms on a busy two-core machine, and for
that long no other thread of the process runs Python (an ASGI server's event loop
included). An anonymous memory map costs one ``mmap`` call; its pages are zeroed by
the kernel when they are first written, which happens inside ``preadv``, ``readinto``
or ``os.read`` calls that release the GIL.
"""

from __future__ import annotations

import mmap

#: Alignment of direct I/O (``O_DIRECT``) offsets, lengths and memory: a page covers the
#: logical block sizes disks report (512 B or 4 KiB). Maps from :func:`zeroed` start on one.
ALIGN = 4096


def zeroed(size: int) -> memoryview:
    """A writable, zero-filled buffer of ``size`` bytes, backed by an anonymous map.

    The map is unmapped when the last view of it is garbage-collected. It is private
    (``MAP_PRIVATE``, not ``mmap``'s default ``MAP_SHARED``): a process forked while
    buffers exist (a pre-forking server that warmed up first) gets copies of them, not
    the same pages, so two processes writing chunks through pooled buffers never write
    into each other's.

    Raises:
        ValueError: ``size`` is below 1 (an empty map cannot be created).
    """
    if size < 1:
        msg = f"a buffer holds at least 1 byte, not {size}"
        raise ValueError(msg)
    return memoryview(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))
