"""The helper threads that compute chunk records beside the write.

They are long-lived (a thread started per chunk waited to be scheduled on a busy
machine), so they must survive what a server does to a process: a fork after warm-up,
and a record that cannot be computed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import select
import signal
import subprocess
import sys
import warnings

import pytest

from veza_storage import InMemoryUploadSessionStore, LocalStorage, ResumableUploads, UploadError

MiB = 1024 * 1024


def _upload_whole(uploads: ResumableUploads, key: str, data: bytes, chunk: int) -> str:
    session = uploads.begin(key, len(data), chunk_size=chunk, content_type="x/y")
    for index in range(-(-len(data) // chunk)):
        uploads.put_chunk(session, index, data=data[index * chunk : (index + 1) * chunk])
    return uploads.complete(session).sha256


def _child_uploads(uploads: ResumableUploads, data: bytes) -> bytes:
    """Fork; the child uploads ``data`` as ``child.bin``; its verdict, or ``b"hung"``.

    The child reports ``b"ok"`` if the digest is ``data``'s, and never returns into
    pytest. The parent waits 30 s at most, then kills it.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:
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
        return os.read(read_end, 16) if ready else b"hung"
    finally:
        os.close(read_end)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


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
    verdict = _child_uploads(uploads, data)
    assert verdict == b"ok"
    with storage.open("child.bin") as reader:
        assert reader.read() == data


@pytest.mark.parametrize(
    ("chunk", "pool"),
    [(MiB, "running"), (MiB, "ended"), (64 * 1024, "running")],
    ids=["pool", "interpreter-ending", "small-chunk"],
)
def test_a_chunk_whose_record_fails_is_refused_and_not_recorded(tmp_path, monkeypatch, chunk, pool):
    """Whichever thread computes the record, a failure is an ``UploadError`` and no record."""
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(2 * chunk)
    session = uploads.begin("k.bin", len(data), chunk_size=chunk, content_type="x/y")
    if pool == "ended":  # what submit answers once concurrent.futures stopped its pools
        monkeypatch.setattr(uploads._beside, "submit", lambda work: None)

    def broken(chunk: bytes) -> str:
        raise MemoryError("no memory for the record")

    monkeypatch.setattr(uploads._staging, "chunk_record", broken)
    with pytest.raises(UploadError, match="could not be computed"):
        uploads.put_chunk(session, 0, data=data[:chunk])
    assert uploads.status(session).received == ()
    monkeypatch.undo()
    uploads.put_chunk(session, 0, data=data[:chunk])  # the next attempt succeeds
    uploads.put_chunk(session, 1, data=data[chunk:])
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()


