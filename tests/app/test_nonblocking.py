"""The event loop never waits for a library call, and bodies are read with a limit.

Each blocking test swaps a package call for a fake that blocks inside the call until
the test releases it, then checks that ``/healthz`` still answers meanwhile: a route
that ran the call on the event loop would freeze every other request of the process.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from veza_storage import ChunkTooLargeError, aread_limited


def _blocking(
    real: Callable[..., Any],
) -> tuple[Callable[..., Any], threading.Event, threading.Event]:
    entered, release = threading.Event(), threading.Event()

    def fake(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30), "the test never released the call"
        return real(*args, **kwargs)

    return fake, entered, release


def _healthz_while_blocked(url: str, entered: threading.Event, release: threading.Event) -> float:
    assert entered.wait(15), "the request never reached the blocking call"
    try:
        started = time.monotonic()
        answer = httpx.get(f"{url}/healthz", timeout=3)
        assert answer.status_code == 200
        return time.monotonic() - started
    finally:
        release.set()


@pytest.fixture
def creator(demo: Any, login: Any) -> httpx.Client:
    return login(demo.url, "artist-ada", demo.services.extra["demo_passwords"]["artist-ada"])  # type: ignore[no-any-return]


def test_a_slow_webhook_does_not_block_other_requests(
    demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = demo.services.intake.log  # the SQL write every delivery ends with
    fake, entered, release = _blocking(log.record)
    monkeypatch.setattr(log, "record", fake)
    result: dict[str, int] = {}
    sender = threading.Thread(
        target=lambda: result.update(
            status=httpx.post(
                f"{demo.url}/webhooks/hyperswitch", content=b"{}", timeout=30
            ).status_code
        )
    )
    sender.start()
    elapsed = _healthz_while_blocked(demo.url, entered, release)
    sender.join(30)
    assert elapsed < 2 and result["status"] == 401  # unsigned: refused, after the release


def test_a_slow_chunk_write_does_not_block_other_requests(
    demo: Any, creator: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    begin = creator.post(
        "/api/v1/uploads", json={"filename": "slow.wav", "size": 300_000, "chunk_size": 262_144}
    ).json()
    uploads = demo.services.uploads
    fake, entered, release = _blocking(uploads.put_chunk)
    monkeypatch.setattr(uploads, "put_chunk", fake)
    result: dict[str, int] = {}
    sender = threading.Thread(
        target=lambda: result.update(
            status=creator.put(
                f"/api/v1/uploads/{begin['upload_id']}/chunks/1", content=b"x" * 37_856
            ).status_code
        )
    )
    sender.start()
    elapsed = _healthz_while_blocked(demo.url, entered, release)
    sender.join(30)
    assert elapsed < 2 and result["status"] == 200


def _raw(url: str, request: bytes) -> tuple[int, float]:
    """Send ``request`` (headers only: the declared body never comes); status and time."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        head = sock.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1]), time.monotonic() - started


def test_an_oversized_webhook_is_refused_before_its_body_is_read(demo: Any) -> None:
    request = (
        b"POST /webhooks/hyperswitch HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    )
    status, elapsed = _raw(demo.url, request)
    assert status == 413 and elapsed < 5  # answered without waiting for 100 MB


def test_an_oversized_chunk_is_refused_before_its_body_is_read(
    demo: Any, creator: httpx.Client
) -> None:
    cookie = creator.headers["cookie"]
    csrf = creator.headers["x-csrf-token"]
    begin = creator.post(
        "/api/v1/uploads", json={"filename": "big.wav", "size": 600_000, "chunk_size": 262_144}
    ).json()
    for upload_id, expected in (("no-such-upload", 404), (begin["upload_id"], 413)):
        request = (
            f"PUT /api/v1/uploads/{upload_id}/chunks/0 HTTP/1.1\r\nHost: x\r\n"
            f"Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n"
            "Content-Length: 314572800\r\n\r\n"
        ).encode()
        status, elapsed = _raw(demo.url, request)
        assert status == expected and elapsed < 5  # answered without waiting for 300 MB
    # one byte over the session's chunk size is refused too, before it is read
    request = (
        f"PUT /api/v1/uploads/{begin['upload_id']}/chunks/0 HTTP/1.1\r\nHost: x\r\n"
        f"Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n"
        "Content-Length: 262145\r\n\r\n"
    ).encode()
    status, elapsed = _raw(demo.url, request)
    assert status == 413 and elapsed < 5
    assert creator.get(f"/api/v1/uploads/{begin['upload_id']}").json()["received"] == []
    anonymous = b"PUT /api/v1/uploads/x/chunks/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"
    assert _raw(demo.url, anonymous)[0] == 401


def test_aread_limited_stops_at_the_limit() -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"abcd"

    with pytest.raises(ChunkTooLargeError):
        asyncio.run(aread_limited(endless(), limit=10))
    assert consumed == 3  # 12 bytes: one part past the limit, never more

    async def small() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    assert asyncio.run(aread_limited(small(), limit=4, declared_length=4)) == b"abcd"
    with pytest.raises(ChunkTooLargeError):
        asyncio.run(aread_limited(small(), limit=3, declared_length=4))


def test_healthz_answers_while_every_worker_thread_is_busy(
    demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/healthz`` runs on the event loop, never queued behind the threadpool's work.

    Sync routes share Starlette's threadpool (40 threads by default). Under load it is
    full of storage, SQL and webhook work; a probe that needed a thread too would wait
    for one (and for the GIL twice more), which is the tail the ``bench/healthz.py``
    benchmark measured. Here every worker thread is held by a slow sync route: the
    probe must still answer.
    """
    from veza_reference import _routes_ops

    limiter_tokens = 40  # anyio's default thread limiter, which Starlette uses
    entered = threading.Semaphore(0)
    release = threading.Event()
    real = _routes_ops.check_schema

    def slow_schema_check(*args: Any, **kwargs: Any) -> Any:
        entered.release()
        assert release.wait(60), "the test never released the call"
        return real(*args, **kwargs)

    monkeypatch.setattr(_routes_ops, "check_schema", slow_schema_check)
    statuses: list[int] = []
    senders = [
        threading.Thread(
            target=lambda: statuses.append(httpx.get(f"{demo.url}/readyz", timeout=60).status_code)
        )
        for _ in range(limiter_tokens + 5)
    ]
    try:
        for sender in senders:
            sender.start()
        for _ in range(limiter_tokens):  # every worker thread is now inside a /readyz
            assert entered.acquire(timeout=30), "the threadpool never filled"
        answer = httpx.get(f"{demo.url}/healthz", timeout=5)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert not release.is_set() and len(statuses) == 0  # the pool was still full
    finally:
        release.set()
        for sender in senders:
            sender.join(60)
    assert len(statuses) == limiter_tokens + 5
