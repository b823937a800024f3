"""The SHA-256 of what this process wrote into a staging file, and proof nothing else did.

Why: ``complete`` must give the object the SHA-256 of the assembled bytes. Reading a GiB
back from disk to compute it cost more than writing it (this VM reads ``O_DIRECT`` at
about 0.8 GB/s and writes at 1.1). When one process staged the chunks in index order, it
has already handed the disk every byte of the file, in order: it keeps a running SHA-256
of exactly the bytes it wrote (the same bytes ``LocalStorage.put`` hashes), and
``complete`` uses it *only if the file is provably still what was written*:

* every change to the file is a chunk write of this process: before and after each of
  its writes (under the session's chunk lock, which other processes take too) it reads
  the file's identity and change time (``st_dev``, ``st_ino``, ``st_ctime_ns``,
  ``st_size``), and ``complete`` finds them unchanged since its last write. Any other
  write, truncation, ``chmod`` or replacement (another process's chunk, a repair, a
  tamperer, a test) changes the change time: the chain breaks and ``complete`` reads
  the file back, as before;
* the process is the one that wrote the chunks: a host crash that could lose unflushed
  pages ends the process, and with it this record (a restarted server reads back);
* the kernel gives every change a new change time once the old one was read
  (multigrain timestamps, Linux 6.13+ on ext4, xfs, btrfs and tmpfs). Where it does not
  (coarse timestamps: two writes in one clock tick share a time), ``begin`` notices it
  with a three-try probe on the new staging file and this record is never used.

Chunks that arrive out of order extend the digest only while they continue it; the rest
of the file is read back at ``complete`` from the end of the known prefix.

What it does not see: a writer with access to the staging folder that writes inside
one of our own chunk writes (the change time is set when a write starts). Such a writer
could as well change the object a moment after ``complete`` published it; the read-back
never guarded against it either.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

_LIMIT = 1024  # sessions remembered per staging area (the oldest falls back to reading)
_BEHIND_FROM = 1024 * 1024  # smaller chunks are hashed at once: a thread costs more

Stamp = tuple[int, int, int, int]


def stamp_of(fd: int) -> Stamp:
    """The file's identity, change time and size: any change to the file moves it."""
    status = os.fstat(fd)
    return (status.st_dev, status.st_ino, status.st_ctime_ns, status.st_size)


def changes_are_stamped(fd: int) -> bool:
    """Whether every change made after an ``fstat`` gets a new change time.

    Writes a zero byte at offset 0 of ``fd`` (a new, empty staging file) three times
    over, reading the change time in between: with coarse timestamps two writes in one
    clock tick share it.
    """
    for _ in range(3):
        os.pwrite(fd, b"\0", 0)
        before = os.fstat(fd).st_ctime_ns
        os.pwrite(fd, b"\0", 0)
        if os.fstat(fd).st_ctime_ns == before:
            return False
    return True


class _Prefix:
    """The running digest of chunks ``0 .. next_index - 1``; the last updates may be queued."""

    __slots__ = ("_behind", "digest", "failed", "next_index", "pending", "stamp")

    def __init__(self, stamp: Stamp) -> None:
        self.digest = hashlib.sha256()
        self.next_index = 0
        self.stamp = stamp
        self.pending: Future[None] | None = None  # the newest update
        self._behind: Future[None] | None = None  # the one before it
        self.failed = False

    def settle(self) -> bool:
        """Wait for every queued update; whether all of them succeeded."""
        if self.pending is not None:
            self.pending.exception()  # one worker, in order: the others are done too
            self.pending = self._behind = None
        return not self.failed

    def catch_up(self) -> None:
        """Wait for all but the newest update: at most one chunk is held after a write."""
        if self._behind is not None:
            self._behind.exception()
            self._behind = None

    def extend(self, data: bytes, hasher: ThreadPoolExecutor) -> None:
        """Hash ``data`` after what came before, on the staging area's hashing thread.

        ``hashlib`` releases the GIL on large buffers: chunk ``i`` is hashed while the
        server writes it, receives chunk ``i + 1`` and starts writing that one. The
        write of chunk ``i + 1`` then waits (``catch_up``) for chunk ``i``'s hash, so
        no more than one chunk is held beyond the caller's. One long-lived thread
        (``hasher`` has one worker, so updates run in the order they were queued):
        starting a thread per chunk cost about 1.5 ms of waiting per chunk here. Only
        immutable ``bytes`` are hashed behind the caller's back; anything else is
        hashed before returning.
        """

        def update() -> None:
            if self.failed:
                return
            try:
                self.digest.update(data)
            except BaseException:
                self.failed = True
                raise

        if type(data) is not bytes or len(data) < _BEHIND_FROM:
            self.settle()
            update()
            return
        self._behind, self.pending = self.pending, hasher.submit(update)


class WrittenPrefixes:
    """Per staging area: the chunks each session this process began wrote in order.

    Callers hold the session's chunk lock around ``extend`` … ``written`` and around
    ``take``; the internal lock only guards the table.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # its one thread starts with the first chunk it hashes and ends with this object
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veza-storage-hash")
        self._prefixes: collections.OrderedDict[str, _Prefix] = collections.OrderedDict()

    def start(self, session_id: str, fd: int) -> None:
        """Remember a staging file this process has just created (and sized)."""
        with self._lock:
            self._prefixes[session_id] = _Prefix(stamp_of(fd))
            while len(self._prefixes) > _LIMIT:
                self._prefixes.popitem(last=False)

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._prefixes.pop(session_id, None)

    def extend(self, session_id: str, index: int, fd: int, data: bytes) -> None:
        """Before writing chunk ``index``: hash it if it continues the prefix.

        The record is dropped if the file changed since our last write, or if the
        chunk rewrites bytes already hashed. A failed write must call ``forget``.
        """
        with self._lock:
            prefix = self._prefixes.get(session_id)
        if prefix is None:
            return
        if stamp_of(fd) != prefix.stamp or index < prefix.next_index:
            self.forget(session_id)
        elif index == prefix.next_index and not prefix.failed:
            prefix.extend(data, self._hasher)
            prefix.next_index += 1

    def written(self, session_id: str, fd: int) -> None:
        """After a successful chunk write: the file as this process left it."""
        with self._lock:
            prefix = self._prefixes.get(session_id)
        if prefix is not None:
            prefix.stamp = stamp_of(fd)
            prefix.catch_up()

    def take(self, session_id: str, fd: int) -> tuple[_Hash, int] | None:
        """At ``complete``: the digest and how many chunks it covers, if still true.

        The record is removed either way: a second ``complete`` reads the file back.
        """
        with self._lock:
            prefix = self._prefixes.pop(session_id, None)
        if prefix is None or not prefix.settle() or stamp_of(fd) != prefix.stamp:
            return None
        return prefix.digest, prefix.next_index
