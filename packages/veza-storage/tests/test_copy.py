"""Both copy paths store the exact bytes and report their exact SHA-256."""

import hashlib
import io
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from veza_storage._copy import copy_into


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
