"""Upload sessions and where they are kept: the ``UploadSessionStore`` protocol.

A session records which chunks arrived (with a digest of each) and backend state (the S3
multipart upload id and the parts uploaded). Stores update sessions with compare-and-
set on a version number, so concurrent chunk requests for one upload never lose each
other's records, with any number of processes. Two stores live here (in memory, and
one JSON file per session for a single host); a SQL store comes with the
``sqlalchemy`` extra.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from veza_storage._errors import StorageConfigurationError


@attrs.define
class UploadSession:
    """One resumable upload. Stores persist it as JSON (:meth:`to_json`).

    Attributes:
        id: The session id (random, URL-safe).
        key: The object key the upload becomes.
        total_size: Bytes in the whole object.
        chunk_size: Bytes per chunk (the last chunk may be shorter).
        content_type: The object's MIME type.
        sha256: The whole object's expected SHA-256 (hex), if the client sent one.
        metadata: User metadata for the object.
        created_at: UTC epoch seconds.
        expires_at: UTC epoch seconds after which the sweep aborts the upload.
        state: ``open``, ``assembled`` (S3: parts joined, not yet verified) or
            ``completed``.
        chunks: Received chunk index to its record: the SHA-256 (hex) of the bytes
            received, or ``crc32:<8 hex>`` where the staging compares resends with the
            staged bytes (local disk).
        backend: Backend state (S3: upload id, parts).
        version: Incremented by every successful store update.
    """

    id: str
    key: str
    total_size: int
    chunk_size: int
    content_type: str
    sha256: str | None
    metadata: dict[str, str]
    created_at: float
    expires_at: float
    state: str = "open"
    chunks: dict[int, str] = attrs.field(factory=dict)
    backend: dict[str, Any] = attrs.field(factory=dict)
    version: int = 0

    @property
    def chunk_count(self) -> int:
        """How many chunks the whole object has."""
        return -(-self.total_size // self.chunk_size) if self.total_size else 0

    def expected_size(self, index: int) -> int:
        """The exact size chunk ``index`` must have."""
        if index == self.chunk_count - 1:
            return self.total_size - index * self.chunk_size
        return self.chunk_size

    def missing(self) -> list[int]:
        """Chunk indices not received yet."""
        return [i for i in range(self.chunk_count) if i not in self.chunks]

    def to_json(self) -> str:
        """Serialise (chunk indices as strings, as JSON requires)."""
        data = attrs.asdict(self)
        data["chunks"] = {str(k): v for k, v in self.chunks.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> UploadSession:
        """Deserialise what :meth:`to_json` produced."""
        data = json.loads(text)
        data["chunks"] = {int(k): v for k, v in data["chunks"].items()}
        return cls(**data)

    def copy(self) -> UploadSession:
        """An independent copy (stores never hand out their own objects)."""
        return UploadSession.from_json(self.to_json())


@runtime_checkable
class UploadSessionStore(Protocol):
    """Where upload sessions live, so an upload resumes after a process restart."""

    def create(self, session: UploadSession) -> None:
        """Store a new session (its id must be unused)."""
        ...

    def get(self, session_id: str) -> UploadSession | None:
        """The session, or ``None``."""
        ...

    def replace(self, session: UploadSession, *, expected_version: int) -> bool:
        """Store ``session`` if the stored version is still ``expected_version``.

        Returns:
            ``False`` when another writer got there first (reload and retry).
        """
        ...

    def delete(self, session_id: str) -> None:
        """Forget the session (missing ids are fine)."""
        ...

    def expired(self, now: float) -> list[UploadSession]:
        """Sessions whose ``expires_at`` is before ``now``."""
        ...


class InMemoryUploadSessionStore:
    """Sessions in a dict: for tests and single-process development."""

    def __init__(self) -> None:
        self._sessions: dict[str, str] = {}
        self._lock = threading.Lock()

    def create(self, session: UploadSession) -> None:
        """Store a new session."""
        with self._lock:
            if session.id in self._sessions:
                msg = f"upload session {session.id!r} exists"
                raise KeyError(msg)
            self._sessions[session.id] = session.to_json()

    def get(self, session_id: str) -> UploadSession | None:
        """The session, or ``None``."""
        with self._lock:
            text = self._sessions.get(session_id)
        return UploadSession.from_json(text) if text is not None else None

    def replace(self, session: UploadSession, *, expected_version: int) -> bool:
        """Compare-and-set on the version."""
        with self._lock:
            current = self._sessions.get(session.id)
            if current is None or json.loads(current)["version"] != expected_version:
                return False
            self._sessions[session.id] = session.to_json()
            return True

    def delete(self, session_id: str) -> None:
        """Forget the session."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def expired(self, now: float) -> list[UploadSession]:
        """Sessions past their expiry."""
        with self._lock:
            texts = list(self._sessions.values())
        return [s for s in map(UploadSession.from_json, texts) if s.expires_at < now]


class FileUploadSessionStore:
    """One JSON file per session in a directory, safe across processes on one host.

    Updates take an exclusive ``flock`` on the session's lock file, compare versions,
    and replace the JSON atomically (temporary file, fsync, rename), so a crash never
    leaves a torn session.

    Args:
        directory: Where session files live (created if missing).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileUploadSessionStore({str(self._dir)!r})"

    def _path(self, session_id: str) -> Path:
        if not session_id or not session_id.replace("-", "").replace("_", "").isalnum():
            msg = f"invalid upload session id {session_id!r}"
            raise StorageConfigurationError(msg)
        return self._dir / f"{session_id}.json"

    @contextlib.contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        with (self._dir / f"{session_id}.lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _write(self, path: Path, text: str) -> None:
        fd, temp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            Path(temp).replace(path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(temp).unlink()
            raise

    def create(self, session: UploadSession) -> None:
        """Store a new session."""
        path = self._path(session.id)
        with self._locked(session.id):
            if path.exists():
                msg = f"upload session {session.id!r} exists"
                raise KeyError(msg)
            self._write(path, session.to_json())

    def get(self, session_id: str) -> UploadSession | None:
        """The session, or ``None``."""
        try:
            return UploadSession.from_json(self._path(session_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def replace(self, session: UploadSession, *, expected_version: int) -> bool:
        """Compare-and-set on the version, under the session's file lock."""
        path = self._path(session.id)
        with self._locked(session.id):
            current = self.get(session.id)
            if current is None or current.version != expected_version:
                return False
            self._write(path, session.to_json())
            return True

    def delete(self, session_id: str) -> None:
        """Forget the session."""
        with self._locked(session_id), contextlib.suppress(FileNotFoundError):
            self._path(session_id).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self._dir / f"{session_id}.lock").unlink()

    def expired(self, now: float) -> list[UploadSession]:
        """Sessions past their expiry."""
        found = []
        for path in self._dir.glob("*.json"):
            session = self.get(path.stem)
            if session is not None and session.expires_at < now:
                found.append(session)
        return found
