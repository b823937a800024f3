"""veza-storage on an event loop: thread offload beside native async clients, one run.

Issue 18 asks for async storage operations and to measure a thread-offload wrapper
beside a native async client before choosing. Each row runs the same workload under one
asyncio loop: ``CONCURRENCY`` tasks put ``OBJECTS`` objects of ``SIZE`` bytes, then get
them back whole. Two figures per row:

* throughput: MiB moved (put + get) per wall-clock second;
* event-loop lag: a ticker on the same loop sleeps 5 ms again and again and records how
  late it wakes (p50, p99, max): what every other request of the process would wait.

Rows, S3 (moto's server in its own process, so it does not share our GIL):

* ``S3Storage`` called on the loop (what an integrator does without a twin);
* ``AsyncStorage(S3Storage)``: each call in a worker thread (``asyncio.to_thread``);
* aiobotocore ``put_object``/``get_object``: the native async client (without veza's
  key validation, multipart, or ``if_absent``).

Local disk (``fsync=False`` everywhere, so the disk's flush does not dominate):

* ``LocalStorage`` called on the loop; ``AsyncStorage(LocalStorage)``;
* aiofiles write and read (no temporary file, no atomic rename: less work than veza).

The native rows need packages veza-storage does not depend on; aiobotocore pins botocore
to a few patch releases (3.10.0: ``>=1.43.115,<1.43.118``), which excludes the workspace's
boto3, so they run in a venv of their own::

    uv venv /tmp/bench-aio && uv pip install --python /tmp/bench-aio/bin/python \\
        -e 'packages/veza-storage[s3]' aiobotocore==3.10.0 'moto[server,s3]' aiofiles==25.1.0
    /tmp/bench-aio/bin/python bench/storage_async.py

Under ``uv run python bench/storage_async.py`` those rows print "not installed".
``VEZA_BENCH_ROUNDS`` (default 3) rounds, rows interleaved; medians printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

from _ports import free_port

from veza_storage import AsyncStorage, LocalStorage, S3Storage, Storage

MiB = 1024 * 1024
ROUNDS = int(os.environ.get("VEZA_BENCH_ROUNDS", "3"))
CONCURRENCY = int(os.environ.get("VEZA_BENCH_CONCURRENCY", "8"))
OBJECTS = int(os.environ.get("VEZA_BENCH_OBJECTS", "48"))
SIZE = int(os.environ.get("VEZA_BENCH_SIZE", str(MiB)))
TICK = 0.005
CREDENTIALS = {
    "aws_access_key_id": "bench-access-key",
    "aws_secret_access_key": "bench-secret-key",
    "region_name": "us-east-1",
}

Op = Callable[[str, bytes], Awaitable[None]]
Get = Callable[[str], Awaitable[bytes]]


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - started - TICK)


async def _workload(put: Op, get: Get) -> tuple[float, list[float]]:
    body = os.urandom(SIZE)
    keys = [f"bench/{uuid.uuid4().hex}.bin" for _ in range(OBJECTS)]
    limit = asyncio.Semaphore(CONCURRENCY)
    lags: list[float] = []
    stop = asyncio.Event()

    async def one(key: str) -> None:
        async with limit:
            await put(key, body)
        async with limit:
            got = await get(key)
        if len(got) != SIZE:
            msg = f"read {len(got)} bytes of {SIZE}"
            raise RuntimeError(msg)

    ticker = asyncio.create_task(_ticker(lags, stop))
    await asyncio.sleep(TICK)  # the ticker's first sleep starts before the work
    started = time.perf_counter()
    await asyncio.gather(*(one(key) for key in keys))
    elapsed = time.perf_counter() - started
    stop.set()
    await ticker
    return 2 * OBJECTS * SIZE / MiB / elapsed, lags


def _on_loop(storage: Storage) -> tuple[Op, Get]:
    async def put(key: str, body: bytes) -> None:
        storage.put(key, body, content_type="application/octet-stream")

    async def get(key: str) -> bytes:
        with storage.open(key) as reader:
            return reader.read()

    return put, get


def _offloaded(storage: Storage) -> tuple[Op, Get]:
    store = AsyncStorage(storage)

    async def put(key: str, body: bytes) -> None:
        await store.put(key, body, content_type="application/octet-stream")

    return put, store.get


@contextlib.asynccontextmanager
async def _aiobotocore(endpoint: str, bucket: str) -> AsyncIterator[tuple[Op, Get]]:
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=endpoint, **CREDENTIALS) as s3:

        async def put(key: str, body: bytes) -> None:
            await s3.put_object(Bucket=bucket, Key=key, Body=body)

        async def get(key: str) -> bytes:
            answer = await s3.get_object(Bucket=bucket, Key=key)
            async with answer["Body"] as stream:
                data: bytes = await stream.read()
            return data

        yield put, get


def _aiofiles(root: Path) -> tuple[Op, Get]:
    import aiofiles

    async def put(key: str, body: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        async with aiofiles.open(path, "wb") as f:
            await f.write(body)

    async def get(key: str) -> bytes:
        async with aiofiles.open(root / key, "rb") as f:
            data: bytes = await f.read()
        return data

    return put, get


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


async def _round(endpoint: str, bucket: str, root: Path) -> dict[str, tuple[float, list[float]]]:
    import boto3

    s3 = S3Storage(
        bucket,
        endpoint_url=endpoint,
        access_key_id=CREDENTIALS["aws_access_key_id"],
        secret_access_key=CREDENTIALS["aws_secret_access_key"],
        profile="minio",
    )
    boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)  # warm botocore's loaders
    local = LocalStorage(root / "veza", fsync=False)
    out: dict[str, tuple[float, list[float]]] = {}
    out["S3: S3Storage on the loop"] = await _workload(*_on_loop(s3))
    out["S3: AsyncStorage(S3Storage), threads"] = await _workload(*_offloaded(s3))
    if _installed("aiobotocore"):
        async with _aiobotocore(endpoint, bucket) as (put, get):
            out["S3: aiobotocore (native)"] = await _workload(put, get)
    out["disk: LocalStorage on the loop"] = await _workload(*_on_loop(local))
    out["disk: AsyncStorage(LocalStorage), threads"] = await _workload(*_offloaded(local))
    if _installed("aiofiles"):
        out["disk: aiofiles (native API, threads inside)"] = await _workload(
            *_aiofiles(root / "aiofiles")
        )
    return out


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    import boto3

    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; boto3 {boto3.__version__}; "
        f"{OBJECTS} objects x {SIZE // 1024} KiB, {CONCURRENCY} at a time, {ROUNDS} rounds"
    )
    results: dict[str, list[tuple[float, list[float]]]] = {}
    with _moto() as endpoint, tempfile.TemporaryDirectory() as tmp:
        bucket = "bench-" + uuid.uuid4().hex[:8]
        boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(Bucket=bucket)
        for index in range(ROUNDS):
            rows = asyncio.run(_round(endpoint, bucket, Path(tmp) / str(index)))
            for name, value in rows.items():
                results.setdefault(name, []).append(value)
    print(f"| {'row':44} | MiB/s | lag p50 ms | lag p99 ms | lag max ms |")
    print(f"|{'-' * 46}|------:|-----------:|-----------:|-----------:|")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        lags: list[float] = [lag for _, ls in runs for lag in ls]
        print(
            f"| {name:44} | {rate:5.0f} | {_ms(lags, 0.5):10.1f} | {_ms(lags, 0.99):10.1f} "
            f"| {_ms(lags, 1.0):10.1f} |"
        )
    for module in ("aiobotocore", "aiofiles"):
        if not _installed(module):
            print(f"(not installed: {module}; see this script's docstring for its venv)")


if __name__ == "__main__":
    main()
