"""The veza-storage error hierarchy: one base, each error also the built-in that fits."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error veza-storage raises on purpose."""


class StorageConfigurationError(StorageError, ValueError):
    """A configuration value is invalid; the message names the variable or parameter."""


class InvalidKeyError(StorageError, ValueError):
    """A key is outside the key space both backends share (see ``validate_key``)."""


class InvalidMetadataError(StorageError, ValueError):
    """User metadata is not portable across backends (names, ASCII values, 2 KiB)."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """No object has this key."""


class ObjectExistsError(StorageError, FileExistsError):
    """``if_absent=True`` and an object already has this key."""


class RangeNotSatisfiableError(StorageError, ValueError):
    """A byte range starts at or after the end of the object (HTTP 416).

    Attributes:
        size: The object's size, for ``Content-Range: bytes */size``.
    """

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for an object of {size} bytes")
        self.size = size


class ChecksumMismatchError(StorageError, ValueError):
    """Bytes do not hash to the SHA-256 the caller said they would."""


class SignatureError(StorageError, ValueError):
    """A locally signed URL is invalid or expired.

    Attributes:
        reason: ``expired``, ``bad_signature`` or ``malformed``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class UploadError(StorageError):
    """Base of resumable-upload errors."""


class UploadNotFoundError(UploadError, KeyError):
    """No upload session has this id (never existed, completed, aborted or expired)."""


class ChunkError(UploadError, ValueError):
    """A chunk's index, size or checksum does not fit its upload session."""


class UploadIncompleteError(UploadError, ValueError):
    """``complete`` was called before every chunk arrived, or the object does not match."""


class ChunkConflictError(ChunkError):
    """A chunk index already holds different bytes: received chunks are immutable (HTTP 409).

    Re-sending the same bytes is an idempotent success; anything else for that index is
    this error, so an upload can never be rewritten under its recorded checksums.

    Attributes:
        index: The chunk index.
    """

    def __init__(self, index: int) -> None:
        super().__init__(f"chunk {index} was already received with different bytes")
        self.index = index


class ChunkTooLargeError(ChunkError):
    """A chunk body is larger than its limit; reading stopped at ``limit + 1`` bytes (HTTP 413).

    Attributes:
        limit: The largest accepted body, in bytes.
        received: Bytes read before refusing (at most ``limit + 1``; 0 when refused on the
            declared length alone).
        declared_length: The ``Content-Length`` the caller passed, if any.
    """

    def __init__(self, *, limit: int, received: int, declared_length: int | None) -> None:
        declared = "" if declared_length is None else f", {declared_length} declared"
        super().__init__(f"chunk body over {limit} bytes ({received} read{declared})")
        self.limit = limit
        self.received = received
        self.declared_length = declared_length
