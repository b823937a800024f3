"""What both staging backends of resumable uploads share: verdicts on assembled bytes."""

from __future__ import annotations

from collections.abc import Callable

from veza_storage._errors import ChecksumMismatchError, UploadError, UploadIncompleteError
from veza_storage._sessions import UploadSession

STAGING = ".veza-uploads"


class LostChunksError(UploadError):
    """Staged bytes differ from the recorded chunks: the client must send them again.

    Raised by an :class:`UploadStaging`'s ``complete``; ``ResumableUploads`` forgets
    those chunks and answers with an ``UploadIncompleteError`` naming them.

    Attributes:
        indices: The chunk indices to send again.
    """

    def __init__(self, indices: list[int]) -> None:
        super().__init__(f"lost chunks {indices[:10]}")
        self.indices = indices


def assembled(sha256: str) -> Callable[[UploadSession], None]:
    def change(session: UploadSession) -> None:
        session.state = "assembled"
        session.backend["sha256"] = sha256

    return change


def check_whole(session: UploadSession, size: int, sha256: str) -> None:
    if size != session.total_size:
        msg = f"assembled {size} bytes, expected {session.total_size}"
        raise UploadIncompleteError(msg)
    if session.sha256 is not None and sha256 != session.sha256:
        msg = "the assembled object does not match the upload's SHA-256; the key is untouched"
        raise ChecksumMismatchError(msg)
