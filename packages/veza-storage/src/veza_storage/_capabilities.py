"""Optional storage capabilities as protocols: what a backend offers beyond ``Storage``.

``ResumableUploads`` needs somewhere to stage chunks that is not yet the object: a
sparse file on local disk, a multipart upload on S3. A backend says how by offering
``upload_staging()``; the built-in backends do, and so can any third-party backend (a
GCS or Azure adapter, an in-memory test double) without veza-storage knowing its
class. ``ResumableUploads`` never asks which class a storage is, only whether it has
the capability.

The staging object is driven by ``ResumableUploads``, which owns the session record and
its compare-and-set updates; the staging owns the bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from veza_storage._sessions import UploadSession
from veza_storage._types import ObjectInfo

Part = tuple[int, dict[str, str]]
"""A part number and the state to record for it (S3: ``ETag`` and ``ChecksumSHA256``)."""

SessionUpdate = Callable[[Callable[[UploadSession], None]], UploadSession]
"""Applies a change to the stored session with compare-and-set; returns the new session."""


@runtime_checkable
class UploadStaging(Protocol):
    """Where chunks of one backend's uploads wait until ``complete`` publishes them.

    Every method may be called from several threads (and, for a shared store, several
    processes) at once; ``chunk_lock`` is what serialises writes to one session.
    """

    def begin(self, session: UploadSession) -> dict[str, Any]:
        """Prepare staging for a new session; returns its initial ``session.backend``."""
        ...

    def chunk_lock(self, session: UploadSession) -> AbstractContextManager[None]:
        """Held while a chunk is written and recorded, and while ``complete`` runs.

        ``ResumableUploads`` re-reads the session inside it, so a chunk index is only
        ever written while it is unrecorded. A backend where no lock can span its
        clients yields at once and verifies in ``complete`` instead.
        """
        ...

    def write_chunk(self, session: UploadSession, index: int, data: bytes) -> Part | None:
        """Stage chunk ``index`` (its size is checked); returns a part to record, if any."""
        ...

    def ready_parts(self, session: UploadSession) -> tuple[list[Part], list[int]]:
        """Parts that became complete (to record) and chunk indices found lost."""
        ...

    def complete(self, session: UploadSession, update: SessionUpdate) -> ObjectInfo:
        """Hash the assembled bytes, check them (``check_whole``) and publish atomically.

        Raises:
            LostChunksError: Staged bytes differ from recorded chunks (send again).
            UploadIncompleteError, ChecksumMismatchError: The object does not match.
        """
        ...

    def cleanup(self, session: UploadSession) -> None:
        """Remove what is staged for a completed session."""
        ...

    def abort(self, session: UploadSession) -> None:
        """Remove everything staged for an abandoned session."""
        ...

    def sweep_orphans(self, older_than: float, known: Callable[[str], bool]) -> int:
        """Remove staged data older than ``older_than`` whose session id is not ``known``."""
        ...


@runtime_checkable
class SupportsUploadStaging(Protocol):
    """A storage that can stage resumable uploads (see :class:`UploadStaging`)."""

    def upload_staging(self) -> UploadStaging:
        """The staging area of this storage."""
        ...


@runtime_checkable
class ComparesStagedChunks(Protocol):
    """An :class:`UploadStaging` that checks a resent chunk against its staged bytes.

    Optional. Without it a chunk is recorded by its SHA-256, computed as it arrives,
    and a resend is compared with that digest. A staging that can read a chunk back
    cheaply (local disk) records a cheaper fingerprint instead and settles resends by
    comparing the bytes themselves: a received chunk stays immutable either way, and
    the object's SHA-256 is still computed from the assembled bytes at ``complete``.
    """

    def chunk_record(self, data: bytes) -> str:
        """What to record for a chunk received with these bytes (it runs while they are written)."""
        ...

    def compare_chunk(self, session: UploadSession, index: int, data: bytes) -> bool | None:
        """Called under the chunk lock for an index already recorded.

        Returns:
            ``True``: the staged bytes are exactly ``data`` (an idempotent resend);
            ``False``: ``data`` differs from what was received (a conflict); ``None``:
            ``data`` is what was received but the staged bytes were lost (write again).
        """
        ...
