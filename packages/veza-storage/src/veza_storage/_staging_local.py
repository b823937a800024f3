"""Resumable-upload staging on local disk: one sparse file per session, renamed onto the key.

Where the time goes (1 GiB, 8 MiB chunks, ``perf record`` on the shared 2-core VM): with
buffered writes, the fresh page-cache pages each chunk needed (``pwrite``,
``copy_folio_from_iter_atomic``: 2-4 CPU-seconds of system time per GiB on a VM whose
free memory the host reclaims), then the whole object's SHA-256 at ``complete`` (about
0.5 s per GiB with SHA-NI). Chunks now go around the page cache (``_direct``): 1.9
CPU-seconds per GiB in all. The object's
digest must describe the bytes on disk at ``complete``, not those received (a test
changes a staged chunk after it was received and expects it asked again).

Each chunk is recorded by a CRC-32 of the bytes received, computed while they are
written (``zlib`` releases the GIL too): it only has to recognise staged bytes that
went bad (a host crash, a change on disk), and a resend is settled by comparing the
bytes themselves with the staged ones, under the chunk lock. Until this release each
chunk got its own SHA-256 on arrival: a second full SHA-256 pass, about 0.35
CPU-seconds more per GiB than the CRC-32 (user CPU 1.16-1.35 s against 0.80-0.89 s
per GiB in four interleaved runs).

Measured and not kept: keeping the whole digest running over in-order chunks while
they are written, then checking each chunk against its record at ``complete`` on
several threads. It is the only safe form of "hash while receiving" (the check is
what catches a chunk changed on disk), so it costs a third pass. Side by side with
the two-SHA-256 code on the shared machine (load average 12 to 17) it was slower in
three of four interleaved runs (medians 18.0 against 14.8 s, 19.1 against 17.8 s,
20.8 against 16.7 s per GiB; faster once, 19.4 against 21.6 s). ``mmap`` for the
read-back saved 0.03 CPU-seconds per GiB: not worth a ``SIGBUS`` if the file were
truncated meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import queue
import shutil
import stat
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from veza_storage._buffers import zeroed
from veza_storage._copy import BUFFER as COPY_BUFFER, start_write_back
from veza_storage._direct import ALIGN, DirectWriter
from veza_storage._errors import UploadIncompleteError, UploadNotFoundError
from veza_storage._fs import walk
from veza_storage._local import XATTR, LocalStorage, publish_at
from veza_storage._sessions import UploadSession
from veza_storage._staging import STAGING, LostChunksError, assembled, check_whole
from veza_storage._types import ObjectInfo


class LocalStaging:
    """Chunks land at their offset in one sparse staging file; ``complete`` renames it.

    Nothing is copied twice: ``put_chunk`` ``pwrite``s each chunk into
    ``.veza-uploads/<id>/data`` (same filesystem as the root), ``complete`` reads it once
    to hash the assembled bytes (and checks each chunk's CRC-32 record after a reboot
    or a mismatch),
    records the verified digest in the session, then renames it onto the key,
    atomically. A crash after the rename is recognised on resume by that digest.

    Every path is walked through directory descriptors (see ``_fs``), staging folders
    and the key's folders alike, so a symbolic link planted anywhere is refused.
    """

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        self._direct = DirectWriter()

    def _walk(
        self, session: UploadSession | None, *, create: bool
    ) -> contextlib.AbstractContextManager[list[int]]:
        folders = [STAGING] if session is None else [STAGING, session.id]
        return walk(
            self._storage.root,
            folders,
            key="/".join(folders),
            create=create,
            durable=self._storage.durable,
        )

    def begin(self, session: UploadSession) -> dict[str, Any]:
        with self._walk(session, create=True) as chain:
            fd = os.open("data", _STAGED, 0o600, dir_fd=chain[-1])
            try:
                os.ftruncate(fd, session.total_size)  # sparse until chunks arrive
                if self._storage.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if self._storage.durable:
                os.fsync(chain[-1])
        return {"parts": {}}

    @contextlib.contextmanager
    def chunk_lock(self, session: UploadSession) -> Iterator[None]:
        """Hold the session's lock file: one writer per session, across processes."""
        try:
            with self._walk(session, create=False) as chain:
                fd = os.open("lock", _LOCK, 0o600, dir_fd=chain[-1])
        except FileNotFoundError:  # aborted or reaped meanwhile
            msg = f"no open upload session {session.id!r} (unknown, aborted or expired)"
            raise UploadNotFoundError(msg) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def write_chunk(
        self, session: UploadSession, index: int, data: bytes
    ) -> tuple[int, dict[str, str]] | None:
        # No fsync per chunk: complete() fsyncs once, and checks every chunk's digest
        # against the assembled bytes, so a chunk a host crash lost is asked for again.
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        offset = index * session.chunk_size
        with self._walk(session, create=False) as chain:
            fd = os.open("data", flags, dir_fd=chain[-1])
            try:
                direct = self._direct.open_direct(chain[-1], "data", flags)
            except OSError:
                os.close(fd)
                raise
        try:
            self._direct.write(fd, direct, data, offset)
            if direct is None and self._storage.durable:
                # start writing this chunk back now (asynchronously): complete()'s fsync
                # then finds most of the object on disk instead of a GiB of dirty pages
                start_write_back(fd, offset, len(data))
        finally:
            os.close(fd)
            if direct is not None:
                os.close(direct)
        return None

    def chunk_record(self, data: bytes) -> str:
        """A CRC-32 of the chunk as received: what a lost chunk is recognised by.

        Not SHA-256: the record only has to tell the staged bytes from the received ones
        after a host crash or a change on disk, and resends are settled by comparing
        the bytes themselves (see ``compare_chunk``). The object's SHA-256 is computed
        from the assembled file at ``complete`` whatever the records say, so a forged
        record could at worst get a changed chunk refused, never published under a
        wrong digest. CRC-32 runs at about 3x the speed of SHA-256 here.
        """
        return f"{_CRC32}{zlib.crc32(data):08x}"

    def compare_chunk(self, session: UploadSession, index: int, data: bytes) -> bool | None:
        """Settle a resend (under the chunk lock) by reading the staged chunk back."""
        record = session.chunks[index]
        if not _matches(record, data):
            return False  # not the bytes that were received: a conflict
        with self._walk(session, create=False) as chain:
            fd = os.open("data", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=chain[-1])
        try:
            staged = os.pread(fd, len(data), index * session.chunk_size)
        finally:
            os.close(fd)
        if staged == data:
            return True
        return None if not _matches(record, staged) else False

    def ready_parts(
        self, session: UploadSession
    ) -> tuple[list[tuple[int, dict[str, str]]], list[int]]:
        del session
        return [], []

    def complete(self, session: UploadSession, update: Callable[..., UploadSession]) -> ObjectInfo:
        *folders, name = session.key.split("/")
        with self._walk(session, create=False) as staging:
            fd = _open_staged(staging[-1])
            if fd is None:
                if session.state == "assembled":  # crashed after the rename
                    info = self._storage.stat(session.key)
                    if info.sha256 == session.backend.get("sha256"):
                        return info
                msg = "the staged upload is gone and the key does not hold it"
                raise UploadIncompleteError(msg)
            try:
                direct = self._direct.open_direct(
                    staging[-1], "data", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                )
            except OSError:
                os.close(fd)
                raise
            try:
                sha256 = _verify_staged(
                    session,
                    fd,
                    flush=self._storage.durable,
                    per_chunk=_may_have_lost(session),
                    direct_fd=direct,
                )
                record = {
                    "content_type": session.content_type,
                    "sha256": sha256,
                    "metadata": session.metadata,
                }
                os.setxattr(fd, XATTR, json.dumps(record).encode())
                if self._storage.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
                if direct is not None:
                    os.close(direct)
            update(assembled(sha256))
            with walk(
                self._storage.root,
                folders,
                key=session.key,
                create=True,
                durable=self._storage.durable,
            ) as target:
                publish_at(staging[-1], "data", target[-1], name, key=session.key, if_absent=False)
                if self._storage.durable:
                    os.fsync(target[-1])
        return self._storage.stat(session.key)

    def cleanup(self, session: UploadSession) -> None:
        with contextlib.suppress(FileNotFoundError), self._walk(None, create=False) as chain:
            shutil.rmtree(session.id, dir_fd=chain[-1], ignore_errors=True)

    def abort(self, session: UploadSession) -> None:
        self.cleanup(session)

    def sweep_orphans(self, older_than: float, known: Callable[[str], bool]) -> int:
        """Remove staging folders no session remembers, older than ``older_than``."""
        removed = 0
        with contextlib.suppress(FileNotFoundError), self._walk(None, create=False) as chain:
            with os.scandir(chain[-1]) as entries:
                names = [entry.name for entry in entries]
            for name in names:
                status = os.stat(name, dir_fd=chain[-1], follow_symlinks=False)
                if not stat.S_ISDIR(status.st_mode) or known(name):
                    continue
                if status.st_mtime < older_than:
                    shutil.rmtree(name, dir_fd=chain[-1], ignore_errors=True)
                    removed += 1
        return removed


