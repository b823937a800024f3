"""Value types shared by both backends."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import cast

import attrs

from veza_storage._errors import InvalidMetadataError

MAX_METADATA_BYTES = 2048  # S3's limit for user metadata, applied to both backends
_META_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_META_VALUE = re.compile(r"^[\x20-\x7e]*$")


@attrs.frozen
class ObjectInfo:
    """What a backend knows about a stored object.

    Attributes:
        key: The object's key.
        size: Size in bytes.
        content_type: MIME type, when known (listings may not carry it).
        sha256: Hex SHA-256 of the whole object when it was recorded at write time.
        last_modified: When it was written (timezone-aware UTC).
        metadata: User metadata.
        etag: The backend's entity tag, when it has one.
    """

    key: str
    size: int
    content_type: str | None = None
    sha256: str | None = None
    last_modified: datetime | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    etag: str | None = None


@attrs.frozen
class ByteRange:
    """An inclusive byte range resolved against an object's size (RFC 9110).

    Attributes:
        start: First byte offset.
        end: Last byte offset (inclusive).
    """

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` header value for a 206 answer."""
        return f"bytes {self.start}-{self.end}/{size}"


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Check user metadata is portable: lower-case names, printable ASCII, 2 KiB in all.

    S3 lower-cases names and mangles non-ASCII values; refusing them keeps both backends
    returning exactly what was stored.

    Raises:
        InvalidMetadataError: The offending name and why.
    """
    clean: dict[str, str] = {}
    total = 0
    for name, value in (metadata or {}).items():
        if not _META_NAME.match(str(name)):
            msg = f"metadata name {name!r}: use 1-64 of a-z, 0-9, '-' and '_' (lower case)"
            raise InvalidMetadataError(msg)
        if not isinstance(cast("object", value), str) or not _META_VALUE.match(value):
            msg = f"metadata {name!r}: values must be printable ASCII"
            raise InvalidMetadataError(msg)
        if name == "sha256":
            msg = "metadata name 'sha256' is reserved for the object's checksum"
            raise InvalidMetadataError(msg)
        total += len(name) + len(value)
        clean[name] = value
    if total > MAX_METADATA_BYTES:
        msg = f"user metadata is {total} bytes; the limit is {MAX_METADATA_BYTES}"
        raise InvalidMetadataError(msg)
    return clean
