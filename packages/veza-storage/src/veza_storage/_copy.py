"""Fast, verified copying into a file: what ``LocalStorage.put`` spends its time on.

Two paths, both in constant memory and both hashing exactly the bytes that were stored:

* the source is a regular file: the kernel copies it (``copy_file_range``, no trip
  through user space) while a second thread reads the *destination* back, just behind
  the copy, and hashes it. The two overlap on separate cores.
* any other stream: one thread fills rotating buffers from the source while another
  hashes and writes them (``hashlib`` and ``os.write`` release the GIL on large buffers).
  Immutable ``bytes`` (an in-memory object, or pieces of 256 KiB and more from an
  iterable) skip the buffers: they are hashed and written where they are. A generator
  of 1 MiB pieces used to pay one more copy of every byte for nothing.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from typing import cast

from veza_storage._buffers import ALIGN, zeroed
from veza_storage._stream import BufferedSource, Seekable, Source, iter_blocks

BUFFER = 4 * 1024 * 1024
STEP = 16 * 1024 * 1024


def write_all(fd: int, data: memoryview, offset: int | None = None) -> None:
    """Write every byte (``os.write`` may write less than asked), at ``offset`` if given."""
    while data:
        written = os.write(fd, data) if offset is None else os.pwrite(fd, data, offset)
        data = data[written:]
        if offset is not None:
            offset += written


def _regular_file_fd(source: Source) -> int | None:
    fileno = getattr(source, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return int(fd)
    except (AttributeError, OSError, ValueError):
        return None
    return None


def start_write_back(fd: int, offset: int, count: int) -> None:
    """Start writing ``count`` bytes at ``offset`` back to disk, without waiting for it.

    On Linux ``POSIX_FADV_DONTNEED`` starts asynchronous write-back of dirty pages (and
    drops only pages already clean). Resumable chunks use it: they arrive over minutes,
    and a later ``fsync`` then finds them on disk instead of flushing a GiB at once.
    ``put`` does not: its copy and its ``fsync`` follow each other immediately, and
    pushing write-back every block cost more than it saved in our measurements.
    """
    os.posix_fadvise(fd, offset, count, os.POSIX_FADV_DONTNEED)


def copy_into(source: Source, out_fd: int, *, direct_fd: int | None = None) -> tuple[str, int]:
    """Copy ``source`` into ``out_fd``; returns (hex SHA-256 of what was written, size).

    ``out_fd`` must be open for reading too: the kernel-copy path hashes what it wrote
    by reading it back. ``direct_fd`` (the same file opened ``O_DIRECT``) sends a
    readable source through pooled aligned buffers instead, hashed there and written
    around the page cache: for durable writes, where fresh page-cache pages cost more
    than the disk (see ``_direct``). Their unaligned tail goes through ``out_fd``.
    """
    if direct_fd is not None and getattr(source, "readinto", None) is not None:
        return _pipeline(source, out_fd, direct_fd=direct_fd)
    fd = _regular_file_fd(source)
    if fd is not None:
        try:
            return _kernel_copy(source, fd, out_fd)
        except OSError as exc:  # no copy_file_range on this filesystem or kernel
            if os.fstat(out_fd).st_size:  # failed part way: a real I/O error
                raise
            del exc
    return _pipeline(source, out_fd)


class _HashBehind:
    """Hashes the destination just behind the kernel's copy cursor, on its own thread."""

    def __init__(self, out_fd: int) -> None:
        self._out_fd = out_fd
        self._copied = 0
        self._finished = False
        self._progress = threading.Condition()
        self.digest = hashlib.sha256()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="veza-storage-hash")
        self._thread.start()

    def advance(self, count: int) -> None:
        with self._progress:
            self._copied += count
            self._progress.notify()

    def finish(self) -> None:
        with self._progress:
            self._finished = True
            self._progress.notify()
        self._thread.join()

    def _run(self) -> None:
        view = zeroed(BUFFER)  # kernel-zeroed pages, faulted in by preadv without the GIL
        hashed = 0
        try:
            while True:
                with self._progress:
                    while hashed >= self._copied and not self._finished:
                        self._progress.wait()
                    limit, done = self._copied, self._finished
                while hashed < limit:
                    count = os.preadv(self._out_fd, [view[: min(BUFFER, limit - hashed)]], hashed)
                    self.digest.update(view[:count])
                    hashed += count
                if done and hashed >= limit:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self.failure = exc


def _kernel_copy(source: Source, in_fd: int, out_fd: int) -> tuple[str, int]:
    seekable = cast("Seekable", source)  # a regular file (``_regular_file_fd``)
    start = seekable.tell()
    hasher = _HashBehind(out_fd)
    copied = 0
    try:
        while count := os.copy_file_range(in_fd, out_fd, STEP, start + copied):
            hasher.advance(count)
            copied += count
    finally:
        hasher.finish()
    if hasher.failure is not None:
        raise hasher.failure
    seekable.seek(start + copied)
    return hasher.digest.hexdigest(), copied


# Pieces at least this large are hashed and written where they are, not copied into a
# buffer first; smaller ones are gathered (a queue hand-over per tiny piece costs more).
DIRECT = 256 * 1024


