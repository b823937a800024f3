"""RFC 9110 byte ranges, as a framework-free helper."""

import pytest
from hypothesis import given, strategies as st

from veza_storage import ByteRange, RangeNotSatisfiableError, answer_range, parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 1000, ByteRange(0, 499)),
        ("bytes=500-", 1000, ByteRange(500, 999)),
        ("bytes=-200", 1000, ByteRange(800, 999)),
        ("bytes=-5000", 1000, ByteRange(0, 999)),  # suffix longer than the object
        ("bytes=900-5000", 1000, ByteRange(900, 999)),  # end clipped
        ("bytes=0-0", 1, ByteRange(0, 0)),
        ("Bytes = 10 - 20", 100, ByteRange(10, 20)),
        (None, 1000, None),
        ("", 1000, None),
        ("items=0-5", 1000, None),  # another unit: ignore
        ("bytes=0-5,10-20", 1000, None),  # several ranges: serve everything
        ("bytes=abc", 1000, None),
        ("bytes=20-10", 1000, None),  # last < first: invalid, ignore
        ("bytes=-", 1000, None),
    ],
)
def test_parse(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=1000-1005", 1000),
        ("bytes=-0", 1000),
        ("bytes=0-", 0),
        ("bytes=-1", 0),
    ],
)
def test_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiableError) as info:
        parse_range(header, size)
    assert info.value.size == size


def test_answers():
    assert answer_range(None, 10).status == 200
    partial = answer_range("bytes=2-5", 10)
    assert (
        partial.status,
        partial.headers["Content-Range"],
        partial.headers["Content-Length"],
    ) == (206, "bytes 2-5/10", "4")
    refused = answer_range("bytes=10-", 10)
    assert (refused.status, refused.headers["Content-Range"]) == (416, "bytes */10")


@given(size=st.integers(1, 10**12), first=st.integers(0, 10**12), last=st.integers(0, 10**12))
def test_resolved_ranges_always_lie_inside_the_object(size, first, last):
    try:
        result = parse_range(f"bytes={first}-{last}", size)
    except RangeNotSatisfiableError:
        assert first >= size
        return
    if result is None:
        assert last < first
        return
    assert 0 <= result.start <= result.end < size
    assert result.length == min(last, size - 1) - first + 1
