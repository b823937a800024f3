"""``AsyncStorage`` and ``AsyncResumableUploads`` on local disk and on S3 (moto's server).

Each scenario runs twice: once to warm imports and connection pools, then under
``loop_io_watch`` (CPython audit hooks), which records any file, DNS or blocking-socket
operation made on the event loop's thread. The same calls made on the sync storage
from the loop are recorded: the detector can fail.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from veza_loopwatch import loop_io_watch
from veza_storage import (
    AsyncResumableUploads,
    AsyncStorage,
    ByteRange,
    FileUploadSessionStore,
    ObjectNotFoundError,
    ResumableUploads,
    Storage,
)

MiB = 1024 * 1024
BODY = bytes(range(256)) * 4096  # 1 MiB


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


async def _scenario(store: AsyncStorage, prefix: str) -> dict[str, object]:
    info = await store.put(f"{prefix}/a.bin", BODY, content_type="application/octet-stream")
    streamed = await store.put(
        f"{prefix}/b.bin", _chunks(BODY), content_type="audio/mpeg", metadata={"k": "v"}
    )
    whole = await store.get(f"{prefix}/b.bin")
    part = await store.get(f"{prefix}/a.bin", byte_range=ByteRange(10, 19))
    async with await store.open(f"{prefix}/a.bin") as reader:
        pieces = [chunk async for chunk in reader]
    copied = await store.copy(f"{prefix}/a.bin", f"{prefix}/c.bin")
    listed = [i.key async for i in store.list(f"{prefix}/")]
    url = await store.presign_get(f"{prefix}/a.bin", expires_in=60)
    await store.delete(f"{prefix}/c.bin")
    gone = not await store.exists(f"{prefix}/c.bin")
    stat = await store.stat(f"{prefix}/b.bin")
    return {
        "sizes": (info.size, streamed.size, copied.size, stat.size),
        "whole": hashlib.sha256(whole).hexdigest(),
        "part": part,
        "read": hashlib.sha256(b"".join(pieces)).hexdigest(),
        "listed": listed,
        "url": bool(url),
        "gone": gone,
        "metadata": dict(stat.metadata),
    }


def test_every_operation_runs_off_the_loop(storage: Storage) -> None:
    store = AsyncStorage(storage)

    async def main() -> tuple[dict[str, object], list[str]]:
        await _scenario(store, "warm")
        with loop_io_watch() as seen:
            result = await _scenario(store, "watched")
        return result, seen

    result, seen = asyncio.run(main())
    digest = hashlib.sha256(BODY).hexdigest()
    assert result == {
        "sizes": (MiB, MiB, MiB, MiB),
        "whole": digest,
        "part": BODY[10:20],
        "read": digest,
        "listed": ["watched/a.bin", "watched/b.bin", "watched/c.bin"],
        "url": True,
        "gone": True,
        "metadata": {"k": "v"},
    }
    assert seen == []


def test_the_detector_sees_the_sync_storage_on_the_loop(storage: Storage) -> None:
    storage.put("k.bin", b"x", content_type="text/plain")

    async def main() -> list[str]:
        storage.exists("k.bin")  # warm
        with loop_io_watch() as seen:
            storage.put("k2.bin", b"y", content_type="text/plain")
            storage.exists("k.bin")
        return seen

    assert asyncio.run(main()) != []


def test_errors_cross_the_thread_unchanged(storage: Storage) -> None:
    store = AsyncStorage(storage)
    with pytest.raises(ObjectNotFoundError):
        asyncio.run(store.stat("missing.bin"))
    with pytest.raises(ObjectNotFoundError):
        asyncio.run(store.get("missing.bin"))


def test_a_resumable_upload_runs_off_the_loop(storage: Storage, tmp_path: Path) -> None:
    sessions = FileUploadSessionStore(tmp_path / "sessions")
    uploads = AsyncResumableUploads(ResumableUploads(storage, sessions))
    data = BODY * 6  # 6 MiB: a 5 MiB chunk (S3's minimum part) and a 1 MiB one
    chunk = 5 * MiB

    async def upload(key: str) -> tuple[str, int]:
        session = await uploads.begin(
            key, len(data), chunk_size=chunk, content_type="audio/flac", sha256=None
        )
        await uploads.put_chunk(session, 1, data=data[chunk:])
        status = await uploads.put_chunk(
            session, 0, data=data[:chunk], sha256=hashlib.sha256(data[:chunk]).hexdigest()
        )
        assert status.missing == ()
        info = await uploads.complete(session)
        return session, info.size

    async def main() -> tuple[int, list[str]]:
        await upload("warm.flac")
        with loop_io_watch() as seen:
            _, size = await upload("watched.flac")
            aborted = await uploads.begin("x.flac", 10, chunk_size=10, content_type="audio/flac")
            await uploads.abort(aborted)
        return size, seen

    size, seen = asyncio.run(main())
    assert size == len(data) and seen == []
    with storage.open("watched.flac") as reader:
        assert reader.read() == data
