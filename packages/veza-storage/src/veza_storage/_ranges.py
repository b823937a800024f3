"""HTTP ``Range`` requests (RFC 9110 section 14), framework-free.

``parse_range`` turns a ``Range`` header into a :class:`ByteRange` for an object of a
known size: ``bytes=0-499``, ``bytes=500-`` (to the end), ``bytes=-500`` (the last 500;
a suffix longer than the object means the whole object). A header the server may ignore
(another unit, bad syntax, several ranges) gives ``None``: answer 200 with the whole
object. A range starting at or after the end raises :class:`RangeNotSatisfiableError`:
answer 416 with ``Content-Range: bytes */size``.
"""

from __future__ import annotations

import re

import attrs

from veza_storage._errors import RangeNotSatisfiableError
from veza_storage._types import ByteRange

_SPEC = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Resolve a ``Range`` header against an object of ``size`` bytes.

    Returns:
        The range to serve, or ``None`` to serve the whole object (no header, or one
        the server may ignore: another unit, invalid syntax, multiple ranges).

    Raises:
        RangeNotSatisfiableError: The range is syntactically valid but unsatisfiable.
    """
    if not header:
        return None
    match = _SPEC.match(header)
    if match is None:  # another unit, several ranges, or garbage: may be ignored
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid range-spec: ignore the header
    if start >= size:
        raise RangeNotSatisfiableError(size)
    return ByteRange(start, min(end, size - 1))


@attrs.frozen
class RangeAnswer:
    """How to answer a (possibly ranged) GET.

    Attributes:
        status: 200, 206 or 416.
        headers: ``Content-Length``, ``Content-Range``, ``Accept-Ranges``.
        byte_range: What to read (``None``: the whole object, or nothing for 416).
    """

    status: int
    headers: dict[str, str]
    byte_range: ByteRange | None


def answer_range(header: str | None, size: int) -> RangeAnswer:
    """Decide status and headers for a GET of an object of ``size`` bytes."""
    try:
        wanted = parse_range(header, size)
    except RangeNotSatisfiableError:
        return RangeAnswer(
            416,
            {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes", "Content-Length": "0"},
            None,
        )
    if wanted is None:
        return RangeAnswer(200, {"Accept-Ranges": "bytes", "Content-Length": str(size)}, None)
    return RangeAnswer(
        206,
        {
            "Accept-Ranges": "bytes",
            "Content-Range": wanted.content_range(size),
            "Content-Length": str(wanted.length),
        },
        wanted,
    )
