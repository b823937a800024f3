"""Resumable chunked uploads on both backends."""

import hashlib
import os
import random
import threading

import pytest

from veza_storage import (
    ChecksumMismatchError,
    ChunkConflictError,
    ChunkError,
    FileUploadSessionStore,
    InMemoryUploadSessionStore,
    LocalStorage,
    ObjectNotFoundError,
    ResumableUploads,
    UploadError,
    UploadIncompleteError,
    UploadNotFoundError,
)
from veza_storage._uploads import boot_id

KiB, MiB = 1024, 1024 * 1024


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def s3_client_or_none(request, storage):
    if isinstance(storage, LocalStorage):
        return None
    return request.getfixturevalue("s3_client")


@pytest.fixture
def uploads(storage, tmp_path, clock):
    return ResumableUploads(
        storage, FileUploadSessionStore(tmp_path / "sessions"), ttl=3600, clock=clock
    )


@pytest.mark.parametrize(
    ("total", "chunk"),
    [(6 * MiB + 17, 5 * MiB), (3 * MiB + 5, 256 * KiB), (100 * KiB, 64 * KiB), (10, 1 * MiB)],
    ids=["chunk-is-a-part", "grouped-small-chunks", "tiny", "single-chunk"],
)
def test_chunks_in_any_order_make_one_verified_object(uploads, storage, total, chunk):
    data = os.urandom(total)
    digest = hashlib.sha256(data).hexdigest()
    session = uploads.begin(
        "uploads/t.flac",
        total,
        chunk_size=chunk,
        content_type="audio/flac",
        sha256=digest,
        metadata={"user": "7"},
    )
    pieces = list(enumerate(chunks_of(data, chunk)))
    random.Random(4).shuffle(pieces)
    for index, piece in pieces[:-1]:
        uploads.put_chunk(session, index, data=piece, sha256=hashlib.sha256(piece).hexdigest())
        assert not storage.exists("uploads/t.flac")  # nothing visible before complete
    last_index, last_piece = pieces[-1]
    status = uploads.put_chunk(session, last_index, data=last_piece)
    assert status.ready
    assert status.missing == ()
    info = uploads.complete(session)
    assert (info.size, info.sha256, info.content_type) == (total, digest, "audio/flac")
    assert info.metadata == {"user": "7"}
    with storage.open("uploads/t.flac") as reader:
        assert reader.read() == data
    assert uploads.complete(session) == info  # a retried complete returns the same object
    assert [i.key for i in storage.list()] == ["uploads/t.flac"]  # staging is gone and hidden


def test_resent_chunk_is_idempotent_and_conflicts_are_refused(uploads):
    data = os.urandom(200 * KiB)
    session = uploads.begin(
        "k", len(data), chunk_size=64 * KiB, content_type="application/octet-stream"
    )
    first = uploads.put_chunk(session, 0, data=data[: 64 * KiB])
    again = uploads.put_chunk(session, 0, data=data[: 64 * KiB])
    assert first == again
    with pytest.raises(ChunkConflictError, match="different bytes") as conflict:
        uploads.put_chunk(session, 0, data=os.urandom(64 * KiB))
    assert conflict.value.index == 0
    assert isinstance(conflict.value, ChunkError)  # existing handlers still catch it
    with pytest.raises(ChecksumMismatchError):
        uploads.put_chunk(session, 1, data=data[64 * KiB : 128 * KiB], sha256="0" * 64)
    with pytest.raises(ChunkError, match="must be"):
        uploads.put_chunk(session, 1, data=data[:10])
    with pytest.raises(ChunkError, match="outside"):
        uploads.put_chunk(session, 9, data=data[:10])
    assert uploads.status(session).received == (0,)


