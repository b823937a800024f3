"""Staged chunks written around the page cache (``O_DIRECT``), from reused aligned buffers.

Why: on the virtual machines we measure on (and on any host short of free memory), the
cost of a buffered write is not the copy but the *fresh page-cache pages* it needs: a
GiB of chunks asked the kernel for a GiB of new pages, and zeroing and mapping them
(``copy_folio_from_iter_atomic`` in ``perf``) took 2-4 CPU-seconds of system time per
GiB, more than the disk took to write them. A direct write copies the chunk once into
a buffer that is reused from chunk to chunk (already mapped, so the copy runs at memory
speed) and the disk reads it from there. The chunk is on the disk (short of the disk's
own cache, which ``complete`` flushes) when ``put_chunk`` returns, and a GiB of
uploads no longer leaves a GiB of dirty pages for the rest of the server to wait on.

Only whole, aligned blocks go direct: the head of a chunk that starts inside a block
and the tail that ends inside one are written through the page cache, as before;
they never share a block with a direct write, so the two paths never overlap. The
kernel keeps the two coherent (a direct read flushes cached pages of its range first).

Where the filesystem refuses ``O_DIRECT`` (``EINVAL``: some FUSE and network
filesystems) every write goes through the page cache, as before.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from veza_storage._buffers import ALIGN, zeroed
from veza_storage._copy import write_all
from veza_storage._threads import ForkAwareLock

__all__ = ["ALIGN", "PIECE", "DirectWriter"]
#: Bytes copied into one aligned buffer and written per system call.
PIECE = 4 * 1024 * 1024
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_KEEP = 4  # aligned buffers kept for reuse per staging area


class DirectWriter:
    """Writes chunks at their offsets, whole aligned blocks around the page cache.

    One instance per staging area (a :class:`~veza_storage.LocalStorage`): it owns a
    small pool of aligned buffers, so concurrent uploads each take their own.
    """

    def __init__(self) -> None:
        self._lock = ForkAwareLock()  # a pre-forking server's workers inherit the pool
        self._free: list[memoryview] = []
        self._supported = bool(_O_DIRECT)

    @property
    def supported(self) -> bool:
        """Whether direct writes are (still) attempted: ``False`` after a refusal."""
        return self._supported

    @contextlib.contextmanager
    def _buffer(self) -> Iterator[memoryview]:
        with self._lock.held():
            buffer = self._free.pop() if self._free else None
        if buffer is None:
            buffer = zeroed(PIECE)  # mmap: page-aligned
        try:
            yield buffer
        finally:
            with self._lock.held():
                if len(self._free) < _KEEP:
                    self._free.append(buffer)

    def open_direct(self, dir_fd: int, name: str, flags: int) -> int | None:
        """Open ``name`` for direct I/O, or ``None`` where the filesystem refuses it."""
        if not self._supported:
            return None
        try:
            return os.open(name, flags | _O_DIRECT, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._supported = False
            return None

    def write(self, buffered_fd: int, direct_fd: int | None, data: bytes, offset: int) -> None:
        """Write ``data`` at ``offset``: aligned blocks through ``direct_fd`` when given."""
        view = memoryview(data)
        start = -offset % ALIGN  # bytes up to the first block boundary
        end = len(view) - (offset + len(view)) % ALIGN  # the last boundary inside data
        if direct_fd is None or start >= end:
            write_all(buffered_fd, view, offset=offset)
            return
        if start:
            write_all(buffered_fd, view[:start], offset=offset)
        if not self._write_blocks(direct_fd, view[start:end], offset + start):
            write_all(buffered_fd, view[start:end], offset=offset + start)
        if end < len(view):
            write_all(buffered_fd, view[end:], offset=offset + end)

    def _write_blocks(self, fd: int, blocks: memoryview, offset: int) -> bool:
        """Copy ``blocks`` piece by piece into an aligned buffer and write it direct.

        Returns ``False`` (nothing written) if the filesystem refuses the first write.
        """
        with self._buffer() as buffer:
            done = 0
            while done < len(blocks):
                piece = blocks[done : done + len(buffer)]
                buffer[: len(piece)] = piece
                try:
                    write_all(fd, buffer[: len(piece)], offset=offset + done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL or done:
                        raise
                    self._supported = False  # this filesystem wants other alignments
                    return False
                done += len(piece)
        return True
