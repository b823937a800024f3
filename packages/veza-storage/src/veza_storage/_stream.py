"""Streaming helpers: bounded memory in, file-like objects out."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from veza_storage._compat import positional_deprecated
from veza_storage._types import ObjectInfo

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class RawSource(Protocol):
    """What :class:`ObjectReader` reads from: an open file, or botocore's ``StreamingBody``.

    A ``readinto`` method, when the source has one, is used to fill the caller's buffer
    without a copy.
    """

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...

    def close(self) -> None:
        """Release the file or the connection."""
        ...


BLOCK = 1 << 20  # 1 MiB reads: large enough for throughput, small enough for memory


@runtime_checkable
class Readable(Protocol):
    """Anything with ``read(n)`` returning bytes."""

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes."""
        ...


@runtime_checkable
class Seekable(Protocol):
    """A file-like source that can say and change its position (``tell``/``seek``)."""

    def seekable(self) -> bool:
        """Whether ``seek`` works (a pipe or socket says no)."""
        ...

    def tell(self) -> int:
        """The current position."""
        ...

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset``; returns the new position."""
        ...


Source = bytes | bytearray | memoryview | Readable | Iterable[bytes]


def iter_blocks(source: Source, block: int = BLOCK) -> Iterator[bytes]:
    """Yield the source's bytes in blocks, never holding more than one block."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for offset in range(0, len(view), block):
            yield bytes(view[offset : offset + block])
        return
    if isinstance(source, Readable):
        while True:
            data = source.read(block)
            if not data:
                return
            yield bytes(data)
    for piece in source:
        if piece:
            yield bytes(piece)


class BufferedSource:
    """Fills caller-owned buffers from any source, without allocating per read.

    Sources with ``readinto`` (files, sockets, ``ObjectReader``) are read straight into
    the buffer; other readables and iterables are copied in once. Reusing one buffer
    avoids a fresh multi-megabyte allocation (and its page faults) per block, which is
    most of the cost of streaming through Python.
    """

    def __init__(self, source: Source) -> None:
        self._readinto = getattr(source, "readinto", None)
        if isinstance(source, bytes | bytearray | memoryview):
            self._readinto = io.BytesIO(source).readinto
        # with readinto, blocks are never pulled: an empty iterator, not an Optional
        self._blocks = iter(()) if self._readinto is not None else iter_blocks(source)
        self._leftover = memoryview(b"")

    def fill(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as the source allows; returns the byte count (0 at EOF)."""
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if self._readinto is not None:
                count = self._readinto(view[filled:])
                if not count:
                    break
                filled += count
                continue
            if not self._leftover:
                try:
                    self._leftover = memoryview(next(self._blocks))
                except StopIteration:
                    break
            take = min(len(self._leftover), len(view) - filled)
            view[filled : filled + take] = self._leftover[:take]
            self._leftover = self._leftover[take:]
            filled += take
        return filled


def seekable_size(source: Source) -> int | None:
    """Bytes left in a seekable file-like source, or ``None`` when it cannot tell."""
    if not isinstance(source, Seekable):
        return None
    try:
        if not source.seekable():
            return None
        position = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(position)
    except (AttributeError, OSError, ValueError):
        return None
    return int(end) - int(position)


class ObjectReader(io.RawIOBase):
    """A binary, read-only, streaming view of (part of) an object; a context manager.

    Attributes:
        info: The object's :class:`ObjectInfo`.
        start: Offset of the first byte this reader returns.
        length: Number of bytes this reader returns in total.
    """

    @positional_deprecated
    def __init__(self, raw: RawSource, info: ObjectInfo, *, start: int, length: int) -> None:
        super().__init__()
        self._raw = raw
        self.info = info
        self.start = start
        self.length = length
        self._remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._remaining <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._remaining)
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:  # straight into the caller's buffer: no copy in between
            count = readinto(view[:wanted]) or 0
        else:
            data = self._raw.read(wanted)
            count = len(data)
            view[:count] = data
        self._remaining -= count
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()

    def __repr__(self) -> str:
        return f"ObjectReader(key={self.info.key!r}, start={self.start}, length={self.length})"