def test_complete_refuses_missing_chunks_and_a_wrong_whole_checksum(uploads, storage):
    data = os.urandom(130 * KiB)
    session = uploads.begin(
        "k", len(data), chunk_size=64 * KiB, content_type="x/y", sha256="f" * 64
    )
    uploads.put_chunk(session, 0, data=data[: 64 * KiB])
    with pytest.raises(UploadIncompleteError, match="2 chunk"):
        uploads.complete(session)
    for index, piece in enumerate(chunks_of(data, 64 * KiB)):
        uploads.put_chunk(session, index, data=piece)
    with pytest.raises(ChecksumMismatchError):
        uploads.complete(session)
    assert not storage.exists("k")


def test_abort_discards_everything(uploads, storage):
    session = uploads.begin("k", 100 * KiB, chunk_size=64 * KiB, content_type="x/y")
    uploads.put_chunk(session, 0, data=os.urandom(64 * KiB))
    uploads.abort(session)
    with pytest.raises(UploadNotFoundError):
        uploads.status(session)
    assert list(storage.list()) == []
    uploads.abort(session)  # idempotent


def test_expired_sessions_are_reaped_with_their_staged_data(uploads, clock, storage, tmp_path):
    session = uploads.begin("k", 100 * KiB, chunk_size=64 * KiB, content_type="x/y")
    uploads.put_chunk(session, 0, data=os.urandom(64 * KiB))
    kept = uploads.begin("kept", 100 * KiB, chunk_size=64 * KiB, content_type="x/y")
    clock.now += 1800
    late = uploads.begin("late", 100 * KiB, chunk_size=64 * KiB, content_type="x/y")
    clock.now += 1801
    with pytest.raises(UploadNotFoundError):
        uploads.put_chunk(session, 1, data=os.urandom(100 * KiB - 64 * KiB))
    assert uploads.reap_expired() == 2
    assert uploads.status(late).missing == (0, 1)  # not expired: untouched
    assert uploads._store.get(session) is None
    assert uploads._store.get(kept) is None
    assert list(storage.list()) == []
    if isinstance(storage, LocalStorage):  # only the live session's staging is left
        assert sorted(p.name for p in (storage.root / ".veza-uploads").iterdir()) == [late]
    assert uploads.reap_expired() == 0


def test_sweep_expired_is_a_deprecated_alias(uploads, clock):
    uploads.begin("k", 100 * KiB, chunk_size=64 * KiB, content_type="x/y")
    clock.now += 3601
    with pytest.warns(DeprecationWarning, match="reap_expired"):
        assert uploads.sweep_expired() == 1


