"""Async storage: any :class:`Storage` (and resumable uploads) awaited off the event loop.

Why a thread offload and not a native async client: measured side by side in
``bench/storage_async.py`` and written up in ``docs/storage/guide.md`` ("On an event
loop"). In short: local disk has no native async file I/O in the standard library
(``aiofiles`` is itself a thread pool), and for S3 the native client (aiobotocore) pins
botocore to a three-patch window that excludes the boto3 veza-storage supports, while
the offload keeps the event loop's lag as low, shares every line of behaviour (atomic
writes, key validation, multipart, fsync) with the sync backends, and works over any
third-party :class:`Storage`.

Each call runs the sync method in a worker thread (``asyncio.to_thread``); a body given
as an async iterable (Starlette's ``request.stream()``) is pulled from the loop chunk by
chunk by the thread writing it, so it is never held whole; a reader's ``read`` runs in a
thread per call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Self, TypeVar

from veza_storage._stream import ObjectReader, Source

if TYPE_CHECKING:
    from veza_storage._protocol import Storage
    from veza_storage._types import ByteRange, ObjectInfo
    from veza_storage._uploads import ResumableUploads, UploadStatus

T = TypeVar("T")

READ_CHUNK = 1024 * 1024
"""Bytes per read when an object is iterated (one thread hop per chunk)."""

LIST_BATCH = 1000
"""Listing entries fetched per thread hop (an S3 page holds 1,000 keys)."""


async def _offload(fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def _pulled(chunks: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    """A sync iterator for the worker thread, each chunk awaited on ``loop``."""
    iterator = aiter(chunks)

    async def pull() -> bytes:
        return await anext(iterator)

    while True:
        try:
            chunk = asyncio.run_coroutine_threadsafe(pull(), loop).result()
        except StopAsyncIteration:
            return
        yield chunk


class AsyncObjectReader:
    """An open object read from the event loop (``await reader.read(n)``, ``async for``).

    Attributes:
        info: The object's :class:`ObjectInfo`.
    """

    def __init__(self, reader: ObjectReader, *, chunk_size: int = READ_CHUNK) -> None:
        self._reader = reader
        self._chunk_size = chunk_size
        self.info: ObjectInfo = reader.info

    def __repr__(self) -> str:
        return f"Async{self._reader!r}"

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that remains when negative); ``b""`` at the end."""
        return await _offload(self._reader.read, size)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(self._chunk_size):
            yield chunk

    async def aclose(self) -> None:
        """Close the underlying reader (a file or an HTTP body)."""
        await _offload(self._reader.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncStorage:
    """The asyncio face of any :class:`Storage`: the same methods, awaited.

    Args:
        storage: ``LocalStorage``, ``S3Storage``, ``TracedStorage`` or any third-party
            :class:`Storage`; its methods run in worker threads.
        chunk_size: Bytes per thread hop when an opened object is iterated.
    """

    def __init__(self, storage: Storage, *, chunk_size: int = READ_CHUNK) -> None:
        self.storage = storage
        self._chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"AsyncStorage({self.storage!r})"

    async def put(
        self,
        key: str,
        stream: Source | AsyncIterable[bytes],
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """:meth:`Storage.put`; ``stream`` may also be an async iterable of chunks."""
        source: Source
        if isinstance(stream, AsyncIterable):
            source = _pulled(stream, asyncio.get_running_loop())
        else:
            source = stream
        return await _offload(
            self.storage.put,
            key,
            source,
            content_type=content_type,
            metadata=metadata,
            if_absent=if_absent,
        )

    async def get(self, key: str, *, byte_range: ByteRange | None = None) -> bytes:
        """The whole object (or ``byte_range`` of it) as bytes: for small objects."""

        def read() -> bytes:
            with self.storage.open(key, byte_range=byte_range) as reader:
                return reader.read()

        return await _offload(read)

    async def open(self, key: str, *, byte_range: ByteRange | None = None) -> AsyncObjectReader:
        """:meth:`Storage.open`: a streaming reader, each read in a worker thread."""
        reader = await _offload(self.storage.open, key, byte_range=byte_range)
        return AsyncObjectReader(reader, chunk_size=self._chunk_size)

    async def stat(self, key: str) -> ObjectInfo:
        """:meth:`Storage.stat`; raises ``ObjectNotFoundError``."""
        return await _offload(self.storage.stat, key)

    async def exists(self, key: str) -> bool:
        """:meth:`Storage.exists`."""
        return await _offload(self.storage.exists, key)

    async def delete(self, key: str) -> None:
        """:meth:`Storage.delete` (a missing key is not an error)."""
        await _offload(self.storage.delete, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """:meth:`Storage.list`, fetched ``LIST_BATCH`` entries per thread hop."""
        entries = await _offload(self.storage.list, prefix)
        while batch := await _offload(lambda: list(islice(entries, LIST_BATCH))):
            for info in batch:
                yield info

    async def copy(
        self, source_key: str, destination_key: str, *, if_absent: bool = False
    ) -> ObjectInfo:
        """:meth:`Storage.copy`."""
        return await _offload(self.storage.copy, source_key, destination_key, if_absent=if_absent)

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """:meth:`Storage.presign_get` (S3 may resolve credentials, which is I/O)."""
        return await _offload(
            self.storage.presign_get,
            key,
            expires_in=expires_in,
            download_filename=download_filename,
            content_type=content_type,
        )


class AsyncResumableUploads:
    """:class:`ResumableUploads` awaited: session store and staging writes off the loop.

    Args:
        uploads: The sync uploads object (its storage, session store and TTL).
    """

    def __init__(self, uploads: ResumableUploads) -> None:
        self.uploads = uploads

    def __repr__(self) -> str:
        return f"AsyncResumableUploads({self.uploads!r})"

    async def begin(
        self,
        key: str,
        total_size: int,
        *,
        chunk_size: int,
        content_type: str,
        sha256: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """:meth:`ResumableUploads.begin`; returns the session id."""
        return await _offload(
            self.uploads.begin,
            key,
            total_size,
            chunk_size=chunk_size,
            content_type=content_type,
            sha256=sha256,
            metadata=metadata,
        )

    async def put_chunk(
        self, session_id: str, index: int, *, data: bytes, sha256: str | None = None
    ) -> UploadStatus:
        """:meth:`ResumableUploads.put_chunk`."""
        return await _offload(self.uploads.put_chunk, session_id, index, data=data, sha256=sha256)

    async def status(self, session_id: str) -> UploadStatus:
        """:meth:`ResumableUploads.status`."""
        return await _offload(self.uploads.status, session_id)

    async def complete(self, session_id: str) -> ObjectInfo:
        """:meth:`ResumableUploads.complete`: assemble and store the object."""
        return await _offload(self.uploads.complete, session_id)

    async def abort(self, session_id: str) -> None:
        """:meth:`ResumableUploads.abort`."""
        await _offload(self.uploads.abort, session_id)
