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
