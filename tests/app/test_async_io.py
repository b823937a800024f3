"""No blocking I/O on the app's event loop: Stripe, webhooks and storage (issue 18).

The reference app runs on its embedded defaults under uvicorn in its thread ``app``;
the test drives it over real HTTP from its own thread while ``loop_io_watch`` (CPython
audit hooks, no timing) records every file opened, renamed or listed, every name
resolved and every blocking socket connected *on the loop's thread*, and a SQLAlchemy
event records every SQL statement executed there (a pooled database connection does
no audited I/O: libpq's and sqlite's reads and writes are C calls). The scenario: a
purchase settled by a signed webhook delivery (the sandbox's emitter, and one posted
here), the seller paid by a Stripe Connect transfer, a chunked upload (the async chunk
route) and its download. It runs once to warm imports, then watched. The ledger's
workers make the Stripe call in their own thread, so it is watched as part of the app
but never on the loop; ``AsyncStripeConnect`` itself is watched on a loop in
veza-payments' ``test_the_async_client_does_no_blocking_io_on_the_loop``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from veza_loopwatch import loop_io_watch
from veza_payments import sign_payload
from veza_reference._media import tone


@pytest.fixture
def buyer(demo: Any, login: Any) -> httpx.Client:
    return login(demo.url, "listener", demo.services.extra["demo_passwords"]["listener"])  # type: ignore[no-any-return]


@pytest.fixture
def creator(demo: Any, login: Any) -> httpx.Client:
    return login(demo.url, "artist-ada", demo.services.extra["demo_passwords"]["artist-ada"])  # type: ignore[no-any-return]


def _app_thread(demo: Any) -> threading.Thread:
    (thread,) = [t for _, t in demo._servers if t.name == "app"]
    return thread  # type: ignore[no-any-return]


def _wait_for(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _buy_and_pay_the_seller(demo: Any, buyer: httpx.Client, track_id: str) -> dict[str, Any]:
    order = buyer.post("/api/v1/orders", json={"track_id": track_id})
    assert order.status_code == 201, order.text
    made = order.json()
    buyer.post(f"/api/v1/sandbox/payments/{made['payment_id']}/confirm").raise_for_status()
    path = f"/api/v1/orders/{made['order_id']}"
    _wait_for(lambda: buyer.get(path).json()["status"] == "paid")  # the emitter's webhook
    transfers = _wait_for(
        lambda: [t for t in buyer.get(path).json()["transfers"] if t["status"] == "completed"]
    )
    body = json.dumps(
        {"event_id": f"evt_{uuid.uuid4().hex}", "event_type": "mandate_revoked", "content": {}}
    ).encode()
    signature = sign_payload(body, demo.services.sandbox.webhook_key)
    delivered = buyer.post(
        "/webhooks/hyperswitch", content=body, headers={"x-webhook-signature-512": signature}
    )
    assert delivered.status_code == 200, delivered.text
    return {"order": made["order_id"], "transfers": transfers}


def _upload_and_download(creator: httpx.Client, audio: bytes) -> bytes:
    begin = creator.post(
        "/api/v1/uploads",
        json={
            "filename": "loop.wav",
            "size": len(audio),
            "content_type": "audio/wav",
            "chunk_size": 256 * 1024,
            "title": "Loop watch",
        },
    )
    assert begin.status_code == 201, begin.text
    info = begin.json()
    for index in range(info["chunk_count"]):
        chunk = audio[index * info["chunk_size"] : (index + 1) * info["chunk_size"]]
        put = creator.put(f"/api/v1/uploads/{info['upload_id']}/chunks/{index}", content=chunk)
        assert put.status_code == 200, put.text
    done = creator.post(f"/api/v1/uploads/{info['upload_id']}/complete")
    assert done.status_code == 201, done.text
    download = creator.get(done.json()["download_url"])
    assert download.status_code == 302, download.text
    return creator.get(download.headers["location"]).content


def test_no_blocking_io_on_the_event_loop(
    demo: Any, buyer: httpx.Client, creator: httpx.Client
) -> None:
    audio = tone([330.0, 495.0] * 6)
    thread = _app_thread(demo)
    stripe = demo.services.sandbox.stripe
    _buy_and_pay_the_seller(demo, buyer, "demo-2")  # warm: first imports, pools
    assert _upload_and_download(creator, audio) == audio
    statements: list[str] = []

    def on_loop(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == thread.ident:
            statements.append(statement[:120])

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_loop)
    try:
        with loop_io_watch(thread) as seen:
            paid = _buy_and_pay_the_seller(demo, buyer, "demo-1")
            downloaded = _upload_and_download(creator, audio)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_loop)
    assert downloaded == audio
    assert statements == [], "\n".join(statements)
    keys = [t["metadata"]["veza_idempotency_key"] for t in stripe.transfers.values()]
    assert any(key.startswith(paid["order"]) for key in keys)  # Stripe was called
    assert seen == [], "\n".join(seen)
