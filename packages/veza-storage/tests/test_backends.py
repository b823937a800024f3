"""The Storage API, one suite, both backends (local disk and S3 over real HTTP)."""

import hashlib
import io
import os

import pytest

from veza_storage import (
    ByteRange,
    InvalidMetadataError,
    ObjectExistsError,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
)

BODY = bytes(range(256)) * 40  # 10 KiB
MiB = 1024 * 1024


def slow_stream(data: bytes, size: int):
    """A generator source: the backend never sees the whole object at once."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def test_put_then_read_back(storage):
    info = storage.put(
        "tracks/a.mp3", BODY, content_type="audio/mpeg", metadata={"artist-id": "42"}
    )
    assert info.size == len(BODY)
    assert info.sha256 == hashlib.sha256(BODY).hexdigest()
    assert info.content_type == "audio/mpeg"
    assert info.metadata == {"artist-id": "42"}
    with storage.open("tracks/a.mp3") as reader:
        assert reader.read() == BODY
    assert storage.stat("tracks/a.mp3") == info
    assert storage.exists("tracks/a.mp3")


@pytest.mark.parametrize(
    "make",
    [
        lambda: BODY,
        lambda: io.BytesIO(BODY),
        lambda: iter([BODY[:100], b"", BODY[100:]]),
        lambda: bytearray(BODY),
        lambda: memoryview(BODY),
    ],
    ids=["bytes", "file", "iterable", "bytearray", "memoryview"],
)
def test_any_byte_source_streams(storage, make):
    storage.put("k", make(), content_type="application/octet-stream")
    with storage.open("k") as reader:
        assert reader.read() == BODY


def test_empty_object(storage):
    info = storage.put("empty", b"", content_type="text/plain")
    assert info.size == 0
    with storage.open("empty") as reader:
        assert reader.read() == b""


def test_large_object_goes_multipart_and_keeps_its_checksum(storage):
    data = os.urandom(12 * MiB + 123)  # above the 5 MiB test threshold on S3
    info = storage.put("big.bin", slow_stream(data, 1 * MiB), content_type="application/x")
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    with storage.open("big.bin") as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == info.sha256


def test_overwrite_replaces_atomically(storage):
    storage.put("k", b"one", content_type="text/plain")
    storage.put("k", b"two", content_type="text/plain")
    with storage.open("k") as reader:
        assert reader.read() == b"two"


def test_if_absent_refuses_an_existing_key(storage):
    storage.put("k", b"one", content_type="text/plain", if_absent=True)
    with pytest.raises(ObjectExistsError):
        storage.put("k", b"two", content_type="text/plain", if_absent=True)
    with storage.open("k") as reader:
        assert reader.read() == b"one"


def test_if_absent_on_a_multipart_upload(storage):
    storage.put("k", b"one", content_type="text/plain")
    with pytest.raises(ObjectExistsError):
        storage.put("k", os.urandom(6 * MiB), content_type="x/y", if_absent=True)
    with storage.open("k") as reader:
        assert reader.read() == b"one"


@pytest.mark.parametrize(
    ("byte_range", "expected"),
    [
        (ByteRange(0, 9), BODY[:10]),
        (ByteRange(100, 199), BODY[100:200]),
        (ByteRange(len(BODY) - 5, len(BODY) - 1), BODY[-5:]),
        (ByteRange(len(BODY) - 5, len(BODY) + 500), BODY[-5:]),
    ],
)
def test_range_reads(storage, byte_range, expected):
    storage.put("k", BODY, content_type="application/octet-stream")
    with storage.open("k", byte_range=byte_range) as reader:
        assert reader.read() == expected
        assert reader.info.size == len(BODY)
        assert reader.start == byte_range.start
        assert reader.length == len(expected)


def test_range_past_the_end_is_not_satisfiable(storage):
    storage.put("k", BODY, content_type="application/octet-stream")
    with pytest.raises(RangeNotSatisfiableError) as info:
        storage.open("k", byte_range=ByteRange(len(BODY), len(BODY) + 10))
    assert info.value.size == len(BODY)


def test_reader_is_a_streaming_file_object(storage):
    storage.put("k", BODY, content_type="application/octet-stream")
    reader = storage.open("k")
    assert reader.readable()
    assert reader.read(10) == BODY[:10]
    assert b"".join(iter(lambda: reader.read(1000), b"")) == BODY[10:]
    reader.close()
    assert reader.closed


def test_missing_objects(storage):
    with pytest.raises(ObjectNotFoundError):
        storage.stat("nope")
    with pytest.raises(ObjectNotFoundError):
        storage.open("nope")
    assert not storage.exists("nope")
    storage.delete("nope")  # idempotent


def test_delete_is_idempotent(storage):
    storage.put("a/b/c", b"x", content_type="text/plain")
    storage.delete("a/b/c")
    storage.delete("a/b/c")
    assert not storage.exists("a/b/c")
    assert list(storage.list()) == []


def test_list_is_in_utf8_byte_order_with_prefixes(storage):
    keys = ["a-c", "a/b", "a/a/z", "b", "ab", "a.x", "é/1", "z"]
    for key in keys:
        storage.put(key, key.encode(), content_type="text/plain")
    assert [i.key for i in storage.list()] == sorted(keys, key=lambda k: k.encode())
    assert [i.key for i in storage.list("a/")] == ["a/a/z", "a/b"]
    assert [i.key for i in storage.list("a")] == sorted(
        [k for k in keys if k.startswith("a")], key=str.encode
    )
    assert [i.size for i in storage.list("b")] == [1]


def test_copy(storage):
    storage.put("src", BODY, content_type="audio/flac", metadata={"x": "1"})
    copied = storage.copy("src", "dst")
    assert copied.size == len(BODY)
    assert copied.content_type == "audio/flac"
    assert copied.metadata == {"x": "1"}
    with storage.open("dst") as reader:
        assert reader.read() == BODY
    with pytest.raises(ObjectExistsError):
        storage.copy("src", "dst", if_absent=True)
    with pytest.raises(ObjectNotFoundError):
        storage.copy("missing", "dst2")


@pytest.mark.parametrize(
    "metadata",
    [
        {"Upper": "x"},
        {"spa ce": "x"},
        {"k": "non-ascii é"},
        {"k": "new\nline"},
        {"sha256": "reserved"},
        {"k": "x" * 2100},
    ],
)
def test_non_portable_metadata_is_refused_before_writing(storage, metadata):
    with pytest.raises(InvalidMetadataError):
        storage.put("k", b"x", content_type="text/plain", metadata=metadata)
    assert not storage.exists("k")


def test_put_from_a_real_file_at_an_offset(storage, tmp_path):
    data = os.urandom(7 * MiB + 3)
    path = tmp_path / "source.bin"
    path.write_bytes(b"HEADER" + data)
    with path.open("rb") as source:
        source.seek(6)  # only the rest of the file is the object
        info = storage.put("from-file", source, content_type="application/octet-stream")
        assert source.tell() == 6 + len(data)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    with storage.open("from-file") as reader:
        assert reader.read() == data


def test_put_from_a_pipe(storage):
    import threading

    data = os.urandom(3 * MiB + 11)
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    with os.fdopen(read_fd, "rb") as pipe:
        info = storage.put("from-pipe", pipe, content_type="application/octet-stream")
    feeder.join()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
