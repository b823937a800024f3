"""The helper threads that compute chunk records beside the write.

They are long-lived (a thread started per chunk waited to be scheduled on a busy
machine), so they must survive what a server does to a process: a fork after warm-up,
and a record that cannot be computed.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import warnings

import pytest

from veza_storage import InMemoryUploadSessionStore, LocalStorage, ResumableUploads, UploadError

MiB = 1024 * 1024


def _upload_whole(uploads: ResumableUploads, key: str, data: bytes, chunk: int) -> str:
    session = uploads.begin(key, len(data), chunk_size=chunk, content_type="x/y")
    for index in range(-(-len(data) // chunk)):
        uploads.put_chunk(session, index, data=data[index * chunk : (index + 1) * chunk])
    return uploads.complete(session).sha256


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_process_forked_after_uploads_still_records_its_chunks(tmp_path):
    """A pre-forking server that warmed up first: the child gets helper threads of its own.

    The child inherits the pool object but not its threads; queuing work there would
    hang ``put_chunk`` forever (red with a bare ``ThreadPoolExecutor``).
    """
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(3 * MiB)  # 1 MiB chunks: recorded on the helper threads
    assert _upload_whole(uploads, "parent.bin", data, MiB) == hashlib.sha256(data).hexdigest()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        verdict = b"error"
        try:
            digest = _upload_whole(uploads, "child.bin", data, MiB)
            verdict = b"ok" if digest == hashlib.sha256(data).hexdigest() else b"wrong"
        finally:
            os.write(write_end, verdict)
            os._exit(0)
    os.close(write_end)
    ready: list[int] = []
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        verdict = os.read(read_end, 16) if ready else b"hung"
    finally:
        os.close(read_end)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert verdict == b"ok"
    with storage.open("child.bin") as reader:
        assert reader.read() == data


def test_a_chunk_whose_record_fails_is_refused_and_not_recorded(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(2 * MiB)
    session = uploads.begin("k.bin", len(data), chunk_size=MiB, content_type="x/y")

    def broken(chunk: bytes) -> str:
        raise MemoryError("no memory for the record")

    monkeypatch.setattr(uploads._staging, "chunk_record", broken)
    with pytest.raises(UploadError, match="could not be computed"):
        uploads.put_chunk(session, 0, data=data[:MiB])
    assert uploads.status(session).received == ()
    monkeypatch.undo()
    uploads.put_chunk(session, 0, data=data[:MiB])  # the next attempt succeeds
    uploads.put_chunk(session, 1, data=data[MiB:])
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()
