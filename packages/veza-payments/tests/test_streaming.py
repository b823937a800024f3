"""Streaming body limits: a body over the limit is never held, and still logged.

Bodies arrive as chunks; the helpers stop pulling at the chunk that crosses the limit
and refuse a declared ``Content-Length`` over it before pulling anything. Memory is
measured with ``tracemalloc`` around the call (the generators below reuse one chunk
object, so only what the code under test keeps is counted).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings, strategies as st

from veza_payments import (
    MAX_BODY,
    BodyTooLargeError,
    InMemoryWebhookLog,
    PaymentsConfigurationError,
    PaymentsError,
    WebhookEvent,
    WebhookIntake,
    aread_limited,
    read_limited,
    sign_payload,
)

KEY = "whsec_streaming_key"
HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)


class Source:
    """``total`` bytes in CHUNK-sized pieces, counting what was pulled."""

    def __init__(self, total: int, chunk: bytes = CHUNK) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.pulled < self.total:
            piece = self.chunk[: self.total - self.pulled]
            self.pulled += len(piece)
            yield piece

    async def stream(self) -> AsyncIterator[bytes]:
        for piece in self:
            await asyncio.sleep(0)
            yield piece


def _event(event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {"event_id": event_id, "event_type": "payment_succeeded", "content": {"object": {}}}
    ).encode()


def _signed(body: bytes, **extra: str) -> dict[str, str]:
    return {"x-webhook-signature-512": sign_payload(body, KEY), **extra}


# --------------------------------------------------------------------------- helpers


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.binary(max_size=50), max_size=20),
    st.integers(min_value=1, max_value=300),
)
def test_read_limited_returns_the_body_or_stops_at_the_crossing_chunk(
    chunks: list[bytes], limit: int
) -> None:
    pulled: list[bytes] = []

    def source() -> Iterator[bytes]:
        for chunk in chunks:
            pulled.append(chunk)
            yield chunk

    whole = b"".join(chunks)
    if len(whole) <= limit:
        assert read_limited(source(), limit=limit) == whole
        return
    with pytest.raises(BodyTooLargeError) as info:
        read_limited(source(), limit=limit)
    assert len(b"".join(pulled[:-1])) <= limit < len(b"".join(pulled))  # stopped there
    assert info.value.received == len(b"".join(pulled))
    assert info.value.head == whole[: min(1024, limit + 1)]
    assert (info.value.limit, info.value.declared_length) == (limit, None)
    assert asyncio.run(_async_refused(chunks, limit)) == info.value.received


async def _async_refused(chunks: list[bytes], limit: int) -> int:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    with pytest.raises(BodyTooLargeError) as info:
        await aread_limited(source(), limit=limit)
    return info.value.received


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    source = Source(HUNDRED_MB)
    with pytest.raises(BodyTooLargeError) as info:
        read_limited(source, limit=10, declared_length=11)
    assert source.pulled == 0 and info.value.received == 0
    assert info.value.declared_length == 11 and isinstance(info.value, PaymentsError)
    assert read_limited(Source(10), limit=10, declared_length=10) == b"x" * 10
    with pytest.raises(BodyTooLargeError):
        asyncio.run(aread_limited(Source(HUNDRED_MB).stream(), limit=10, declared_length=11))


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_the_limit_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(PaymentsConfigurationError):
        read_limited([b""], limit=bad)  # type: ignore[arg-type]


def test_the_refusal_never_shows_the_body_in_its_message() -> None:
    with pytest.raises(BodyTooLargeError) as info:
        read_limited([b"secret-token-" * 10], limit=8)
    assert "secret" not in str(info.value) and info.value.head.startswith(b"secret")


# --------------------------------------------------------------------------- the intake


def test_a_100_mb_body_is_never_buffered_and_is_logged() -> None:
    log = InMemoryWebhookLog()
    intake = WebhookIntake(log, KEY)
    source = Source(HUNDRED_MB)
    tracemalloc.start()
    try:
        outcome = intake.handle_stream({"user-agent": "x"}, source, source_ip="203.0.113.9")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status == 413
    assert peak < 1024 * 1024, peak  # the limit is 64 KiB; 100 MB never arrived
    assert source.pulled <= MAX_BODY + len(CHUNK)
    (record,) = log.records
    assert record is outcome.record
    assert record.processing_result == (
        f"refused: body_too_large (limit {MAX_BODY}, received {source.pulled})"
    )
    assert record.payload == "x" * 1024 and record.source_ip == "203.0.113.9"
    assert record.user_agent == "x"


def test_a_declared_100_mb_body_is_refused_before_reading_and_logged() -> None:
    log = InMemoryWebhookLog()
    source = Source(HUNDRED_MB)
    headers = {"Content-Length": str(HUNDRED_MB)}
    outcome = WebhookIntake(log, KEY).handle_stream(headers, source)
    assert outcome.status == 413 and source.pulled == 0
    assert log.records[0].processing_result == (
        f"refused: body_too_large (limit {MAX_BODY}, received 0, declared {HUNDRED_MB})"
    )


def test_the_async_intake_never_buffers_a_100_mb_body() -> None:
    log = InMemoryWebhookLog()
    intake = WebhookIntake(log, KEY)
    source = Source(HUNDRED_MB)

    async def scenario() -> tuple[int, int]:
        tracemalloc.start()
        try:
            outcome = await intake.ahandle_stream([("user-agent", "y")], source.stream())
            return outcome.status, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    status, peak = asyncio.run(scenario())
    assert status == 413 and peak < 1024 * 1024, peak
    assert source.pulled <= MAX_BODY + len(CHUNK)
    assert log.records[0].processing_result.startswith("refused: body_too_large")


def test_a_stream_within_the_limit_is_handled_like_a_body() -> None:
    log = InMemoryWebhookLog()
    seen: list[WebhookEvent] = []
    intake = WebhookIntake(log, KEY)
    intake.on("payment_succeeded", seen.append)
    body = _event()
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    outcome = intake.handle_stream(_signed(body), iter(pieces))
    assert (outcome.status, outcome.processing_result) == (200, "ok")
    assert log.records[0].payload == body.decode()

    async def stream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    again = asyncio.run(intake.ahandle_stream(_signed(body), stream()))
    assert (again.status, again.processing_result) == (200, "skipped")
    assert len(seen) == 1


def test_headers_over_the_limit_are_refused_with_431_and_logged() -> None:
    log = InMemoryWebhookLog()
    source = Source(100)
    intake = WebhookIntake(log, KEY, max_headers=1024)
    outcome = intake.handle_stream({"x-pad": "a" * 2000}, source)
    assert outcome.status == 431 and source.pulled == 0
    assert json.loads(outcome.body) == {"result": "headers_too_large"}
    assert log.records[0].processing_result == (
        "refused: headers_too_large (limit 1024, received 2005)"
    )
    body = _event()
    assert intake.handle({"x-pad": "a" * 2000, **_signed(body)}, body).status == 431
    assert len(log.records) == 2


def test_the_async_intake_runs_the_sync_work_off_the_event_loop() -> None:
    """A handler (or an SQL log) blocking 0.3 s leaves the caller's loop running."""
    log = InMemoryWebhookLog()
    intake = WebhookIntake(log, KEY)
    ran_on: list[str] = []

    def slow_handler(_event: WebhookEvent) -> None:
        ran_on.append(threading.current_thread().name)
        time.sleep(0.3)

    intake.on("payment_succeeded", slow_handler)

    async def scenario() -> tuple[int, int, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        body = _event("evt_a")
        first = await intake.ahandle(_signed(body), body)
        during_first = ticks
        body2 = _event("evt_b")

        async def stream() -> AsyncIterator[bytes]:
            yield body2

        second = await intake.ahandle_stream(_signed(body2), stream())
        stop.set()
        await task
        return first.status, second.status, min(during_first, ticks - during_first)

    first, second, ticks = asyncio.run(scenario())
    assert (first, second) == (200, 200)
    assert ticks >= 10, ticks  # the loop kept ticking while each handler slept
    assert all(name != "MainThread" for name in ran_on)
