"""The ``Storage`` protocol: what both backends implement, with the same semantics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

from veza_storage._stream import ObjectReader, Source
from veza_storage._types import ByteRange, ObjectInfo


@runtime_checkable
class Storage(Protocol):
    """One object-storage API over local disk and S3-compatible services.

    Every method validates keys with the same validator, so a key that works on one
    backend works on the other. Writes are atomic: an object is either absent or
    complete, never partial.
    """

    def put(
        self,
        key: str,
        stream: Source,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Store ``stream`` under ``key``, streaming; returns the stored object's info."""
        ...

    def open(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectReader:
        """A streaming reader of the object (or of ``byte_range`` of it)."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """The object's info; raises ``ObjectNotFoundError``."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        ...

    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing key is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in UTF-8 byte order."""
        ...

    def copy(self, source_key: str, destination_key: str, *, if_absent: bool = False) -> ObjectInfo:
        """Copy an object within the backend."""
        ...

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A URL that lets anyone holding it GET the object until it expires."""
        ...
