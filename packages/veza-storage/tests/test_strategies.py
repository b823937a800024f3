"""veza_storage.strategies: good keys pass unchanged, hostile ones are refused, ranges resolve."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from veza_storage import (
    ByteRange,
    InvalidKeyError,
    RangeNotSatisfiableError,
    parse_range,
    validate_key,
)
from veza_storage.strategies import byte_ranges, chunked, hostile_keys, object_keys, range_headers
from veza_storage.testing import hostile_keys as corpus


@settings(max_examples=200)
@given(key=object_keys())
def test_drawn_keys_pass_unchanged(key):
    assert validate_key(key) == key


@settings(max_examples=300)
@given(key=hostile_keys())
def test_drawn_hostile_keys_are_refused(key):
    with pytest.raises(InvalidKeyError):
        validate_key(key)


def test_the_public_corpus_is_large_and_distinct():
    keys = corpus()
    assert len(keys) >= 200
    assert len(set(keys)) == len(keys)
    keys.clear()  # a fresh list each call: callers cannot corrupt it
    assert len(corpus()) >= 200


@settings(max_examples=300)
@given(header=range_headers(1000))
def test_range_headers_resolve_inside_the_object_or_are_refused(header):
    try:
        resolved = parse_range(header, 1000)
    except RangeNotSatisfiableError:  # the one typed refusal; anything else fails the test
        return
    if resolved is not None:
        assert 0 <= resolved.start <= resolved.end < 1000


@given(data=st.binary(max_size=300), chunks=st.data())
def test_chunked_joins_back(data, chunks):
    parts = chunks.draw(chunked(data))
    assert b"".join(parts) == data
    assert all(parts)


def test_byte_range_resolves_through_the_entry_point_hook():
    @given(st.from_type(ByteRange))
    def check(byte_range):
        assert 0 <= byte_range.start <= byte_range.end

    check()


@given(byte_range=byte_ranges(50))
def test_byte_ranges_fit(byte_range):
    assert byte_range.end < 50
