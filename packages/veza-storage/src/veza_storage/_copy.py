"""Fast, verified copying into a file: what ``LocalStorage.put`` spends its time on.

Two paths, both in constant memory and both hashing exactly the bytes that were stored:

* the source is a regular file: the kernel copies it (``copy_file_range``, no trip
  through user space) while a second thread reads the *destination* back, just behind
  the copy, and hashes it. The two overlap on separate cores.
* any other stream: one thread fills rotating buffers from the source while another
  hashes and writes them (``hashlib`` and ``os.write`` release the GIL on large buffers).
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading

from veza_storage._buffers import zeroed
from veza_storage._stream import BufferedSource, Source

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
    try:
        fd = source.fileno()  # type: ignore[union-attr]
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


def copy_into(source: Source, out_fd: int) -> tuple[str, int]:
    """Copy ``source`` into ``out_fd``; returns (hex SHA-256 of what was written, size).

    ``out_fd`` must be open for reading too: the hash reads back what was written.
    """
    fd = _regular_file_fd(source)
    if fd is not None:
        try:
            return _kernel_copy(source, fd, out_fd)
        except OSError as exc:  # no copy_file_range on this filesystem or kernel
            if os.fstat(out_fd).st_size:  # failed part way: a real I/O error
                raise
            del exc
    return _pipeline(BufferedSource(source), out_fd)


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
    start = source.tell()  # type: ignore[union-attr]
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
    source.seek(start + copied)  # type: ignore[union-attr]
    return hasher.digest.hexdigest(), copied


def _pipeline(source: BufferedSource, out_fd: int) -> tuple[str, int]:
    free: queue.Queue[memoryview] = queue.Queue()
    for _ in range(3):
        free.put(zeroed(BUFFER))  # not bytearray(BUFFER): no 12 MiB zero-filled under the GIL
    filled: queue.Queue[tuple[memoryview, int] | None] = queue.Queue(maxsize=3)
    digest = hashlib.sha256()
    total = [0]
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            while (item := filled.get()) is not None:
                buffer, count = item
                view = buffer[:count]
                digest.update(view)
                write_all(out_fd, view)
                total[0] += count
                free.put(buffer)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failure.append(exc)
            while filled.get() is not None:  # drain so the producer never blocks
                pass

    worker = threading.Thread(target=consume, name="veza-storage-write")
    worker.start()
    try:
        while not failure:
            buffer = free.get()
            count = source.fill(buffer)
            if not count:
                break
            filled.put((buffer, count))
    finally:
        filled.put(None)
        worker.join()
    if failure:
        raise failure[0]
    return digest.hexdigest(), total[0]
