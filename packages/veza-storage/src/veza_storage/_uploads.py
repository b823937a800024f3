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
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from veza_storage._copy import BUFFER as COPY_BUFFER
from veza_storage._copy import write_all
from veza_storage._errors import (
    ChecksumMismatchError,
    ChunkError,
    StorageConfigurationError,
    UploadError,
    UploadIncompleteError,
    UploadNotFoundError,
)
from veza_storage._keys import RESERVED_PREFIX, validate_key
from veza_storage._local import XATTR, LocalStorage, fsync_directory
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
        # session id -> [next chunk index, running SHA-256]: while chunks arrive in order
        # in this process, complete() knows the whole object's hash without reading back
        self._running: dict[str, list[Any]] = {}
        self._running_lock = threading.Lock()

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
        """Accept one chunk, in any order; re-sending an identical chunk is harmless.

        Raises:
            UploadNotFoundError: Unknown, aborted or expired session.
            ChunkError: Wrong index or size, or different bytes for a received index.
            ChecksumMismatchError: ``sha256`` does not match the bytes.
        """
        session = self._load(session_id)
        if session.state != "open":
            msg = f"upload {session_id!r} is {session.state}; it takes no more chunks"
            raise UploadError(msg)
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
        known = session.chunks.get(index)
        if known == digest:
            return _status(session)
        if known is not None:
            msg = f"chunk {index} was already received with different bytes"
            raise ChunkError(msg)
        part = self._staging.write_chunk(session, index, data)  # durable before recorded

        def record(current: UploadSession) -> None:
            previous = current.chunks.get(index)
            if previous is not None and previous != digest:
                msg = f"chunk {index} was already received with different bytes"
                raise ChunkError(msg)
            current.chunks[index] = digest
            if part is not None:
                current.backend["parts"][str(part[0])] = part[1]

        session = self._update(session_id, record)
        self._advance_running(session_id, index, data)
        for number, state in self._staging.ready_parts(session):
            self._update(session_id, _record_part(number, state))
        return _status(self._load(session_id))

    def _advance_running(self, session_id: str, index: int, data: bytes) -> None:
        with self._running_lock:
            entry = self._running.get(session_id)
            if entry is None and index == 0:
                entry = self._running[session_id] = [0, hashlib.sha256()]
            if entry is not None:
                if index == entry[0]:
                    entry[1].update(data)
                    entry[0] += 1
                elif index > entry[0]:  # a gap: this process cannot hash in order any more
                    del self._running[session_id]

    def _known_sha256(self, session: UploadSession) -> str | None:
        with self._running_lock:
            entry = self._running.get(session.id)
        if entry is not None and entry[0] == session.chunk_count:
            return str(entry[1].hexdigest())
        return None

    def status(self, session_id: str) -> UploadStatus:
        """Which chunks are in."""
        return _status(self._load(session_id))

    def complete(self, session_id: str) -> ObjectInfo:
        """Verify size and SHA-256 and make the object visible atomically.

        Calling it again after a lost response returns the same object.

        Raises:
            UploadIncompleteError: Chunks are missing.
            ChecksumMismatchError: The assembled object does not match ``sha256``; the
                key is left untouched.
        """
        session = self._load(session_id)
        if session.state == "completed":
            return self.storage.stat(session.key)
        missing = session.missing()
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")  # noqa: PLR2004
            msg = f"{len(missing)} chunk(s) missing: {shown}"
            raise UploadIncompleteError(msg)
        known = self._known_sha256(session) if session.chunk_count else hashlib.sha256().hexdigest()
        try:
            info = self._staging.complete(
                session, lambda change: self._update(session_id, change), known_sha256=known
            )
        except _LostChunksError as lost:
            # a host crash lost acknowledged chunks before they reached the disk: ask for
            # them again instead of publishing zeros
            self._update(session_id, _forget_chunks(lost.indices))
            with self._running_lock:
                self._running.pop(session_id, None)
            shown = ", ".join(map(str, lost.indices[:10]))
            msg = f"chunk(s) {shown} were lost before reaching the disk: send them again"
            raise UploadIncompleteError(msg) from None
        self._update(session_id, lambda s: setattr(s, "state", "completed"))
        self._staging.cleanup(session)
        with self._running_lock:
            self._running.pop(session_id, None)
        return info

    def abort(self, session_id: str) -> None:
        """Discard the upload and everything staged for it."""
        with self._running_lock:
            self._running.pop(session_id, None)
        session = self._store.get(session_id)
        if session is None:
            return
        self._staging.abort(session)
        self._store.delete(session_id)

    def sweep_expired(self) -> int:
        """Abort every expired, unfinished upload; returns how many were aborted."""
        now = self._clock()
        count = 0
        for session in self._store.expired(now):
            if session.state == "completed":
                self._store.delete(session.id)
                continue
            self._staging.abort(session)
            self._store.delete(session.id)
            with self._running_lock:
                self._running.pop(session.id, None)
            count += 1
        count += self._staging.sweep_orphans(older_than=now - self._ttl)
        return count


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
    to verify size and SHA-256, records the verified digest in the session, then renames
    it onto the key, atomically. A crash after the rename is recognised on resume by
    that digest.
    """

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        self._root = storage.root / STAGING

    def _dir(self, session: UploadSession) -> Path:
        return self._root / session.id

    def _data(self, session: UploadSession) -> Path:
        return self._dir(session) / "data"

    def begin(self, session: UploadSession) -> dict[str, Any]:
        directory = self._dir(session)
        directory.mkdir(parents=True, exist_ok=True)
        with self._data(session).open("wb") as data:
            data.truncate(session.total_size)  # sparse until chunks arrive
            os.fsync(data.fileno())
        fsync_directory(directory)
        return {"parts": {}}

    def write_chunk(
        self, session: UploadSession, index: int, data: bytes
    ) -> tuple[int, dict[str, str]] | None:
        # No fsync per chunk: complete() fsyncs once, and verifies chunk digests whenever
        # it cannot vouch for the bytes, so a chunk a host crash lost is asked for again.
        fd = os.open(self._data(session), os.O_WRONLY)
        try:
            write_all(fd, memoryview(data), offset=index * session.chunk_size)
        finally:
            os.close(fd)
        return None

    def ready_parts(self, session: UploadSession) -> list[tuple[int, dict[str, str]]]:
        del session
        return []

    def complete(
        self,
        session: UploadSession,
        update: Callable[..., UploadSession],
        *,
        known_sha256: str | None,
    ) -> ObjectInfo:
        target = self._storage.local_path(session.key)
        data = self._data(session)
        if session.state == "assembled" and not data.exists():  # crashed after the rename
            info = self._storage.stat(session.key)
            if info.sha256 == session.backend.get("sha256"):
                return info
            msg = "the staged upload is gone and the key does not hold it"
            raise UploadIncompleteError(msg)
        if known_sha256 is not None and data.stat().st_size == session.total_size:
            sha256 = known_sha256  # hashed in order as the chunks arrived, in this process
            _check_whole(session, session.total_size, sha256)
        else:
            sha256 = self._verify_staged(session, data)
        record = {
            "content_type": session.content_type,
            "sha256": sha256,
            "metadata": session.metadata,
        }
        os.setxattr(data, XATTR, json.dumps(record).encode())
        with data.open("rb") as staged:
            os.fsync(staged.fileno())
        update(_assembled(sha256))
        target.parent.mkdir(parents=True, exist_ok=True)
        data.replace(target)
        fsync_directory(target.parent)
        return self._storage.stat(session.key)

    @staticmethod
    def _verify_staged(session: UploadSession, data: Path) -> str:
        """Read the staged file once: whole-object SHA-256 and every chunk's digest."""
        digest, size, lost = hashlib.sha256(), 0, []
        buffer = bytearray(COPY_BUFFER)
        view = memoryview(buffer)
        with data.open("rb", buffering=0) as staged:
            for index in range(session.chunk_count):
                remaining = session.expected_size(index)
                chunk_digest = hashlib.sha256()
                while remaining:
                    count = staged.readinto(view[: min(len(view), remaining)])
                    if not count:
                        break
                    digest.update(view[:count])
                    chunk_digest.update(view[:count])
                    size += count
                    remaining -= count
                if chunk_digest.hexdigest() != session.chunks[index]:
                    lost.append(index)
        if lost:
            raise _LostChunksError(lost)
        _check_whole(session, size, digest.hexdigest())
        return digest.hexdigest()

    def cleanup(self, session: UploadSession) -> None:
        shutil.rmtree(self._dir(session), ignore_errors=True)

    def abort(self, session: UploadSession) -> None:
        self.cleanup(session)

    def sweep_orphans(self, older_than: float) -> int:
        removed = 0
        if not self._root.is_dir():
            return 0
        for directory in self._root.iterdir():
            if directory.is_dir() and directory.stat().st_mtime < older_than:
                shutil.rmtree(directory, ignore_errors=True)
                removed += 1
        return removed


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

    def ready_parts(self, session: UploadSession) -> list[tuple[int, dict[str, str]]]:
        """Upload every grouped part whose chunks are all in and that is not uploaded."""
        group = session.backend["group"]
        if group == 1:
            return []
        done: list[tuple[int, dict[str, str]]] = []
        for number in range(1, -(-session.chunk_count // group) + 1):
            if str(number) in session.backend["parts"]:
                continue
            indices = range((number - 1) * group, min(number * group, session.chunk_count))
            if not all(i in session.chunks for i in indices):
                continue
            pieces = []  # one group is under 10 MiB: the only data held in memory
            for i in indices:
                answer = self._client.get_object(Bucket=self._bucket, Key=self._chunk(session, i))
                with contextlib.closing(answer["Body"]) as body:
                    pieces.append(body.read())
            done.append((number, self._upload_part(session, number, b"".join(pieces))))
            for i in indices:
                self._client.delete_object(Bucket=self._bucket, Key=self._chunk(session, i))
        return done

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

    def complete(
        self,
        session: UploadSession,
        update: Callable[..., UploadSession],
        *,
        known_sha256: str | None,
    ) -> ObjectInfo:
        if session.state == "open":
            expected_parts = -(-session.chunk_count // session.backend["group"])
            parts = [p for p in self._parts(session) if p.get("ChecksumSHA256")]
            if session.chunk_count and len(parts) != expected_parts:
                msg = f"{expected_parts - len(parts)} part(s) not uploaded yet; resend chunks"
                raise UploadIncompleteError(msg)
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
        if known_sha256 is not None:  # every part carried its checksum, hashed in order here
            size = int(
                self._client.head_object(Bucket=self._bucket, Key=self._object(session))[
                    "ContentLength"
                ]
            )
            sha256 = known_sha256
        else:  # read the joined object back: verified before the key ever sees it
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

    def sweep_orphans(self, older_than: float) -> int:
        """Abort multipart uploads under the staging prefix no session remembers."""
        removed = 0
        answer = self._client.list_multipart_uploads(
            Bucket=self._bucket, Prefix=self._s3.full_key(STAGING + "/")
        )
        for upload in answer.get("Uploads", []):
            if upload["Initiated"].timestamp() < older_than:
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        return removed