def _blocks(
    source: Source, free: queue.Queue[memoryview]
) -> Iterator[tuple[memoryview, memoryview | None]]:
    """The source's bytes as views, each with the pooled buffer it lives in (or ``None``).

    Immutable ``bytes`` (an in-memory source, or the pieces an iterable or a reader
    without ``readinto`` returns) are handed on as they are: nobody can change them while
    the writer thread hashes and writes them, so copying them into a buffer first would
    only cost time. Sources with ``readinto`` fill pooled buffers directly, and small
    pieces are gathered into one, so a buffer is returned to the pool once written.
    """
    if isinstance(source, bytes):
        whole = memoryview(source)
        for offset in range(0, len(whole), BUFFER):
            yield whole[offset : offset + BUFFER], None
        return
    if getattr(source, "readinto", None) is not None or isinstance(source, bytearray | memoryview):
        filling = BufferedSource(source)
        while count := filling.fill(buffer := free.get()):
            yield memoryview(buffer)[:count], buffer
        free.put(buffer)
        return
    gathered: memoryview | None = None
    filled = 0
    for piece in iter_blocks(source):  # immutable bytes, each its own object
        view = memoryview(piece)
        if len(view) >= DIRECT:
            if gathered is not None:
                yield memoryview(gathered)[:filled], gathered
                gathered, filled = None, 0
            for offset in range(0, len(view), BUFFER):
                yield view[offset : offset + BUFFER], None
            continue
        while view:
            if gathered is None:
                gathered, filled = free.get(), 0
            take = min(len(view), len(gathered) - filled)
            gathered[filled : filled + take] = view[:take]
            filled += take
            view = view[take:]
            if filled == len(gathered):
                yield memoryview(gathered), gathered
                gathered = None
    if gathered is not None:
        yield memoryview(gathered)[:filled], gathered


class _Placed:
    """Writes pieces at their offsets: whole aligned blocks direct while that works."""

    def __init__(self, out_fd: int, direct_fd: int) -> None:
        self._out_fd = out_fd
        self._direct_fd: int | None = direct_fd
        self.offset = 0

    def write(self, view: memoryview, *, aligned_memory: bool) -> None:
        offset = self.offset
        self.offset += len(view)
        direct_fd = self._direct_fd
        if direct_fd is not None and aligned_memory and offset % ALIGN == 0:
            blocks = len(view) - len(view) % ALIGN
            if blocks and self._direct(direct_fd, view[:blocks], offset):
                view, offset = view[blocks:], offset + blocks
        if view:
            write_all(self._out_fd, view, offset=offset)

    def _direct(self, fd: int, view: memoryview, offset: int) -> bool:
        try:
            write_all(fd, view, offset=offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL or offset:
                raise
            self._direct_fd = None  # this filesystem wants other alignments: buffered
            return False
        return True


_Item = tuple[memoryview, memoryview | None]  # a view, and the pooled buffer it lives in


def _stage(
    work: Callable[[memoryview, memoryview | None], None],
    inbox: queue.Queue[_Item | None],
    outbox: queue.Queue[_Item | None] | None,
    free: queue.Queue[memoryview],
    failure: list[BaseException],
) -> threading.Thread:
    """A thread applying ``work`` to each item, then passing it on (or freeing its buffer).

    After a failure it keeps draining its inbox, returning buffers to ``free``, so no
    other stage and not the producer ever waits for a buffer that will not come back.
    """

    def run() -> None:
        try:
            while (item := inbox.get()) is not None:
                work(*item)
                if outbox is not None:
                    outbox.put(item)
                elif item[1] is not None:
                    free.put(item[1])
        except BaseException as exc:  # noqa: BLE001 - reported to the caller by _pipeline
            failure.append(exc)
            while (item := inbox.get()) is not None:
                if item[1] is not None:
                    free.put(item[1])
        finally:
            if outbox is not None:
                outbox.put(None)

    return threading.Thread(target=run, name="veza-storage-copy")


def _pipeline(source: Source, out_fd: int, *, direct_fd: int | None = None) -> tuple[str, int]:
    """Read ``source`` into pooled buffers; hash and write them on other threads.

    Buffered, one thread hashes and writes each buffer. Direct (``direct_fd``), hashing
    and writing run on two threads, one buffer apart: a direct write waits for the
    disk, and the hash of the next buffer then runs meanwhile instead of after it.
    """
    stages: list[Callable[[memoryview, memoryview | None], None]]
    digest = hashlib.sha256()
    total = [0]

    def hash_and_count(view: memoryview, _buffer: memoryview | None) -> None:
        digest.update(view)
        total[0] += len(view)

    if direct_fd is None:

        def hash_and_write(view: memoryview, buffer: memoryview | None) -> None:
            hash_and_count(view, buffer)
            write_all(out_fd, view)

        stages = [hash_and_write]
    else:
        placed = _Placed(out_fd, direct_fd)

        def write_placed(view: memoryview, buffer: memoryview | None) -> None:
            placed.write(view, aligned_memory=buffer is not None)

        stages = [hash_and_count, write_placed]
    free: queue.Queue[memoryview] = queue.Queue()
    for _ in range(len(stages) + 2):
        free.put(zeroed(BUFFER))  # not bytearray(BUFFER): no 12 MiB zero-filled under the GIL
    failure: list[BaseException] = []
    boxes: list[queue.Queue[_Item | None]] = [queue.Queue(maxsize=3)]
    boxes += [queue.Queue() for _ in stages[1:]]
    workers = [
        _stage(work, boxes[i], boxes[i + 1] if i + 1 < len(stages) else None, free, failure)
        for i, work in enumerate(stages)
    ]
    for worker in workers:
        worker.start()
    try:
        for block in _blocks(source, free):
            if failure:
                break
            boxes[0].put(block)
    finally:
        boxes[0].put(None)
        for worker in workers:
            worker.join()
    if failure:
        raise failure[0]
    return digest.hexdigest(), total[0]
