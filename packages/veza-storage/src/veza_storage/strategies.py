"""Hypothesis strategies for your own property-based tests of a veza-storage integration.

``pip install "veza-storage[hypothesis]"``, then::

    from veza_storage.strategies import object_keys, hostile_keys, range_headers

``object_keys`` draws keys both backends accept unchanged (any script, spaces, dots
inside names, deep folders); ``hostile_keys`` draws keys every backend must refuse
before touching a file or a bucket (veza's corpus of over 200, plus generated
traversal spliced into good keys); ``range_headers`` draws ``Range`` headers browsers
and players send, valid or not, for an object of a given size.

The package registers :class:`~veza_storage.ByteRange` through hypothesis's
entry-point hook, so ``st.from_type(ByteRange)`` works without importing this module.
"""

from __future__ import annotations

from hypothesis import strategies as st

from veza_storage._errors import InvalidKeyError
from veza_storage._keys import validate_key
from veza_storage._types import ByteRange
from veza_storage.testing import hostile_keys as _corpus

__all__ = ["byte_ranges", "chunked", "hostile_keys", "key_segments", "object_keys", "range_headers"]


def _accepted(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidKeyError:
        return False
    return True


def key_segments() -> st.SearchStrategy[str]:
    """One folder or file name both backends accept."""
    return st.text(
        alphabet=st.characters(categories=("L", "N"), include_characters=" -_.~()+,;=@"),
        min_size=1,
        max_size=24,
    ).filter(_accepted)


def object_keys(*, max_depth: int = 4) -> st.SearchStrategy[str]:
    """Object keys (``tracks/2026/Ünïcödé b.flac``) both backends store unchanged."""
    return st.lists(key_segments(), min_size=1, max_size=max_depth).map("/".join).filter(_accepted)


def hostile_keys() -> st.SearchStrategy[str]:
    """Keys every backend must refuse (``InvalidKeyError``) before any I/O."""
    spliced = st.builds(
        lambda head, bad, tail: f"{head}/{bad}/{tail}",
        key_segments(),
        st.sampled_from(["..", ".", "", "a\\b", "a\x00b", "CON", "C:", "a.", "a "]),
        key_segments(),
    )
    return st.one_of(st.sampled_from(_corpus()), spliced)


def byte_ranges(size: int = 1 << 20) -> st.SearchStrategy[ByteRange]:
    """Satisfiable inclusive ranges of an object of ``size`` bytes."""
    return st.integers(min_value=0, max_value=size - 1).flatmap(
        lambda start: st.integers(min_value=start, max_value=size - 1).map(
            lambda end: ByteRange(start, end)
        )
    )


def range_headers(size: int = 1 << 20) -> st.SearchStrategy[str]:
    """``Range`` header values for an object of ``size`` bytes, the odd ones included.

    Open ranges (``bytes=100-``), suffixes (``bytes=-500``), past the end, reversed,
    multiple ranges, other units and garbage: what players and scanners send.
    """
    offset = st.integers(min_value=0, max_value=size * 2)
    return st.one_of(
        byte_ranges(size).map(lambda r: f"bytes={r.start}-{r.end}"),
        offset.map(lambda s: f"bytes={s}-"),
        offset.map(lambda n: f"bytes=-{n}"),
        st.tuples(offset, offset).map(lambda p: f"bytes={p[0]}-{p[1]}"),
        st.tuples(offset, offset).map(lambda p: f"bytes=0-{p[0]},{p[1]}-"),
        st.sampled_from(["items=0-1", "bytes=", "bytes=a-b", "bytes 0-1", "", "bytes=--1"]),
    )


def chunked(data: bytes, *, min_chunk: int = 1) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into chunks at drawn boundaries (for streaming and resumable uploads)."""
    cuts = st.lists(
        st.integers(min_value=min_chunk, max_value=max(min_chunk, len(data))), max_size=16
    )

    def cut(sizes: list[int]) -> list[bytes]:
        chunks, offset = [], 0
        for size in sizes:
            if offset >= len(data):
                break
            chunks.append(data[offset : offset + size])
            offset += size
        if offset < len(data):
            chunks.append(data[offset:])
        return chunks

    return cuts.map(cut)


def _hypothesis_setup_hook() -> None:
    """Hypothesis's entry-point hook: ``st.from_type`` for veza-storage's value types."""
    st.register_type_strategy(ByteRange, byte_ranges())
