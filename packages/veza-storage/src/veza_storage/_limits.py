"""Reading a request body with a hard size limit, framework-free, sync and async.

A web framework's ``await request.body()`` buffers whatever the client sends before
anyone can look at its size. These helpers consume the body's byte iterator instead
(Starlette's ``request.stream()``, an ASGI receive loop, a WSGI input iterator), keep at
most ``limit + 1`` bytes, and refuse as soon as that is exceeded, so a hostile client
costs the server at most one chunk's worth of memory. A declared ``Content-Length``
above the limit is refused before the first byte is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable

from veza_storage._errors import ChunkTooLargeError


def _check_declared(limit: int, declared_length: int | None) -> None:
    if limit < 0:
        msg = f"limit must not be negative, got {limit}"
        raise ValueError(msg)
    if declared_length is not None and declared_length > limit:
        raise ChunkTooLargeError(limit=limit, received=0, declared_length=declared_length)


def _take(body: bytearray, piece: bytes, limit: int, declared_length: int | None) -> None:
    room = limit + 1 - len(body)
    body += piece[:room]
    if len(body) > limit:
        raise ChunkTooLargeError(limit=limit, received=len(body), declared_length=declared_length)


def read_limited(
    chunks: Iterable[bytes], *, limit: int, declared_length: int | None = None
) -> bytes:
    """Join ``chunks`` into bytes, refusing bodies over ``limit`` without buffering them.

    Args:
        chunks: The body as a byte iterator (pieces of any size).
        limit: The largest accepted body, in bytes.
        declared_length: The request's ``Content-Length``, if it sent one.

    Returns:
        The whole body.

    Raises:
        ChunkTooLargeError: ``declared_length`` is over ``limit`` (nothing is read), or
            the body is (reading stops at ``limit + 1`` bytes).
    """
    _check_declared(limit, declared_length)
    body = bytearray()
    for piece in chunks:
        _take(body, piece, limit, declared_length)
    return bytes(body)


async def aread_limited(
    chunks: AsyncIterable[bytes], *, limit: int, declared_length: int | None = None
) -> bytes:
    """The async twin of :func:`read_limited` (same arguments, same errors)."""
    _check_declared(limit, declared_length)
    body = bytearray()
    async for piece in chunks:
        _take(body, piece, limit, declared_length)
    return bytes(body)
