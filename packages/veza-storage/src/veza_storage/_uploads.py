"""Resumable chunked uploads: chunks in any order, verified, visible only when complete.

``begin`` opens a session; ``put_chunk`` accepts chunks in any order (a re-sent chunk
with the same bytes is a no-op; different bytes, a wrong size or a wrong SHA-256 are
refused); ``status`` says which chunks are in; ``complete`` checks the size and the whole
object's SHA-256 and makes the object visible atomically; ``abort`` discards it. The
session lives in an :class:`UploadSessionStore`, so an upload resumes after a restart.

Local disk: chunks are written to a staging directory (``.veza-uploads/<id>/``) and
assembled by streaming into a temporary file beside the target, in constant memory.

S3: nothing is re-assembled locally. Chunks of 5 MiB or more are multipart parts;
smaller chunks are grouped (as tusd does): each group of ``ceil(5 MiB / chunk_size)``
chunks becomes one part, its chunks waiting as small staging objects until the group is
complete. ``complete`` joins the parts into a staging object, reads it back to verify
size and SHA-256, then copies it server-side to the key, so the key only ever holds a
verified object. Stale sessions are swept: MinIO itself deletes unfinished multipart
uploads after 24 hours, so keep the session TTL at or below that.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from veza_storage._copy import BUFFER as COPY_BUFFER
from veza_storage._copy import write_all
from veza_storage._errors import (
    ChecksumMismatchError,
    ChunkConflictError,
    ChunkError,
    StorageConfigurationError,
    UploadError,
    UploadIncompleteError,
    UploadNotFoundError,
)
from veza_storage._fs import walk
from veza_storage._keys import RESERVED_PREFIX, validate_key
from veza_storage._local import XATTR, LocalStorage, publish_at
from veza_storage._s3 import MAX_PARTS, MIN_PART, S3Storage, _b64_sha256, _code
from veza_storage._sessions import UploadSession, UploadSessionStore
from veza_storage._stream import BLOCK
from veza_storage._types import ObjectInfo, validate_metadata

STAGING = f"{RESERVED_PREFIX}uploads"
MIN_CHUNK = 64 * 1024
MAX_CHUNK = 5 * 1024**3
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class UploadStatus:
    """Where an upload stands.

    Attributes:
        session_id: The session.
        key: The object key it becomes.
        total_size: Bytes in the whole object.
        chunk_size: Bytes per chunk.
        chunk_count: Chunks in the whole object.
        received: Indices of the chunks that arrived, sorted.
        state: ``open``, ``assembled`` or ``completed``.
        expires_at: When the sweep aborts it (UTC epoch seconds).
    """

    session_id: str
    key: str
    total_size: int
    chunk_size: int
    chunk_count: int
    received: tuple[int, ...]
    state: str
    expires_at: float

    @property
    def ready(self) -> bool:
        """Every chunk is in: ``complete`` can be called."""
        return len(self.received) == self.chunk_count

    @property
    def missing(self) -> tuple[int, ...]:
        """Chunk indices still to send."""
        have = set(self.received)
        return tuple(i for i in range(self.chunk_count) if i not in have)


def _status(session: UploadSession) -> UploadStatus:
    return UploadStatus(
        session_id=session.id,
        key=session.key,
        total_size=session.total_size,
        chunk_size=session.chunk_size,
        chunk_count=session.chunk_count,
        received=tuple(sorted(session.chunks)),
        state=session.state,
        expires_at=session.expires_at,
    )


class ResumableUploads:
    """Resumable uploads into a :class:`LocalStorage` or :class:`S3Storage`.

    Args:
        storage: The backend the objects end up in.
        store: Where sessions are kept (in memory, a directory, or SQL).
        ttl: Seconds an unfinished upload lives before the sweep aborts it.
        clock: Returns the current UTC epoch time.
    """

    def __init__(
        self,
        storage: LocalStorage | S3Storage,
        store: UploadSessionStore,
        *,
        ttl: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(storage, LocalStorage):
            self._staging: _LocalStaging | _S3Staging = _LocalStaging(storage)
        elif isinstance(storage, S3Storage):
            self._staging = _S3Staging(storage)
        else:  # untyped callers may pass any backend
            msg = "resumable uploads need a LocalStorage or an S3Storage"  # type: ignore[unreachable]
            raise StorageConfigurationError(msg)
        self.storage = storage
        self._store = store
        self._ttl = ttl
        self._clock = clock

    # ------------------------------------------------------------------ session helpers

    def _load(self, session_id: str) -> UploadSession:
        session = self._store.get(session_id)
        if session is None or (session.state != "completed" and session.expires_at < self._clock()):
            msg = f"no open upload session {session_id!r} (unknown, aborted or expired)"
            raise UploadNotFoundError(msg)
        return session

    def _update(self, session_id: str, change: Callable[[UploadSession], None]) -> UploadSession:
        """Apply ``change`` with compare-and-set, retrying when another writer won."""
        for _ in range(100):
            session = self._load(session_id)
            expected = session.version
            change(session)
            session.version = expected + 1
            if self._store.replace(session, expected_version=expected):
                return session
        msg = f"upload session {session_id!r} is too contended"
        raise UploadError(msg)

    # ------------------------------------------------------------------ API

    def begin(  # noqa: PLR0917 - the positional order is the published contract
        self,
        key: str,
        total_size: int,
        chunk_size: int,
        content_type: str,
        sha256: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Open an upload session; returns its id.

        Raises:
            InvalidKeyError: Bad key.
            ChunkError: Sizes that cannot work (chunks under 64 KiB unless the object is
                a single chunk; over 5 GiB; more than 10,000 S3 parts).
        """
        validate_key(key)
        meta = validate_metadata(metadata)
        if total_size < 0:
            msg = f"total_size must not be negative, got {total_size}"
            raise ChunkError(msg)
        if not 1 <= chunk_size <= MAX_CHUNK or (chunk_size < MIN_CHUNK < total_size):
            msg = f"chunk_size must be between 64 KiB and 5 GiB, got {chunk_size}"
            raise ChunkError(msg)
        if sha256 is not None and not _SHA256.match(sha256):
            msg = "sha256 must be 64 lower-case hex characters"
            raise ChunkError(msg)
        now = self._clock()
        session = UploadSession(
            id=secrets.token_urlsafe(18),
            key=key,
            total_size=total_size,
            chunk_size=chunk_size,
            content_type=content_type,
            sha256=sha256,
            metadata=meta,
            created_at=now,
            expires_at=now + self._ttl,
        )
        session.backend = self._staging.begin(session)
        self._store.create(session)
        return session.id

    def put_chunk(
        self, session_id: str, index: int, data: bytes, sha256: str | None = None
    ) -> UploadStatus:
        """Accept one chunk, in any order; a received chunk is immutable.

        The same bytes again are an idempotent success. The chunk is written and
        recorded under the session's chunk lock (a file lock on local disk, so other
        processes are held too), re-checking the session inside it: two concurrent
        sends of one index with different bytes cannot both write, and the bytes on
        disk are always the ones recorded.

        Raises:
            UploadNotFoundError: Unknown, aborted or expired session.
            ChunkError: Wrong index or size.
            ChunkConflictError: Different bytes for an index already received.
            ChecksumMismatchError: ``sha256`` does not match the bytes.
        """
        session = self._load(session_id)
        _check_open(session)
        if not 0 <= index < session.chunk_count:
            msg = f"chunk index {index} is outside 0..{session.chunk_count - 1}"
            raise ChunkError(msg)
        if len(data) != session.expected_size(index):
            msg = f"chunk {index} must be {session.expected_size(index)} bytes, got {len(data)}"
            raise ChunkError(msg)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and sha256.lower() != digest:
            msg = f"chunk {index} does not match its SHA-256"
            raise ChecksumMismatchError(msg)
        if _known(session, index, digest):
            return _status(session)
        with self._staging.chunk_lock(session):
            session = self._load(session_id)  # what it is now, under the lock
            _check_open(session)
            if _known(session, index, digest):
                return _status(session)
            part = self._staging.write_chunk(session, index, data)  # durable before recorded

            def record(current: UploadSession) -> None:
                _known(current, index, digest)  # raises on a conflict
                current.chunks[index] = digest
                if part is not None:
                    current.backend["parts"][str(part[0])] = part[1]

            session = self._update(session_id, record)
        ready, lost = self._staging.ready_parts(session)
        for number, state in ready:
            self._update(session_id, _record_part(number, state))
        if lost:
            self._update(session_id, _forget_chunks(lost))
        return _status(self._load(session_id))

    def status(self, session_id: str) -> UploadStatus:
        """Which chunks are in; ``chunk_size`` is the largest body ``put_chunk`` accepts.

        Pass ``status(session_id).chunk_size`` as ``limit`` to :func:`read_limited` /
        :func:`aread_limited` before reading a chunk body.
        """
        return _status(self._load(session_id))

    def complete(self, session_id: str) -> ObjectInfo:
        """Verify size and SHA-256 and make the object visible atomically.

        The SHA-256 is computed from the assembled bytes (never from what the chunks
        were said to be) and compared with the declared one. Calling it again after a
        lost response returns the same object.

        Raises:
            UploadIncompleteError: Chunks are missing (or were lost: send them again).
            ChecksumMismatchError: The assembled object does not match ``sha256``; the
                key is left untouched.
        """
        session = self._load(session_id)
        if session.state == "completed":
            return self.storage.stat(session.key)
        missing = session.missing()
        if missing:
            raise _incomplete(missing, "missing")
        with self._staging.chunk_lock(session):
            session = self._load(session_id)
            if session.state == "completed":
                return self.storage.stat(session.key)
            try:
                info = self._staging.complete(
                    session, lambda change: self._update(session_id, change)
                )
            except _LostChunksError as lost:
                # bytes on disk or in S3 differ from the recorded chunk (a host crash
                # lost them, or a refused sender overwrote them): ask for them again
                # instead of publishing them
                self._update(session_id, _forget_chunks(lost.indices))
                raise _incomplete(lost.indices, "lost before reaching the disk") from None
            self._update(session_id, lambda s: setattr(s, "state", "completed"))
        self._staging.cleanup(session)
        return info

    def abort(self, session_id: str) -> None:
        """Discard the upload and everything staged for it."""
        session = self._store.get(session_id)
        if session is None:
            return
        self._staging.abort(session)
        self._store.delete(session_id)

    def reap_expired(self, *, now: float | None = None) -> int:
        """Remove expired sessions and their staged data; returns how many were removed.

        Expired unfinished uploads are aborted (staged chunks, temporary files and S3
        multipart uploads removed), expired completed sessions are forgotten, and
        staged data no session remembers that is older than the TTL is removed too
        (a crash between staging and recording). Run it periodically (``veza-storage
        uploads reap`` does).

        Args:
            now: The current UTC epoch time (default: the clock given at construction).
        """
        now = self._clock() if now is None else now
        count = 0
        for session in self._store.expired(now):
            if session.state != "completed":
                self._staging.abort(session)
            self._store.delete(session.id)
            count += 1
        count += self._staging.sweep_orphans(older_than=now - self._ttl, known=self._remembered)
        return count

    def _remembered(self, session_id: str) -> bool:
        try:
            return self._store.get(session_id) is not None
        except StorageConfigurationError:  # not a session id a store would issue
            return False

    def sweep_expired(self) -> int:
        """Deprecated alias of :meth:`reap_expired` (since 0.2.0)."""
        warnings.warn(
            "ResumableUploads.sweep_expired() is deprecated; use reap_expired()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.reap_expired()


def _check_open(session: UploadSession) -> None:
    if session.state != "open":
        msg = f"upload {session.id!r} is {session.state}; it takes no more chunks"
        raise UploadError(msg)


def _known(session: UploadSession, index: int, digest: str) -> bool:
    """Whether ``index`` holds exactly these bytes already.

    Raises:
        ChunkConflictError: It holds other bytes.
    """
    known = session.chunks.get(index)
    if known is not None and known != digest:
        raise ChunkConflictError(index)
    return known is not None


def _incomplete(indices: list[int], why: str) -> UploadIncompleteError:
    shown = ", ".join(map(str, indices[:10])) + (" ..." if len(indices) > 10 else "")  # noqa: PLR2004
    return UploadIncompleteError(f"{len(indices)} chunk(s) {why}: {shown}; send them again")


class _LostChunksError(UploadError):
    def __init__(self, indices: list[int]) -> None:
        super().__init__(f"lost chunks {indices[:10]}")
        self.indices = indices


def _forget_chunks(indices: list[int]) -> Callable[[UploadSession], None]:
    def change(session: UploadSession) -> None:
        for index in indices:
            session.chunks.pop(index, None)

    return change


def _record_part(number: int, state: dict[str, str]) -> Callable[[UploadSession], None]:
    def change(session: UploadSession) -> None:
        session.backend["parts"][str(number)] = state

    return change


# ---------------------------------------------------------------------- local disk


class _LocalStaging:
    """Chunks land at their offset in one sparse staging file; ``complete`` renames it.

    Nothing is copied twice: ``put_chunk`` ``pwrite``s each chunk into
    ``.veza-uploads/<id>/data`` (same filesystem as the root), ``complete`` reads it once
    to hash the assembled bytes (the whole object and each chunk, on two threads),
    records the verified digest in the session, then renames it onto the key,
    atomically. A crash after the rename is recognised on resume by that digest.

    Every path is walked through directory descriptors (see ``_fs``), staging folders
    and the key's folders alike, so a symbolic link planted anywhere is refused.
    """

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage

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
        with self._walk(session, create=False) as chain:
            fd = os.open("data", os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=chain[-1])
        try:
            write_all(fd, memoryview(data), offset=index * session.chunk_size)
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
                sha256 = _verify_staged(session, fd)
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
            update(_assembled(sha256))
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
            for name in os.listdir(chain[-1]):  # noqa: PTH208 - a descriptor, not a path
                status = os.stat(name, dir_fd=chain[-1], follow_symlinks=False)
                if not stat.S_ISDIR(status.st_mode) or known(name):
                    continue
                if status.st_mtime < older_than:
                    shutil.rmtree(name, dir_fd=chain[-1], ignore_errors=True)
                    removed += 1
        return removed


_STAGED = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_staged(dir_fd: int) -> int | None:
    try:
        return os.open("data", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def _verify_staged(session: UploadSession, fd: int) -> str:
    """Read the staged file once: the whole object's SHA-256 and every chunk's digest.

    The whole-object digest runs on a second thread over the same buffers (``hashlib``
    releases the GIL on large buffers), so verifying costs one hash's time, not two.

    Raises:
        _LostChunksError: Chunks whose bytes are not the recorded ones.
        UploadIncompleteError, ChecksumMismatchError: See ``_check_whole``.
    """
    digest, size, lost = hashlib.sha256(), 0, []
    free: queue.Queue[memoryview] = queue.Queue()
    for _ in range(3):
        free.put(memoryview(bytearray(COPY_BUFFER)))
    filled: queue.Queue[memoryview | None] = queue.Queue()

    def whole() -> None:
        while (view := filled.get()) is not None:
            digest.update(view)
            free.put(memoryview(view.obj))  # obj: the whole bytearray behind the slice

    worker = threading.Thread(target=whole, name="veza-storage-verify")
    worker.start()
    try:
        offset = 0
        for index in range(session.chunk_count):
            remaining = session.expected_size(index)
            chunk_digest = hashlib.sha256()
            while remaining:
                buffer = free.get()
                count = os.preadv(fd, [buffer[: min(len(buffer), remaining)]], offset)
                if not count:
                    free.put(buffer)
                    break
                chunk_digest.update(buffer[:count])
                filled.put(buffer[:count])
                size += count
                offset += count
                remaining -= count
            if chunk_digest.hexdigest() != session.chunks[index]:
                lost.append(index)
    finally:
        filled.put(None)
        worker.join()
    if lost:
        raise _LostChunksError(lost)
    _check_whole(session, size, digest.hexdigest())
    return digest.hexdigest()


def _assembled(sha256: str) -> Callable[[UploadSession], None]:
    def change(session: UploadSession) -> None:
        session.state = "assembled"
        session.backend["sha256"] = sha256

    return change


def _check_whole(session: UploadSession, size: int, sha256: str) -> None:
    if size != session.total_size:
        msg = f"assembled {size} bytes, expected {session.total_size}"
        raise UploadIncompleteError(msg)
    if session.sha256 is not None and sha256 != session.sha256:
        msg = "the assembled object does not match the upload's SHA-256; the key is untouched"
        raise ChecksumMismatchError(msg)


# ---------------------------------------------------------------------- S3


class _S3Staging:
    def __init__(self, storage: S3Storage) -> None:
        self._s3 = storage
        self._client = storage.client
        self._bucket = storage.bucket

    def _base(self, session: UploadSession) -> str:
        return self._s3.full_key(f"{STAGING}/{session.id}")

    def _object(self, session: UploadSession) -> str:
        return f"{self._base(session)}/object"

    def _chunk(self, session: UploadSession, index: int) -> str:
        return f"{self._base(session)}/chunk-{index:08d}"

    @staticmethod
    def _group(session: UploadSession) -> int:
        return max(1, -(-MIN_PART // session.chunk_size))

    def begin(self, session: UploadSession) -> dict[str, Any]:
        group = self._group(session)
        parts = -(-session.chunk_count // group) if session.chunk_count else 0
        if parts > MAX_PARTS:
            smallest = session.total_size // MAX_PARTS + 1
            msg = f"{parts} S3 parts needed; use chunks of at least {smallest} bytes"
            raise ChunkError(msg)
        upload = self._client.create_multipart_upload(
            Bucket=self._bucket,
            Key=self._object(session),
            ContentType=session.content_type,
            ChecksumAlgorithm="SHA256",
        )
        return {"upload_id": upload["UploadId"], "group": group, "parts": {}}

    def write_chunk(
        self, session: UploadSession, index: int, data: bytes
    ) -> tuple[int, dict[str, str]] | None:
        if session.backend["group"] == 1:  # a chunk is a part
            return index + 1, self._upload_part(session, index + 1, data)
        # a small chunk waits as a staging object until its group is complete
        self._client.put_object(
            Bucket=self._bucket,
            Key=self._chunk(session, index),
            Body=data,
            ChecksumSHA256=_b64_sha256(data),
        )
        return None

    def _upload_part(self, session: UploadSession, number: int, data: bytes) -> dict[str, str]:
        checksum = _b64_sha256(data)
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._object(session),
            UploadId=session.backend["upload_id"],
            PartNumber=number,
            Body=data,
            ChecksumSHA256=checksum,
        )
        return {"ETag": answer["ETag"], "ChecksumSHA256": checksum}

    @contextlib.contextmanager
    def chunk_lock(self, session: UploadSession) -> Iterator[None]:
        """No lock can span S3 clients: ``complete`` verifies every part instead."""
        del session
        yield

    def ready_parts(
        self, session: UploadSession
    ) -> tuple[list[tuple[int, dict[str, str]]], list[int]]:
        """Upload every grouped part whose chunks are all in and that is not uploaded.

        Each staged chunk is checked against its recorded digest first: a refused
        sender may have overwritten it. Chunks that fail are returned as lost (the
        caller forgets them, so the client sends them again).
        """
        group = session.backend["group"]
        if group == 1:
            return [], []
        done: list[tuple[int, dict[str, str]]] = []
        lost: list[int] = []
        for number in range(1, -(-session.chunk_count // group) + 1):
            if str(number) in session.backend["parts"]:
                continue
            indices = range((number - 1) * group, min(number * group, session.chunk_count))
            if not all(i in session.chunks for i in indices):
                continue
            pieces = self._read_group(session, indices, lost)
            if pieces is None or lost:
                continue
            done.append((number, self._upload_part(session, number, b"".join(pieces))))
            for i in indices:
                self._client.delete_object(Bucket=self._bucket, Key=self._chunk(session, i))
        return done, lost

    def _read_group(
        self, session: UploadSession, indices: range, lost: list[int]
    ) -> list[bytes] | None:
        """A group's staged chunks (under 10 MiB), checked against their recorded digests.

        Returns ``None`` when a chunk object is gone: a concurrent request is uploading
        this group right now and records the part itself.
        """
        pieces = []
        for i in indices:
            try:
                answer = self._client.get_object(Bucket=self._bucket, Key=self._chunk(session, i))
            except Exception as exc:
                if _code(exc)[0] in ("NoSuchKey", "404"):
                    return None
                raise
            with contextlib.closing(answer["Body"]) as body:
                pieces.append(body.read())
            if hashlib.sha256(pieces[-1]).hexdigest() != session.chunks[i]:
                lost.append(i)
        return pieces

    def _parts(self, session: UploadSession) -> list[dict[str, Any]]:
        answer = self._client.list_parts(
            Bucket=self._bucket, Key=self._object(session), UploadId=session.backend["upload_id"]
        )
        parts = answer.get("Parts", [])
        while answer.get("IsTruncated"):
            answer = self._client.list_parts(
                Bucket=self._bucket,
                Key=self._object(session),
                UploadId=session.backend["upload_id"],
                PartNumberMarker=answer["NextPartNumberMarker"],
            )
            parts += answer.get("Parts", [])
        return [
            {
                "PartNumber": p["PartNumber"],
                "ETag": p["ETag"],
                "ChecksumSHA256": p.get("ChecksumSHA256")
                or session.backend["parts"].get(str(p["PartNumber"]), {}).get("ChecksumSHA256"),
            }
            for p in sorted(parts, key=lambda p: p["PartNumber"])
        ]

    def _check_parts(self, session: UploadSession) -> None:
        """Every part holds the bytes recorded for its chunks, or those chunks are lost.

        A part number uploaded again (a refused concurrent sender, a stale retry)
        changes the part's ETag, so the ETag S3 lists must be the one recorded when
        the accepted chunk was uploaded (and its SHA-256 too, where S3 lists it).
        """
        group = session.backend["group"]
        answer = self._client.list_parts(
            Bucket=self._bucket, Key=self._object(session), UploadId=session.backend["upload_id"]
        )
        listed = answer.get("Parts", [])
        while answer.get("IsTruncated"):
            answer = self._client.list_parts(
                Bucket=self._bucket,
                Key=self._object(session),
                UploadId=session.backend["upload_id"],
                PartNumberMarker=answer["NextPartNumberMarker"],
            )
            listed += answer.get("Parts", [])
        found = {p["PartNumber"]: p for p in listed}
        lost: list[int] = []
        for number in range(1, -(-session.chunk_count // group) + 1):
            recorded = session.backend["parts"].get(str(number))
            part = found.get(number)
            if (
                recorded is None
                or part is None
                or part["ETag"] != recorded["ETag"]
                or part.get("ChecksumSHA256", recorded["ChecksumSHA256"])
                != recorded["ChecksumSHA256"]
            ):
                lost += range((number - 1) * group, min(number * group, session.chunk_count))
        if lost:
            raise _LostChunksError(lost)

    def complete(self, session: UploadSession, update: Callable[..., UploadSession]) -> ObjectInfo:
        if session.state == "open":
            self._check_parts(session)
            parts = self._parts(session)
            try:
                if session.chunk_count:
                    self._client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._object(session),
                        UploadId=session.backend["upload_id"],
                        MultipartUpload={"Parts": parts},
                    )
                else:  # an empty object: no parts to join
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._object(session),
                        UploadId=session.backend["upload_id"],
                    )
                    self._client.put_object(
                        Bucket=self._bucket, Key=self._object(session), Body=b""
                    )
            except Exception as exc:
                if _code(exc)[0] != "NoSuchUpload":  # a crash after a previous complete
                    raise
            update(lambda s: setattr(s, "state", "assembled"))
        # read the joined object back: the digest of the assembled bytes, verified
        # before the key ever sees it
        answer = self._client.get_object(Bucket=self._bucket, Key=self._object(session))
        digest, size = hashlib.sha256(), 0
        with contextlib.closing(answer["Body"]) as body:
            while block := body.read(BLOCK):
                digest.update(block)
                size += len(block)
        sha256 = digest.hexdigest()
        _check_whole(session, size, sha256)
        self._s3.server_side_copy(
            self._object(session),
            self._s3.full_key(session.key),
            size=size,
            metadata={**session.metadata, "sha256": sha256},
            content_type=session.content_type,
        )
        return self._s3.stat(session.key)

    def cleanup(self, session: UploadSession) -> None:
        base = self._base(session) + "/"
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=base):
            for item in page.get("Contents", []):
                self._client.delete_object(Bucket=self._bucket, Key=item["Key"])

    def abort(self, session: UploadSession) -> None:
        with contextlib.suppress(Exception):
            self._client.abort_multipart_upload(
                Bucket=self._bucket,
                Key=self._object(session),
                UploadId=session.backend["upload_id"],
            )
        self.cleanup(session)

    def sweep_orphans(self, older_than: float, known: Callable[[str], bool]) -> int:
        """Abort multipart uploads and delete staged chunks no session remembers."""
        base = self._s3.full_key(STAGING + "/")

        def orphan(key: str, when: float) -> bool:
            session_id = key.removeprefix(base).split("/", 1)[0]
            return when < older_than and not known(session_id)

        removed = 0
        answer = self._client.list_multipart_uploads(Bucket=self._bucket, Prefix=base)
        for upload in answer.get("Uploads", []):
            if orphan(upload["Key"], upload["Initiated"].timestamp()):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=base):
            for item in page.get("Contents", []):
                if orphan(item["Key"], item["LastModified"].timestamp()):
                    self._client.delete_object(Bucket=self._bucket, Key=item["Key"])
        return removed