_STAGED = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


_CRC32 = "crc32:"


class _ChunkCheck:
    """Checks bytes fed piece by piece against a chunk record (CRC-32, or SHA-256 hex).

    Sessions begun before records were CRC-32s hold SHA-256 digests: both are read.
    """

    def __init__(self, record: str) -> None:
        self._record = record
        self._crc = 0
        self._sha = None if record.startswith(_CRC32) else hashlib.sha256()

    def update(self, data: bytes | memoryview) -> None:
        if self._sha is None:
            self._crc = zlib.crc32(data, self._crc)
        else:
            self._sha.update(data)

    def matches(self) -> bool:
        if self._sha is None:
            return self._record == f"{_CRC32}{self._crc:08x}"
        return self._record == self._sha.hexdigest()


def _matches(record: str, data: bytes) -> bool:
    check = _ChunkCheck(record)
    check.update(data)
    return check.matches()


def _open_staged(dir_fd: int) -> int | None:
    try:
        return os.open("data", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def boot_id() -> str | None:
    """This host boot's id (Linux), ``None`` where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _may_have_lost(session: UploadSession) -> bool:
    """Whether a host crash may have lost acknowledged chunks (so each must be checked).

    Chunks are not fsynced one by one; they live in the page cache until ``complete``
    fsyncs the file. Only a crash of the host (not of the process) loses the page
    cache, and a crash means a new boot: if every chunk was written under the boot we
    run in, the file holds exactly the recorded chunks (the chunk lock guarantees it).
    """
    current = boot_id()
    return current is None or session.backend.get("boots") != [current]


class _Behind:
    """Runs ``work`` over buffers on a second thread, and optionally ``fdatasync`` on a third.

    ``hashlib`` and ``preadv`` release the GIL on large buffers, so the reader, the
    hasher and the disk flush overlap instead of adding up. The three buffers are
    ``buffer_size`` bytes of kernel-zeroed memory (:func:`zeroed`), never a heap
    allocation zero-filled while the GIL is held.
    """

    def __init__(
        self, work: Callable[[memoryview], None], fd: int, *, flush: bool, buffer_size: int
    ) -> None:
        self._work = work
        self.free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(3):
            self.free.put(zeroed(buffer_size))
        self._filled: queue.Queue[memoryview | None] = queue.Queue()
        self._failure: list[OSError] = []
        self._threads = [threading.Thread(target=self._run, name="veza-storage-verify")]
        if flush:
            self._threads.append(
                threading.Thread(target=self._sync, args=(fd,), name="veza-storage-fsync")
            )
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while (view := self._filled.get()) is not None:
            self._work(view)
            self.free.put(memoryview(view.obj))  # obj: the whole map behind the slice

    def _sync(self, fd: int) -> None:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            self._failure.append(exc)

    def put(self, view: memoryview) -> None:
        self._filled.put(view)

    def finish(self) -> None:
        self._filled.put(None)
        for thread in self._threads:
            thread.join()
        if self._failure:
            raise self._failure[0]


def _verify_staged(
    session: UploadSession,
    fd: int,
    *,
    flush: bool,
    per_chunk: bool,
    direct_fd: int | None = None,
) -> str:
    """Hash the assembled bytes; check each chunk's digest if ``per_chunk`` or if they fail.

    When the whole object does not match the declared SHA-256, the chunks are checked
    one by one to tell lost chunks (send them again) from a wrong declared checksum.
    With ``direct_fd`` (the file opened ``O_DIRECT``) the whole-object pass reads the
    disk in aligned pieces, without filling the page cache (see ``_direct``).

    Raises:
        LostChunksError: Chunks whose bytes are not the recorded ones.
        UploadIncompleteError, ChecksumMismatchError: See ``check_whole``.
    """
    digest, lost = hashlib.sha256(), list[int]()
    # no buffer larger than the object: a 0.6 MiB track needs no 3 x 4 MiB; a multiple
    # of ALIGN, as direct reads need
    buffer_size = -(-max(1, min(COPY_BUFFER, session.total_size)) // ALIGN) * ALIGN
    behind = _Behind(digest.update, fd, flush=flush, buffer_size=buffer_size)
    try:
        if per_chunk:
            size, lost = _read_chunks(session, fd, behind, check=True)
        else:
            size = _read_direct(session, direct_fd, behind) if direct_fd is not None else 0
            if size < session.total_size:  # buffered: no direct I/O, or an unaligned stop
                size, lost = _read_chunks(session, fd, behind, check=False, start=size)
    finally:
        behind.finish()
    if per_chunk and lost:
        raise LostChunksError(lost)
    expected = (session.total_size, session.sha256 or digest.hexdigest())
    if not per_chunk and (size, digest.hexdigest()) != expected:
        return _verify_staged(session, fd, flush=False, per_chunk=True)  # which chunks?
    check_whole(session, size, digest.hexdigest())
    return digest.hexdigest()


def _read_direct(session: UploadSession, fd: int, behind: _Behind) -> int:
    """Feed the file to ``behind`` in aligned direct reads; returns the bytes read.

    Stops early (returning an aligned count short of the size) only if the kernel
    returns a short read before the end: the caller reads the rest buffered.
    """
    size = 0
    while size < session.total_size:
        buffer = behind.free.get()
        try:
            count = min(os.preadv(fd, [buffer], size), session.total_size - size)
        except OSError as exc:
            behind.free.put(buffer)
            if exc.errno != errno.EINVAL:
                raise
            break  # alignments this filesystem refuses: the caller reads the rest buffered
        if count <= 0:
            behind.free.put(buffer)
            break
        behind.put(buffer[:count])
        size += count
        if size % ALIGN:
            break
    return size


def _read_chunks(
    session: UploadSession, fd: int, behind: _Behind, *, check: bool, start: int = 0
) -> tuple[int, list[int]]:
    """Feed the file to ``behind`` from ``start``, chunk by chunk, buffered.

    With ``check``, each chunk is also checked against its record; returns the bytes
    read and the indices of the chunks that do not match.
    """
    size, lost = start, []
    for index in range(start // session.chunk_size, session.chunk_count):
        remaining = session.expected_size(index) - (size - index * session.chunk_size)
        chunk_check = _ChunkCheck(session.chunks.get(index, ""))
        while remaining > 0:
            buffer = behind.free.get()
            count = os.preadv(fd, [buffer[: min(len(buffer), remaining)]], size)
            if not count:
                behind.free.put(buffer)
                break
            if check:
                chunk_check.update(buffer[:count])
            behind.put(buffer[:count])
            size += count
            remaining -= count
        if check and not chunk_check.matches():
            lost.append(index)
    return size, lost
