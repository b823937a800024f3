"""Received chunks are immutable, and racing senders never publish a mismatched object.

The race is made deterministic with a session store that parks one sender inside its
``get`` call (it has read the session, the chunk is not in it yet) while the other
sender runs to completion, then lets it go: the interleaving the attacker needed 40
tries to hit happens every time.
"""

import asyncio
import hashlib
import os
import threading

import pytest
from hypothesis import given, settings, strategies as st

from veza_storage import (
    ChecksumMismatchError,
    ChunkError,
    ChunkTooLargeError,
    FileUploadSessionStore,
    ResumableUploads,
    StorageError,
    UploadIncompleteError,
    aread_limited,
    read_limited,
)

KiB, MiB = 1024, 1024 * 1024


class ParkingStore:
    """A real file store whose ``get`` parks the thread named ``park`` once, after reading."""

    def __init__(self, inner: FileUploadSessionStore) -> None:
        self._inner = inner
        self.park: str | None = None
        self.parked = threading.Event()
        self.release = threading.Event()

    def get(self, session_id):
        session = self._inner.get(session_id)
        if self.park is not None and threading.current_thread().name == self.park:
            self.park = None
            self.parked.set()
            assert self.release.wait(30)
        return session

    def create(self, session):
        self._inner.create(session)

    def replace(self, session, *, expected_version):
        return self._inner.replace(session, expected_version=expected_version)

    def delete(self, session_id):
        self._inner.delete(session_id)

    def expired(self, now):
        return self._inner.expired(now)


@pytest.mark.parametrize("chunk", [5 * MiB, 64 * KiB], ids=["part-per-chunk", "grouped"])
def test_racing_senders_of_one_chunk_never_publish_a_mismatched_object(storage, tmp_path, chunk):
    mine, theirs, tail = os.urandom(chunk), os.urandom(chunk), os.urandom(chunk // 2)
    declared = hashlib.sha256(theirs + tail).hexdigest()  # the honest client's object
    store = ParkingStore(FileUploadSessionStore(tmp_path / "sessions"))
    uploads = ResumableUploads(storage, store)
    session = uploads.begin(
        "race/t.flac",
        2 * chunk - chunk // 2,
        chunk_size=chunk,
        content_type="audio/flac",
        sha256=declared,
    )
    outcomes: dict[str, object] = {}

    def send(name: str, data: bytes) -> None:
        try:
            uploads.put_chunk(session, 0, data=data)
            outcomes[name] = "accepted"
        except ChunkError as exc:
            outcomes[name] = exc

    store.park = "attacker"
    attacker = threading.Thread(target=send, args=("attacker", mine), name="attacker")
    attacker.start()
    assert store.parked.wait(30)  # the attacker read the session: chunk 0 is free
    honest = threading.Thread(target=send, args=("honest", theirs), name="honest")
    honest.start()
    honest.join(timeout=2)  # runs to the end (or waits for the attacker's lock)
    store.release.set()
    attacker.join(30)
    honest.join(30)
    uploads.put_chunk(session, 1, data=tail)
    for _ in range(3):  # the honest client resends whatever the server says is missing
        try:
            info = uploads.complete(session)
            break
        except UploadIncompleteError:
            for index in uploads.status(session).missing:
                uploads.put_chunk(session, index, data=theirs if index == 0 else tail)
        except ChecksumMismatchError:  # refused, never published
            assert not storage.exists("race/t.flac")
            assert outcomes["attacker"] == "accepted"
            return
    with storage.open("race/t.flac") as reader:
        published = reader.read()
    assert hashlib.sha256(published).hexdigest() == info.sha256 == declared
    assert published == theirs + tail
    # exactly one sender was accepted, the other got the typed conflict (HTTP 409)
    assert sorted(type(o).__name__ for o in outcomes.values()) == ["ChunkConflictError", "str"]


def test_the_same_bytes_twice_are_idempotent_concurrently_too(storage, tmp_path):
    data = os.urandom(64 * KiB)
    uploads = ResumableUploads(storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("same", len(data), chunk_size=64 * KiB, content_type="x/y")
    errors = []

    def send():
        try:
            uploads.put_chunk(session, 0, data=data)
        except StorageError as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()
    assert uploads.complete(session) == uploads.complete(session)  # idempotent


# ---------------------------------------------------------------------- body limits


def test_read_limited_stops_at_limit_plus_one():
    pulled = []

    def endless():
        while True:
            pulled.append(1)
            yield b"x" * 1000

    with pytest.raises(ChunkTooLargeError) as refused:
        read_limited(endless(), limit=10_000)
    assert (refused.value.limit, refused.value.received) == (10_000, 10_001)
    assert refused.value.declared_length is None
    assert len(pulled) == 11  # never read past the first piece over the limit
    assert isinstance(refused.value, ChunkError)


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    def never():
        raise AssertionError("read although the declared length was over the limit")
        yield b""  # pragma: no cover

    with pytest.raises(ChunkTooLargeError) as refused:
        read_limited(never(), limit=100, declared_length=101)
    assert (refused.value.received, refused.value.declared_length) == (0, 101)
    with pytest.raises(ChunkTooLargeError):
        asyncio.run(aread_limited(_agen([]), limit=100, declared_length=10**12))


def test_a_lying_declared_length_does_not_help():
    with pytest.raises(ChunkTooLargeError) as refused:
        read_limited([b"a" * 60, b"b" * 60], limit=100, declared_length=10)
    assert refused.value.received == 101


async def _agen(pieces):
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=40), max_size=12),
    limit=st.integers(min_value=0, max_value=300),
)
def test_limited_readers_return_the_body_or_refuse_exactly_over_the_limit(pieces, limit):
    body = b"".join(pieces)
    for read in (
        lambda: read_limited(iter(pieces), limit=limit),
        lambda: asyncio.run(aread_limited(_agen(pieces), limit=limit)),
    ):
        if len(body) <= limit:
            assert read() == body
        else:
            with pytest.raises(ChunkTooLargeError) as refused:
                read()
            assert refused.value.received == limit + 1


def test_the_session_says_its_chunk_limit(storage, tmp_path):
    uploads = ResumableUploads(storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("k", 300 * KiB, chunk_size=128 * KiB, content_type="x/y")
    limit = uploads.status(session).chunk_size
    assert limit == 128 * KiB
    body = read_limited([os.urandom(64 * KiB)] * 2, limit=limit)
    uploads.put_chunk(session, 0, data=body)
    with pytest.raises(ChunkTooLargeError):
        read_limited([os.urandom(64 * KiB)] * 3, limit=limit)
