"""``AsyncWebhookIntake``: the intake's async twin never runs a blocking step on the loop.

Each test proves it without timing: the log and the handler record the thread they run
on, and a handler blocks until a coroutine on the loop releases it (if the handler ran
on the loop, that coroutine could never run and the handler's wait would give up).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import pytest

from veza_payments import (
    AsyncWebhookIntake,
    InMemoryWebhookLog,
    WebhookEvent,
    WebhookIntake,
    WebhookRecord,
    sign_payload,
)

KEY = "whsec_async_intake"


class ThreadRecordingLog(InMemoryWebhookLog):
    """The in-memory log, noting the thread of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def record(self, record: WebhookRecord) -> None:
        self.threads.append(threading.get_ident())
        super().record(record)


def _body(event_id: str) -> bytes:
    event = {"event_id": event_id, "event_type": "payment_succeeded", "content": {"object": {}}}
    return json.dumps(event).encode()


def _signed(body: bytes) -> dict[str, str]:
    return {"x-webhook-signature-512": sign_payload(body, KEY)}


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 7):
        await asyncio.sleep(0)
        yield body[start : start + 7]


@pytest.mark.parametrize("mode", ["handle", "handle_stream"])
def test_the_handler_and_the_log_write_run_off_the_loop(mode: str) -> None:
    log = ThreadRecordingLog()
    intake = AsyncWebhookIntake(log, KEY)
    released = threading.Event()
    seen: list[tuple[int, bool]] = []

    @intake.on("payment_succeeded")
    def paid(event: WebhookEvent) -> None:
        # Blocks until a coroutine on the loop sets the event: only possible off the loop.
        seen.append((threading.get_ident(), released.wait(timeout=10)))

    async def main() -> tuple[int, int, int]:
        loop_thread = threading.get_ident()
        body = _body("evt_async_1")

        async def release() -> None:
            released.set()  # runs only if the loop is free while the handler waits

        if mode == "handle":
            call = intake.handle(_signed(body), body, source_ip="10.0.0.1")
        else:
            call = intake.handle_stream(_signed(body), _chunks(body), source_ip="10.0.0.1")
        outcome, _ = await asyncio.gather(call, release())
        return loop_thread, outcome.status, len(log.records)

    loop_thread, status, records = asyncio.run(main())
    assert status == 200 and records == 1
    assert seen and seen[0][1], "the handler was never released by the loop"
    assert seen[0][0] != loop_thread
    assert log.threads and loop_thread not in log.threads


def test_refusals_are_recorded_off_the_loop_too() -> None:
    log = ThreadRecordingLog()
    intake = AsyncWebhookIntake(log, KEY, max_body=16)

    async def main() -> tuple[int, int, int]:
        body = _body("evt_big")
        bad = await intake.handle({"x-webhook-signature-512": "00"}, body)
        big = await intake.handle_stream(_signed(body), _chunks(body))
        return threading.get_ident(), bad.status, big.status

    loop_thread, bad, big = asyncio.run(main())
    assert (bad, big) == (413, 413)
    assert len(log.threads) == 2 and loop_thread not in log.threads


def test_the_twin_shares_the_sync_intake_and_its_dedupe() -> None:
    log = InMemoryWebhookLog()
    intake = AsyncWebhookIntake(log, KEY)
    calls: list[str] = []
    intake.on("payment_*", lambda event: calls.append(event.event_id or ""))
    body = _body("evt_twice")

    async def main() -> list[str]:
        first = await intake.handle(_signed(body), body)
        again = await intake.handle(_signed(body), body)
        wrong = await intake.handle({"x-webhook-signature-512": "ab" * 64}, body)
        return [first.record.processing_result, again.record.processing_result, str(wrong.status)]

    assert asyncio.run(main()) == ["ok", "skipped", "401"]
    assert calls == ["evt_twice"]
    assert isinstance(intake.intake, WebhookIntake) and intake.log is log
    assert intake.handler_for("payment_failed") is not None
    assert KEY not in repr(intake)
