"""Resumable-upload staging on local disk: one sparse file per session, renamed onto the key.

Where the time goes (1 GiB in 8 MiB chunks, profiled with ``perf`` on the 2-core
reference VM): copying the chunks into the page cache (``pwrite``) costs the most, as
it does for ``cp``; then two SHA-256 passes, about 0.6 s each per GiB: every chunk's
own digest when it arrives (a chunk is immutable: a resend is compared with it), and
the whole object's at ``complete``. Both passes are required: the chunk digests are
the reference a chunk lost or changed on disk is recognised by, and the whole digest
must describe the bytes on disk at ``complete``, not the bytes received.

What is not required is running the whole-object pass *after* the upload, on one
core. A process that writes chunks 0, 1, 2, ... in order hashes the whole object
while it writes them (a third thread, beside the chunk's digest and the ``pwrite``),
and at ``complete`` verifies each chunk's bytes on disk against its recorded digest,
chunks striped over several threads. If every chunk on disk is the chunk recorded,
the running digest is the digest of the assembled bytes; any difference is a lost
chunk, asked for again. Anything else (chunks out of order, chunks written by another
process, a write whose record failed, a restart) falls back to one pass over the
assembled file. Measured figures: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import os
import queue
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Any

from veza_storage._copy import BUFFER as COPY_BUFFER
from veza_storage._copy import start_write_back, write_all
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
    to check the assembled bytes (each chunk against its recorded digest when this
    process wrote them all in order and hashed the whole object meanwhile; otherwise
    the whole object, and each chunk only if needed), records the verified digest in
    the session, then renames it onto the key, atomically. A crash after the rename is
    recognised on resume by that digest.

    Every path is walked through directory descriptors (see ``_fs``), staging folders
    and the key's folders alike, so a symbolic link planted anywhere is refused.
    """

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        # Per-session running digests of in-order chunks: an optimisation only, bounded
        # (oldest forgotten first), dropped whenever it could disagree with the disk.
        self._running: dict[str, _Running] = {}
        self._running_lock = threading.Lock()

    def _feed(self, session: UploadSession, index: int) -> _Running | None:
        """The running digest chunk ``index`` continues, or ``None`` (and forget it)."""
        with self._running_lock:
            running = self._running.get(session.id)
            if running is None and index == 0:
                running = self._running[session.id] = _Running()
                while len(self._running) > _TRACKED:
                    del self._running[next(iter(self._running))]
            elif running is not None and (running.pending is not None or index != running.next):
                # out of order, a chunk written again, or the last one never recorded
                del self._running[session.id]
                return None
            return running

    def _forget(self, session_id: str) -> _Running | None:
        with self._running_lock:
            return self._running.pop(session_id, None)

    def chunk_recorded(self, session: UploadSession, index: int, sha256: str) -> None:
        """Tie the chunk just fed to the running digest to the digest the session recorded."""
        with self._running_lock:
            running = self._running.get(session.id)
            if running is not None and running.pending == index:
                running.recorded.update(sha256.encode("ascii"))
                running.pending = None

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
        running = self._feed(session, index)
        try:
            with self._walk(session, create=False) as chain:
                fd = os.open("data", os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=chain[-1])
        except BaseException:
            self._forget(session.id)
            raise
        try:
            write = functools.partial(write_all, fd, memoryview(data), index * session.chunk_size)
            if running is None:
                write()
            else:
                _alongside(running.whole.update, data, write)
                running.pending, running.next = index, index + 1
            if self._storage.durable:
                # start writing this chunk back now (asynchronously): complete()'s fsync
                # then finds most of the object on disk instead of a GiB of dirty pages
                start_write_back(fd, index * session.chunk_size, len(data))
        except BaseException:
            self._forget(session.id)  # the running digest may hold bytes the disk lacks
            raise
        finally:
            os.close(fd)
        return None

    def ready_parts(
        self, session: UploadSession
    ) -> tuple[list[tuple[int, dict[str, str]]], list[int]]:
        del session
        return [], []

    def complete(self, session: UploadSession, update: Callable[..., UploadSession]) -> ObjectInfo:
        *folders, name = session.key.split("/")
        running = self._forget(session.id)
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
                if running is not None and running.covers(session):
                    sha256 = _verify_chunks(
                        session, fd, whole=running.whole.hexdigest(), flush=self._storage.durable
                    )
                else:
                    sha256 = _verify_staged(
                        session, fd, flush=self._storage.durable, per_chunk=_may_have_lost(session)
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
        self._forget(session.id)
        with contextlib.suppress(FileNotFoundError), self._walk(None, create=False) as chain:
            shutil.rmtree(session.id, dir_fd=chain[-1], ignore_errors=True)

    def abort(self, session: UploadSession) -> None:
        self.cleanup(session)

    def sweep_orphans(self, older_than: float, known: Callable[[str], bool]) -> int:
        """Remove staging folders no session remembers, older than ``older_than``."""
        removed = 0
        with contextlib.suppress(FileNotFoundError), self._walk(None, create=False) as chain:
            for name in os.listdir(chain[-1]):  # noqa: PTH208 - a descriptor, not a path
                status = os.stat(name, dir_fd=chain[-1], follow_symlinks=False)
                if not stat.S_ISDIR(status.st_mode) or known(name):
                    continue
                if status.st_mtime < older_than:
                    shutil.rmtree(name, dir_fd=chain[-1], ignore_errors=True)
                    removed += 1
        return removed


# Sessions whose running digest one staging keeps (each about 0.5 KiB); beyond, the
# oldest falls back to hashing at ``complete``.
_TRACKED = 1024
# Below this a chunk is hashed before it is written: a thread costs more than it saves.
_OVERLAP_FROM = 1024 * 1024


class _Running:
    """The SHA-256 of chunks 0..next-1 as this process wrote them, and of their records.

    ``recorded`` hashes the digests the session recorded for those chunks, in order, so
    ``complete`` can tell in one comparison that each chunk fed here is the chunk the
    session holds (and not one another process wrote after this one's record failed).
    """

    __slots__ = ("next", "pending", "recorded", "whole")

    def __init__(self) -> None:
        self.whole = hashlib.sha256()
        self.recorded = hashlib.sha256()
        self.next = 0
        self.pending: int | None = None  # fed, not yet recorded

    def covers(self, session: UploadSession) -> bool:
        """Whether every chunk of ``session`` was fed here, in order, as recorded."""
        if self.pending is not None or self.next != session.chunk_count:
            return False
        recorded = hashlib.sha256()
        for index in range(session.chunk_count):
            digest = session.chunks.get(index)
            if digest is None:  # forgotten meanwhile (lost): the slow path reports it
                return False
            recorded.update(digest.encode("ascii"))
        return hmac.compare_digest(recorded.digest(), self.recorded.digest())


def _alongside(
    hash_update: Callable[[bytes], None], data: bytes, write: Callable[[], None]
) -> None:
    """Run ``hash_update(data)`` on a second thread while ``write`` runs; join both."""
    if len(data) < _OVERLAP_FROM:
        write()
        hash_update(data)
        return
    hasher = threading.Thread(target=hash_update, args=(data,), name="veza-storage-whole-hash")
    hasher.start()
    try:
        write()
    finally:
        hasher.join()


_STAGED = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_staged(dir_fd: int) -> int | None:
    try:
        return os.open("data", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def boot_id() -> str | None:
    """This host boot's id (Linux), ``None`` where the kernel does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as source:  # noqa: PTH123 - one read
            return source.read().strip() or None
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
    hasher and the disk flush overlap instead of adding up.
    """

    def __init__(self, work: Callable[[memoryview], None], fd: int, *, flush: bool) -> None:
        self._work = work
        self.free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(3):
            self.free.put(memoryview(bytearray(COPY_BUFFER)))
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
            self.free.put(memoryview(view.obj))  # obj: the whole bytearray behind the slice

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


def _verify_chunks(session: UploadSession, fd: int, *, whole: str, flush: bool) -> str:
    """Check each staged chunk against its recorded digest; ``whole`` is then the object's.

    ``whole`` was computed from the chunks as they were written; if every chunk on disk
    hashes to the digest recorded for it, ``whole`` is the SHA-256 of the assembled
    bytes. Chunks are independent, so they are striped over threads (each reads and
    hashes its own; ``preadv`` and ``hashlib`` release the GIL) while another thread
    ``fdatasync``s the file.

    Raises:
        LostChunksError: Chunks whose bytes on disk are not the recorded ones.
        UploadIncompleteError, ChecksumMismatchError: See ``check_whole``.
    """
    lost: list[int] = []
    stride = max(1, min(_VERIFIERS, os.cpu_count() or 1, session.chunk_count))

    def verify(first: int) -> None:
        view = memoryview(bytearray(COPY_BUFFER))
        for index in range(first, session.chunk_count, stride):
            offset, remaining = index * session.chunk_size, session.expected_size(index)
            digest = hashlib.sha256()
            while remaining:
                count = os.preadv(fd, [view[: min(len(view), remaining)]], offset)
                if not count:
                    break
                digest.update(view[:count])
                offset += count
                remaining -= count
            if remaining or digest.hexdigest() != session.chunks[index]:
                lost.append(index)

    work: list[Callable[[], object]] = [functools.partial(verify, first) for first in range(stride)]
    if flush:
        work.append(functools.partial(os.fdatasync, fd))
    _in_threads(work)
    if lost:
        raise LostChunksError(sorted(lost))
    check_whole(session, session.total_size, whole)
    return whole


# Threads that verify chunks at ``complete`` (at most one per core).
_VERIFIERS = 4


def _in_threads(work: list[Callable[[], object]]) -> None:
    """Run each callable on its own thread; join all; raise the first failure."""
    failures: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(job,), name="veza-storage-verify") for job in work
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _verify_staged(session: UploadSession, fd: int, *, flush: bool, per_chunk: bool) -> str:
    """Hash the assembled bytes; check each chunk's digest if ``per_chunk`` or if they fail.

    When the whole object does not match the declared SHA-256, the chunks are checked
    one by one to tell lost chunks (send them again) from a wrong declared checksum.

    Raises:
        LostChunksError: Chunks whose bytes are not the recorded ones.
        UploadIncompleteError, ChecksumMismatchError: See ``check_whole``.
    """
    digest, size, lost = hashlib.sha256(), 0, []
    behind = _Behind(digest.update, fd, flush=flush)
    try:
        for index in range(session.chunk_count):
            remaining = session.expected_size(index)
            chunk_digest = hashlib.sha256()
            while remaining:
                buffer = behind.free.get()
                count = os.preadv(fd, [buffer[: min(len(buffer), remaining)]], size)
                if not count:
                    behind.free.put(buffer)
                    break
                if per_chunk:
                    chunk_digest.update(buffer[:count])
                behind.put(buffer[:count])
                size += count
                remaining -= count
            if per_chunk and chunk_digest.hexdigest() != session.chunks[index]:
                lost.append(index)
    finally:
        behind.finish()
    if lost:
        raise LostChunksError(lost)
    expected = (session.total_size, session.sha256 or digest.hexdigest())
    if not per_chunk and (size, digest.hexdigest()) != expected:
        return _verify_staged(session, fd, flush=False, per_chunk=True)  # which chunks?
    check_whole(session, size, digest.hexdigest())
    return digest.hexdigest()
