"""Both copy paths store the exact bytes and report their exact SHA-256."""

import hashlib
import io
import os
import random
import tempfile

from hypothesis import given, settings, strategies as st

from veza_storage._copy import BUFFER, DIRECT, copy_into


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200_000), offset=st.integers(0, 50), as_file=st.booleans())
def test_copy_into_matches_hashlib(data, offset, as_file):
    with tempfile.TemporaryDirectory() as directory:
        out_path = os.path.join(directory, "out")
        with open(out_path, "w+b") as out:
            if as_file:  # a regular file: the kernel-copy path
                source_path = os.path.join(directory, "in")
                with open(source_path, "wb") as f:
                    f.write(os.urandom(offset) + data)
                with open(source_path, "rb") as source:
                    source.seek(offset)
                    sha256, size = copy_into(source, out.fileno())
                    assert source.tell() == offset + len(data)
            else:  # any other stream: the pipelined path
                sha256, size = copy_into(io.BytesIO(data), out.fileno())
        with open(out_path, "rb") as written:
            assert written.read() == data
    assert size == len(data)
    assert sha256 == hashlib.sha256(data).hexdigest()


_SIZES = st.sampled_from(
    [0, 1, 1000, DIRECT - 1, DIRECT, DIRECT + 1, BUFFER - 1, BUFFER, BUFFER + 7, 2 * BUFFER + 3]
)


def _stored(source):
    with tempfile.TemporaryDirectory() as directory:
        out_path = os.path.join(directory, "out")
        with open(out_path, "w+b") as out:
            sha256, size = copy_into(source, out.fileno())
        with open(out_path, "rb") as written:
            return written.read(), sha256, size


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(_SIZES, max_size=6),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
    seed=st.integers(0, 2**32),
)
def test_iterables_of_small_and_large_pieces_are_stored_exactly(sizes, kind, seed):
    """Small pieces are gathered into buffers, large ones written where they are: same bytes."""
    rng = random.Random(seed)
    pieces = [rng.randbytes(size) for size in sizes]
    data = b"".join(pieces)
    written, sha256, size = _stored(iter([kind(piece) for piece in pieces]))
    assert written == data
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))


@settings(max_examples=10, deadline=None)
@given(size=_SIZES, kind=st.sampled_from([bytes, bytearray, memoryview]), seed=st.integers(0, 99))
def test_in_memory_sources_are_stored_exactly(size, kind, seed):
    data = random.Random(seed).randbytes(size)
    written, sha256, stored = _stored(kind(data))
    assert (written, sha256, stored) == (data, hashlib.sha256(data).hexdigest(), size)


def test_a_generator_reusing_its_buffer_cannot_change_what_was_stored():
    """A mutable piece is copied before the writer thread sees it: the producer may reuse it."""
    buffer = bytearray(DIRECT * 2)
    expected = []

    def reused():
        for fill in range(1, 9):
            buffer[:] = bytes([fill]) * len(buffer)
            expected.append(bytes(buffer))
            yield buffer  # overwritten as soon as the next piece is asked for

    written, sha256, _ = _stored(reused())
    assert written == b"".join(expected)
    assert sha256 == hashlib.sha256(written).hexdigest()
