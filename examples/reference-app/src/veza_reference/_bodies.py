"""Request bodies read with a limit: a body over it is never held whole.

The app's stand-in for the packages' streaming helpers (``veza_storage.aread_limited``,
``WebhookIntake.ahandle_stream``): a declared ``Content-Length`` above the limit is
refused before a byte is read, and a body without one is read until limit + 1 bytes,
then refused. The two routes that read bodies call it in exactly one place each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from veza_reference._errors import ClientError


class BodyTooLargeError(ClientError):
    """413: the body is larger than the route accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def check_declared_length(value: str | int | None, *, limit: int) -> None:
    """Refuse a declared ``Content-Length`` above ``limit`` (before reading anything).

    Raises:
        BodyTooLargeError: Declared above ``limit``.
        ClientError: Not a number (400).
    """
    if value is None:
        return
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ClientError(400, "Content-Length must be a number of bytes")
        value = int(value)
    if value > limit:
        raise BodyTooLargeError(limit)


async def aread_limited(
    stream: AsyncIterator[bytes], *, limit: int, declared_length: str | int | None = None
) -> bytes:
    """Read ``stream`` whole if it holds at most ``limit`` bytes.

    Args:
        stream: The body (``request.stream()``).
        limit: Bytes accepted.
        declared_length: The ``Content-Length`` header, if any: above ``limit``, the body
            is refused before any of it is read.

    Raises:
        BodyTooLargeError: Declared or actual size above ``limit``.
        ClientError: A malformed ``Content-Length`` (400).
    """
    check_declared_length(declared_length, limit=limit)
    parts: list[bytes] = []
    size = 0
    async for part in stream:
        size += len(part)
        if size > limit:
            raise BodyTooLargeError(limit)
        parts.append(part)
    return b"".join(parts)