def test_resumes_in_a_new_process_from_the_file_store(storage, tmp_path, clock):
    data = os.urandom(300 * KiB)
    store_dir = tmp_path / "shared-sessions"
    first = ResumableUploads(storage, FileUploadSessionStore(store_dir), clock=clock)
    session = first.begin(
        "r",
        len(data),
        chunk_size=64 * KiB,
        content_type="x/y",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    for index, piece in list(enumerate(chunks_of(data, 64 * KiB)))[:3]:
        first.put_chunk(session, index, data=piece)
    restarted = ResumableUploads(storage, FileUploadSessionStore(store_dir), clock=clock)
    assert restarted.status(session).missing == (3, 4)
    for index, piece in list(enumerate(chunks_of(data, 64 * KiB)))[3:]:
        restarted.put_chunk(session, index, data=piece)
    assert restarted.complete(session).sha256 == hashlib.sha256(data).hexdigest()


def test_concurrent_chunks_never_lose_a_record(storage, tmp_path):
    data = os.urandom(16 * 64 * KiB)
    uploads = ResumableUploads(storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("c", len(data), chunk_size=64 * KiB, content_type="x/y")
    pieces = list(enumerate(chunks_of(data, 64 * KiB)))
    threads = [
        threading.Thread(target=uploads.put_chunk, args=(session, i), kwargs={"data": p})
        for i, p in pieces
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert uploads.status(session).ready
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()


def test_begin_validates(uploads):
    with pytest.raises(ChunkError):
        uploads.begin("k", 10 * MiB, chunk_size=1024, content_type="x/y")  # chunks under 64 KiB
    with pytest.raises(ChunkError):
        uploads.begin("k", 10, chunk_size=64 * KiB, content_type="x/y", sha256="not-hex")
    with pytest.raises(ChunkError):
        uploads.begin("k", -1, chunk_size=64 * KiB, content_type="x/y")


def test_empty_upload(uploads, storage):
    session = uploads.begin(
        "empty",
        0,
        chunk_size=64 * KiB,
        content_type="text/plain",
        sha256=hashlib.sha256(b"").hexdigest(),
    )
    assert uploads.status(session).ready
    assert uploads.complete(session).size == 0
    assert storage.exists("empty")


def test_completed_session_takes_no_more_chunks(uploads):
    session = uploads.begin("k", 10, chunk_size=64 * KiB, content_type="x/y")
    uploads.put_chunk(session, 0, data=b"0123456789")
    uploads.complete(session)
    with pytest.raises(UploadError, match="completed"):
        uploads.put_chunk(session, 0, data=b"0123456789")


def test_s3_small_chunks_are_grouped_into_parts_without_local_assembly(s3_storage, s3_client):
    uploads = ResumableUploads(s3_storage, InMemoryUploadSessionStore())
    data = os.urandom(11 * MiB)
    session = uploads.begin("grouped", len(data), chunk_size=512 * KiB, content_type="x/y")
    for index, piece in enumerate(chunks_of(data, 512 * KiB)):
        uploads.put_chunk(session, index, data=piece)
    staged = uploads._store.get(session)
    assert staged.backend["group"] == 10  # 10 x 512 KiB = one 5 MiB part
    assert sorted(staged.backend["parts"], key=int) == ["1", "2", "3"]
    leftover = s3_client.list_objects_v2(Bucket=s3_storage.bucket, Prefix=".veza-uploads/")
    assert [o["Key"] for o in leftover.get("Contents", [])] == []  # grouped chunks consumed
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()


def test_s3_sweep_aborts_orphaned_multipart_uploads(s3_storage, s3_client, clock):
    uploads = ResumableUploads(s3_storage, InMemoryUploadSessionStore(), ttl=60, clock=clock)
    session = uploads.begin("orphan", 6 * MiB, chunk_size=5 * MiB, content_type="x/y")
    uploads._store.delete(session)  # the session is lost (a store wiped), the upload is not
    assert s3_client.list_multipart_uploads(Bucket=s3_storage.bucket).get("Uploads")
    clock.now = 4_000_000_000
    assert uploads.reap_expired() == 1
    assert not s3_client.list_multipart_uploads(Bucket=s3_storage.bucket).get("Uploads")


def test_unknown_session(uploads):
    with pytest.raises(UploadNotFoundError):
        uploads.status("nope")
    with pytest.raises(ObjectNotFoundError):
        uploads.storage.stat("nothing")


def test_complete_hashes_the_assembled_bytes_not_the_received_ones(
    storage, s3_client_or_none, tmp_path
):
    """Bytes changed after they were received are caught at complete, never published."""
    uploads = ResumableUploads(storage, FileUploadSessionStore(tmp_path / "s"))
    data = os.urandom(11 * MiB)
    session = uploads.begin(
        "fast",
        len(data),
        chunk_size=5 * MiB,
        content_type="x/y",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    for index, piece in enumerate(chunks_of(data, 5 * MiB)):  # in order, in this process
        uploads.put_chunk(session, index, data=piece)
    tampered = os.urandom(5 * MiB)
    if isinstance(storage, LocalStorage):
        with (storage.root / ".veza-uploads" / session / "data").open("r+b") as f:
            f.seek(5 * MiB)
            f.write(tampered)
    else:
        staged = uploads._store.get(session)
        s3_client_or_none.upload_part(
            Bucket=storage.bucket,
            Key=f".veza-uploads/{session}/object",
            UploadId=staged.backend["upload_id"],
            PartNumber=2,
            Body=tampered,
            ChecksumAlgorithm="SHA256",
        )
    with pytest.raises(UploadIncompleteError, match="send them again"):
        uploads.complete(session)
    assert not storage.exists("fast")
    assert uploads.status(session).missing == (1,)
    uploads.put_chunk(session, 1, data=data[5 * MiB : 10 * MiB])
    info = uploads.complete(session)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    with storage.open("fast") as reader:
        assert reader.read() == data


def test_a_chunk_lost_before_reaching_disk_is_asked_for_again(local_storage, tmp_path):
    data = os.urandom(4 * 64 * KiB)
    store = FileUploadSessionStore(tmp_path / "s")
    uploads = ResumableUploads(local_storage, store)
    session = uploads.begin("lost", len(data), chunk_size=64 * KiB, content_type="x/y")
    for index, piece in enumerate(chunks_of(data, 64 * KiB)):
        uploads.put_chunk(session, index, data=piece)
    staged = local_storage.root / ".veza-uploads" / session / "data"
    with staged.open("r+b") as f:  # what a host crash before write-back leaves: zeros
        f.seek(2 * 64 * KiB)
        f.write(bytes(64 * KiB))
    crashed = store.get(session)  # ... and the host came back under a new boot id
    assert crashed.backend["boots"] == [boot_id()]
    crashed.backend["boots"] = ["the-boot-before-the-crash"]
    assert store.replace(crashed, expected_version=crashed.version)
    restarted = ResumableUploads(local_storage, store)  # no in-memory hash: must read back
    with pytest.raises(UploadIncompleteError, match="lost"):
        restarted.complete(session)
    assert restarted.status(session).missing == (2,)
    assert not local_storage.exists("lost")
    restarted.put_chunk(session, 2, data=data[2 * 64 * KiB : 3 * 64 * KiB])
    assert restarted.complete(session).sha256 == hashlib.sha256(data).hexdigest()


def test_a_crash_right_after_publishing_resumes_to_the_same_object(
    local_storage, tmp_path, monkeypatch
):
    import veza_storage._staging_local as module

    data = os.urandom(100 * KiB)
    store = FileUploadSessionStore(tmp_path / "s")
    uploads = ResumableUploads(local_storage, store)
    session = uploads.begin("pub", len(data), chunk_size=64 * KiB, content_type="x/y")
    for index, piece in enumerate(chunks_of(data, 64 * KiB)):
        uploads.put_chunk(session, index, data=piece)
    real_publish = module.publish_at

    def crash_after_rename(*args, **kwargs):
        real_publish(*args, **kwargs)
        raise KeyboardInterrupt  # the process dies here: renamed, not marked completed

    monkeypatch.setattr(module, "publish_at", crash_after_rename)
    with pytest.raises(KeyboardInterrupt):
        uploads.complete(session)
    monkeypatch.setattr(module, "publish_at", real_publish)
    assert store.get(session).state == "assembled"
    resumed = ResumableUploads(local_storage, store)
    assert resumed.complete(session).sha256 == hashlib.sha256(data).hexdigest()
    assert store.get(session).state == "completed"


def test_begin_takes_keywords_after_total_size_and_warns_on_the_old_positional_form(uploads):
    with pytest.warns(DeprecationWarning, match="by keyword"):
        old = uploads.begin("k", 10, 64 * KiB, "x/y", None, {"a": "b"})
    new = uploads.begin("k", 10, chunk_size=64 * KiB, content_type="x/y", metadata={"a": "b"})
    assert uploads.status(old).chunk_size == uploads.status(new).chunk_size == 64 * KiB
    assert uploads._store.get(old).metadata == uploads._store.get(new).metadata == {"a": "b"}
    with pytest.raises(TypeError, match="chunk_size= and content_type="):
        uploads.begin("k", 10, chunk_size=64 * KiB)
    with pytest.raises(TypeError, match="both"), pytest.warns(DeprecationWarning, match="keyword"):
        uploads.begin("k", 10, 64 * KiB, chunk_size=64 * KiB, content_type="x/y")


def test_complete_hashes_once_unless_the_host_rebooted(local_storage, tmp_path, monkeypatch):
    """The fast path: one pass over the assembled bytes; chunk by chunk only after a reboot."""
    import veza_storage._staging_local as module

    calls = []
    real = module._verify_staged

    def spy(session, fd, *, flush, per_chunk, **more):
        calls.append(per_chunk)
        return real(session, fd, flush=flush, per_chunk=per_chunk, **more)

    monkeypatch.setattr(module, "_verify_staged", spy)
    store = FileUploadSessionStore(tmp_path / "s")
    uploads = ResumableUploads(local_storage, store)
    data = os.urandom(3 * 64 * KiB)
    for name, rebooted in (("same-boot", False), ("rebooted", True)):
        session = uploads.begin(name, len(data), chunk_size=64 * KiB, content_type="x/y")
        for index, piece in enumerate(chunks_of(data, 64 * KiB)):
            uploads.put_chunk(session, index, data=piece)
        if rebooted:
            stored = store.get(session)
            stored.backend["boots"] = ["an-earlier-boot", *stored.backend["boots"]]
            assert store.replace(stored, expected_version=stored.version)
        assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()
    assert calls == [False, True]


def test_a_resend_repairs_a_staged_chunk_that_went_bad_and_other_bytes_still_conflict(
    local_storage, tmp_path
):
    """Resends are settled against the staged bytes: same bytes rewrite a damaged chunk."""
    data = os.urandom(3 * 64 * KiB)
    uploads = ResumableUploads(local_storage, FileUploadSessionStore(tmp_path / "s"))
    session = uploads.begin("repaired", len(data), chunk_size=64 * KiB, content_type="x/y")
    for index, piece in enumerate(chunks_of(data, 64 * KiB)):
        uploads.put_chunk(session, index, data=piece)
    with (local_storage.root / ".veza-uploads" / session / "data").open("r+b") as f:
        f.seek(64 * KiB + 10)
        f.write(b"damaged")  # what the host lost, or a writer outside veza changed
    with pytest.raises(ChunkConflictError):  # immutable: other bytes are never taken
        uploads.put_chunk(session, 1, data=os.urandom(64 * KiB))
    uploads.put_chunk(session, 1, data=data[64 * KiB : 128 * KiB])  # the client's retry
    assert uploads.status(session).ready
    info = uploads.complete(session)  # no declared SHA-256: the staged bytes are published
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    with local_storage.open("repaired") as reader:
        assert reader.read() == data


def test_sessions_recorded_with_sha256_chunk_digests_still_complete_and_find_lost_chunks(
    local_storage, tmp_path
):
    """Chunk records written before they were CRC-32s (SHA-256 hex) are still checked."""
    data = os.urandom(3 * 64 * KiB)
    store = FileUploadSessionStore(tmp_path / "s")
    uploads = ResumableUploads(local_storage, store)
    session = uploads.begin("older", len(data), chunk_size=64 * KiB, content_type="x/y")
    pieces = chunks_of(data, 64 * KiB)
    for index, piece in enumerate(pieces):
        uploads.put_chunk(session, index, data=piece)
    older = store.get(session)
    older.chunks = {i: hashlib.sha256(piece).hexdigest() for i, piece in enumerate(pieces)}
    older.backend["boots"] = ["the-boot-before-the-crash"]
    assert store.replace(older, expected_version=older.version)
    uploads.put_chunk(session, 0, data=pieces[0])  # an idempotent resend against a SHA-256 record
    with pytest.raises(ChunkConflictError):
        uploads.put_chunk(session, 0, data=pieces[1])
    with (local_storage.root / ".veza-uploads" / session / "data").open("r+b") as f:
        f.seek(2 * 64 * KiB)
        f.write(bytes(64 * KiB))  # lost in the crash
    with pytest.raises(UploadIncompleteError, match="lost"):
        uploads.complete(session)
    assert uploads.status(session).missing == (2,)
    uploads.put_chunk(session, 2, data=pieces[2])
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()
