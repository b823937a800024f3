"""Resumable chunked uploads: chunks in any order, verified, visible only when complete.

``begin`` opens a session; ``put_chunk`` accepts chunks in any order (a re-sent chunk
with the same bytes is a no-op; different bytes, a wrong size or a wrong SHA-256 are
refused); ``status`` says which chunks are in; ``complete`` checks the size and the whole
object's SHA-256 and makes the object visible atomically; ``abort`` discards it. The
session lives in an :class:`UploadSessionStore`, so an upload resumes after a restart.

Local disk: each chunk is written at its offset into one sparse staging file
(``.veza-uploads/<id>/data``), so nothing is copied twice; ``complete`` hashes it in
one pass and renames it onto the key. Chunks are not fsynced one by one (write-back
starts as each is written; ``complete`` fsyncs once). What that guarantees: an
acknowledged chunk survives a crash of the process; a crash of the host may lose it,
and it is then never published: after a reboot ``complete`` checks every chunk against
its record (a CRC-32 of the bytes received, computed while they are written) and asks
for the lost ones again. A resent chunk is compared with the staged bytes themselves:
the same bytes are an idempotent success (and rewrite a staged chunk that went bad),
other bytes a ``ChunkConflictError``.

S3: nothing is re-assembled locally. Chunks of 5 MiB or more are multipart parts;
smaller chunks are grouped (as tusd does): each group of ``ceil(5 MiB / chunk_size)``
chunks becomes one part, its chunks waiting as small staging objects until the group is
complete. ``complete`` joins the parts into a staging object, reads it back to verify
size and SHA-256, then copies it server-side to the key, so the key only ever holds a
verified object. Stale sessions are swept: MinIO itself deletes unfinished multipart
uploads after 24 hours, so keep the session TTL at or below that.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar, cast

import attrs

from veza_storage._capabilities import ComparesStagedChunks, SupportsUploadStaging, UploadStaging
from veza_storage._compat import positional_deprecated
from veza_storage._errors import (
    ChecksumMismatchError,
    ChunkConflictError,
    ChunkError,
    StorageConfigurationError,
    UploadError,
    UploadIncompleteError,
    UploadNotFoundError,
)
from veza_storage._keys import validate_key
from veza_storage._protocol import Storage
from veza_storage._sessions import UploadSession, UploadSessionStore
from veza_storage._staging import LostChunksError
from veza_storage._staging_local import boot_id
from veza_storage._threads import BesideThreads
from veza_storage._types import ObjectInfo, validate_metadata

MIN_CHUNK = 64 * 1024
# Below this a chunk is hashed before it is written: a thread costs more than it saves.
_OVERLAP_FROM = 1024 * 1024
_T = TypeVar("_T")
MAX_CHUNK = 5 * 1024**3
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class UploadStatus:
    """Where an upload stands.

    Attributes:
        session_id: The session.
        key: The object key it becomes.
        total_size: Bytes in the whole object.
        chunk_size: Bytes per chunk: the largest body ``put_chunk`` accepts, so the
            ``limit`` to pass to :func:`read_limited` / :func:`aread_limited`.
        chunk_count: Chunks in the whole object.
        received: Indices of the chunks that arrived, sorted.
        state: ``open``, ``assembled`` or ``completed``.
        expires_at: When it expires (UTC epoch seconds); ``reap_expired`` removes it.
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
    """Resumable uploads into any storage that can stage them.

    Args:
        storage: The backend the objects end up in: ``LocalStorage``, ``S3Storage`` or
            any :class:`Storage` with the :class:`SupportsUploadStaging` capability.
        store: Where sessions are kept (in memory, a directory, or SQL).
        ttl: Seconds an unfinished upload lives before the sweep aborts it.
        clock: Returns the current UTC epoch time.
    """

    def __init__(
        self,
        storage: Storage,
        store: UploadSessionStore,
        *,
        ttl: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(storage, SupportsUploadStaging):
            msg = (
                f"resumable uploads need a storage with upload_staging() (see "
                f"SupportsUploadStaging); {type(storage).__name__} has none"
            )
            raise StorageConfigurationError(msg)
        self._staging: UploadStaging = storage.upload_staging()
        self._compares = self._staging if isinstance(self._staging, ComparesStagedChunks) else None
        # chunk records are computed beside the write on these threads (started on first
        # use, ended with this object, started afresh in a forked child): a thread started
        # per chunk made each chunk wait for it to be scheduled on a busy two-core machine
        self._beside = BesideThreads(2, "veza-storage-chunk")
        self.storage: Storage = storage
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

    def begin(
        self,
        key: str,
        total_size: int,
        *legacy: object,
        chunk_size: int | None = None,
        content_type: str | None = None,
        sha256: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Open an upload session; returns its id.

        Everything after ``total_size`` is keyword-only; passing it positionally (the
        0.1 signature) still works, with a ``DeprecationWarning``.

        Raises:
            InvalidKeyError: Bad key.
            ChunkError: Sizes that cannot work (chunks under 64 KiB unless the object is
                a single chunk; over 5 GiB; more than 10,000 S3 parts).
            TypeError: ``chunk_size`` or ``content_type`` missing, or given twice.
        """
        if legacy:
            chunk_size, content_type, sha256, metadata = _legacy_begin(
                legacy, chunk_size, content_type, sha256, metadata
            )
        if chunk_size is None or content_type is None:
            msg = "begin() needs chunk_size= and content_type="
            raise TypeError(msg)
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

    @positional_deprecated
    def put_chunk(
        self, session_id: str, index: int, *, data: bytes, sha256: str | None = None
    ) -> UploadStatus:
        """Accept one chunk, in any order; a received chunk is immutable.

        The same bytes again are an idempotent success. The chunk is written and
        recorded under the session's chunk lock (a file lock on local disk, so other
        processes are held too), re-checking the session inside it: two concurrent
        sends of one index with different bytes cannot both write, and the bytes on
        disk are always the ones recorded. Where the staging can compare a resend with
        the staged bytes (local disk), it does so instead of comparing digests.

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
        digest: str | None = None
        if sha256 is not None:  # a declared digest is checked before anything is written
            digest = hashlib.sha256(data).hexdigest()
            if sha256.lower() != digest:
                msg = f"chunk {index} does not match its SHA-256"
                raise ChecksumMismatchError(msg)
        if index in session.chunks and self._compares is None:  # a resend: compare, never write
            _known(session, index, digest or hashlib.sha256(data).hexdigest())
            return _status(session)
        with self._staging.chunk_lock(session):
            session = self._load(session_id)  # what it is now, under the lock
            _check_open(session)
            repair = index in session.chunks
            if repair and self._already_staged(session, index, data, digest):
                return _status(session)
            session = self._write_and_record(session, index, data, digest, repair=repair)
        ready, lost = self._staging.ready_parts(session)
        for number, state in ready:
            self._update(session_id, _record_part(number, state))
        if lost:
            self._update(session_id, _forget_chunks(lost))
        return _status(self._load(session_id))

    def _already_staged(
        self, session: UploadSession, index: int, data: bytes, digest: str | None
    ) -> bool:
        """For an index already recorded, under its lock: whether ``data`` is staged as is.

        ``False`` means ``data`` is what was received but the staged bytes went bad (a
        host crash, a change on disk): the caller writes them again.

        Raises:
            ChunkConflictError: ``data`` is not what was received for this index.
        """
        if self._compares is None:
            return _known(session, index, digest or hashlib.sha256(data).hexdigest())
        same = self._compares.compare_chunk(session, index, data)
        if same is False:
            raise ChunkConflictError(index)
        return same is True

    def _write_and_record(
        self,
        session: UploadSession,
        index: int,
        data: bytes,
        digest: str | None,
        *,
        repair: bool,
    ) -> UploadSession:
        """Stage the chunk and record it (the caller holds the chunk lock)."""
        boot = boot_id()
        # We hold the index's lock: compute its record while writing (both release the
        # GIL) instead of before; the record is that of the bytes written.
        write = functools.partial(self._staging.write_chunk, session, index, data)
        if self._compares is not None:
            record_of = functools.partial(self._compares.chunk_record, data)
            recorded, part = _computing_while(record_of, write, len(data), self._beside)
        elif digest is None:
            recorded, part = _hashing_while(data, write, self._beside)
        else:
            part = write()  # durable before recorded
            recorded = digest

        def record(current: UploadSession) -> None:
            if not repair:
                _known(current, index, recorded)  # raises on a conflict
            current.chunks[index] = recorded
            if part is not None:
                current.backend["parts"][str(part[0])] = part[1]
            boots = current.backend.setdefault("boots", [])
            if boot not in boots:  # the host boots chunks were written under
                boots.append(boot)

        return self._update(session.id, record)

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
            except LostChunksError as lost:
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


_BEGIN_LEGACY = ("chunk_size", "content_type", "sha256", "metadata")


def _legacy_begin(
    legacy: tuple[object, ...],
    chunk_size: int | None,
    content_type: str | None,
    sha256: str | None,
    metadata: Mapping[str, str] | None,
) -> tuple[int | None, str | None, str | None, Mapping[str, str] | None]:
    """Map 0.1's positional ``begin`` arguments onto the keywords, warning once per call."""
    warnings.warn(
        "ResumableUploads.begin(key, total_size, chunk_size, content_type, ...) with "
        "positional arguments is deprecated; pass chunk_size=, content_type=, sha256= "
        "and metadata= by keyword",
        DeprecationWarning,
        stacklevel=3,
    )
    if len(legacy) > len(_BEGIN_LEGACY):
        msg = f"begin() takes at most 6 positional arguments ({len(legacy) + 2} given)"
        raise TypeError(msg)
    given: dict[str, object] = {"chunk_size": chunk_size, "content_type": content_type}
    given |= {"sha256": sha256, "metadata": metadata}
    for name, value in zip(_BEGIN_LEGACY, legacy, strict=False):
        if given[name] is not None:
            msg = f"begin() got {name} both positionally and by keyword"
            raise TypeError(msg)
        given[name] = value
    return (
        cast("int | None", given["chunk_size"]),
        cast("str | None", given["content_type"]),
        cast("str | None", given["sha256"]),
        cast("Mapping[str, str] | None", given["metadata"]),
    )


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
    shown = ", ".join(map(str, indices[:10])) + (" ..." if len(indices) > 10 else "")
    return UploadIncompleteError(f"{len(indices)} chunk(s) {why}: {shown}; send them again")


def _forget_chunks(indices: list[int]) -> Callable[[UploadSession], None]:
    def change(session: UploadSession) -> None:
        for index in indices:
            session.chunks.pop(index, None)

    return change


def _record_part(number: int, state: dict[str, str]) -> Callable[[UploadSession], None]:
    def change(session: UploadSession) -> None:
        session.backend["parts"][str(number)] = state

    return change


def _hashing_while(data: bytes, write: Callable[[], _T], beside: BesideThreads) -> tuple[str, _T]:
    """SHA-256 of ``data`` computed on a helper thread while ``write`` runs; both results.

    ``hashlib`` releases the GIL on large buffers and so do ``pwrite`` and socket sends:
    an 8 MiB chunk costs the longer of the two instead of their sum. The hash is
    finished before returning, even when ``write`` raises.
    """
    return _computing_while(lambda: hashlib.sha256(data).hexdigest(), write, len(data), beside)


def _computing_while(
    compute: Callable[[], str], write: Callable[[], _T], size: int, beside: BesideThreads
) -> tuple[str, _T]:
    """``compute()`` on a helper thread while ``write`` runs (from 1 MiB); both results.

    Raises:
        UploadError: ``compute()`` failed: a chunk is never recorded without its digest.
    """
    msg = "the chunk's digest could not be computed"
    future = beside.submit(compute) if size >= _OVERLAP_FROM else None
    if future is None:  # a small chunk, or the interpreter is ending (no pool): compute here
        try:
            digest = compute()
        except Exception as exc:
            raise UploadError(msg) from exc
        return digest, write()
    try:
        written = write()
    finally:
        failure = future.exception()  # waits for compute(), even when write() raised
    if failure is not None:
        raise UploadError(msg) from failure
    return future.result(), written