def _upload_pausing_in_the_direct_write(
    uploads: ResumableUploads, storage: LocalStorage, data: bytes, *, signal_to: int, wait_on: int
) -> bytes:
    """Upload ``data`` as ``child.bin``, pausing once inside the first direct write.

    The pause comes after the chunk was copied into the aligned buffer and before the
    ``pwrite``: it writes to ``signal_to``, then waits for two bytes on ``wait_on``.
    Returns ``b"ok"`` if the published bytes and digest are ``data``'s, else ``b"wrong"``.
    """
    import veza_storage._direct as direct_module

    real_write = direct_module.write_all
    paused: list[bool] = []

    def pausing(fd: int, chunk: memoryview, offset: int | None = None) -> None:
        if not paused and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            paused.append(True)
            os.write(signal_to, b"in")  # our bytes are in the aligned buffer
            os.read(wait_on, 2)  # the other process has uploaded meanwhile
        real_write(fd, chunk, offset=offset)

    direct_module.write_all = pausing
    digest = _upload_whole(uploads, "child.bin", data, MiB)
    with storage.open("child.bin") as reader:
        same = reader.read() == data
    return b"ok" if same and digest == hashlib.sha256(data).hexdigest() else b"wrong"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_forked_processes_writing_at_once_each_publish_their_own_bytes(tmp_path):
    """A pre-forking server: the workers share nothing they write chunks through.

    Deterministic interleaving: the child stops inside its chunk's direct write, after
    its bytes were copied into the aligned buffer and before the ``pwrite``; the parent
    then uploads other bytes; the child goes on. With buffers kept from before the fork
    in a shared map (``mmap``'s default, ``MAP_SHARED``), the parent's copy lands in the
    child's buffer and the child published the parent's bytes under a digest of them.
    """
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    warm = os.urandom(2 * MiB)  # leaves an aligned buffer in the writer's pool
    assert _upload_whole(uploads, "warm.bin", warm, MiB) == hashlib.sha256(warm).hexdigest()
    child_data, parent_data = b"c" * MiB, b"p" * MiB
    to_parent, from_child = os.pipe()
    from_parent, to_child = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        verdict = b"error"
        try:
            verdict = _upload_pausing_in_the_direct_write(
                uploads, storage, child_data, signal_to=from_child, wait_on=from_parent
            )
        finally:
            os.write(from_child, verdict)
            os._exit(0)
    ready: list[int] = []
    try:
        ready, _, _ = select.select([to_parent], [], [], 30)
        assert ready and os.read(to_parent, 2) == b"in", "the child never reached its write"
        parent_digest = _upload_whole(uploads, "parent.bin", parent_data, MiB)
        assert parent_digest == hashlib.sha256(parent_data).hexdigest()
        os.write(to_child, b"go")
        ready, _, _ = select.select([to_parent], [], [], 30)
        verdict = os.read(to_parent, 16) if ready else b"hung"
    finally:
        for fd in (to_parent, from_child, from_parent, to_child):
            os.close(fd)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert verdict == b"ok"
    with storage.open("child.bin") as reader:
        assert reader.read() == child_data


SHUTDOWN = r"""
import os, sys, threading
from veza_storage import InMemoryUploadSessionStore, LocalStorage, ResumableUploads
MiB = 1 << 20
uploads = ResumableUploads(LocalStorage(sys.argv[1]), InMemoryUploadSessionStore())
data = os.urandom(4 * MiB)
done, failed = [], []
started = threading.Barrier(5)

def work(number):
    started.wait()
    try:
        for n in range(5):
            session = uploads.begin(f"t{number}-{n}", len(data), chunk_size=MiB, content_type="x/y")
            for index in range(4):
                uploads.put_chunk(session, index, data=data[index * MiB : (index + 1) * MiB])
            uploads.complete(session)
            done.append(1)
    except Exception as exc:
        failed.append(repr(exc))

import atexit
atexit.register(lambda: print(len(done), failed, flush=True))  # after the threads ended
for number in range(4):
    threading.Thread(target=work, args=(number,)).start()
started.wait()  # the main thread returns while every thread still has uploads to do
"""


def test_uploads_still_running_when_the_main_thread_returns_all_finish(tmp_path):
    """Python joins non-daemon threads at exit, after concurrent.futures stopped its pools."""
    done = subprocess.run(
        [sys.executable, "-c", SHUTDOWN, str(tmp_path / "root")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["20", "[]"], done.stdout + done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_child_forked_while_another_thread_holds_the_pools_lock_still_uploads(tmp_path):
    """``fork`` copies a held lock as held, and the thread that held it is not in the child.

    Deterministic: the parent holds the buffer pool's lock across the fork (as a thread
    inside ``put_chunk`` would for an instant); the child must still upload, not wait
    for ever. (The helper-thread pool keeps no lock: one executor per process id.)
    """
    storage = LocalStorage(tmp_path / "root")
    uploads = ResumableUploads(storage, InMemoryUploadSessionStore())
    data = os.urandom(3 * MiB)
    assert _upload_whole(uploads, "warm.bin", data, MiB) == hashlib.sha256(data).hexdigest()
    staging = uploads._staging
    with staging._direct._lock.held():
        verdict = _child_uploads(uploads, data)
    assert verdict == b"ok"
