"""Streaming body limits: read at most ``limit`` bytes from an iterator, never more.

Web frameworks hand bodies over as iterators of chunks (Starlette's
``request.stream()``, WSGI's ``wsgi.input`` read in blocks). Calling ``body()`` first
and checking the size after lets one request grow the server by its whole size. These
helpers stop pulling chunks as soon as more than ``limit`` bytes arrived, and refuse a
declared ``Content-Length`` over the limit before pulling anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Iterable

from veza_payments._errors import BodyTooLargeError, PaymentsConfigurationError
from veza_payments._ids import is_count

HEAD_BYTES = 1024
"""How many first bytes a :class:`BodyTooLargeError` keeps (for the webhook log)."""


def _check(limit: int, declared_length: int | None) -> None:
    if not is_count(limit) or limit == 0:
        msg = f"limit must be a positive int of bytes, got {limit!r}"
        raise PaymentsConfigurationError(msg)
    if declared_length is not None and declared_length > limit:
        raise BodyTooLargeError(limit=limit, received=0, declared_length=declared_length, head=b"")


def read_limited(
    chunks: Iterable[bytes], *, limit: int, declared_length: int | None = None
) -> bytes:
    """The whole body, if it is at most ``limit`` bytes.

    Args:
        chunks: The body as chunks of bytes, in order.
        limit: Largest body accepted, in bytes.
        declared_length: The request's ``Content-Length``, when it sent one: above
            ``limit``, the body is refused before a single chunk is pulled.

    Returns:
        The body.

    Raises:
        BodyTooLargeError: More than ``limit`` bytes arrived (pulling stopped at the
            chunk that crossed ``limit``) or were declared.
    """
    body = _Body(limit, declared_length)
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            body.add(chunk)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None and body.over:
            with contextlib.suppress(Exception):
                close()
    return body.value()


async def aread_limited(
    chunks: AsyncIterable[bytes], *, limit: int, declared_length: int | None = None
) -> bytes:
    """The asyncio twin of :func:`read_limited` (same arguments, same refusals)."""
    body = _Body(limit, declared_length)
    iterator = aiter(chunks)
    try:
        async for chunk in iterator:
            body.add(chunk)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None and body.over:
            with contextlib.suppress(Exception):
                await aclose()
    return body.value()


class _Body:
    """What the sync and async readers share: keep at most ``limit + 1`` bytes, then refuse."""

    def __init__(self, limit: int, declared: int | None) -> None:
        _check(limit, declared)
        self.limit = limit
        self.declared = declared
        self.received = 0
        self.buffer = bytearray()

    @property
    def over(self) -> bool:
        return len(self.buffer) > self.limit

    def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.buffer += chunk[: self.limit + 1 - len(self.buffer)]
        if self.over:
            raise BodyTooLargeError(
                limit=self.limit,
                received=self.received,
                declared_length=self.declared,
                head=bytes(self.buffer[:HEAD_BYTES]),
            )

    def value(self) -> bytes:
        return bytes(self.buffer)


def declared_length(value: str | None) -> int | None:
    """A ``Content-Length`` header as an int (``None`` when absent or not a number)."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() and text.isascii() else None
