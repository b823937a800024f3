"""The reference app on its embedded defaults: every route, end to end, over real HTTP.

Callers log in as the demo's accounts (``listener`` the buyer, ``artist-ada`` the
creator who owns ``demo-1`` and ``demo-2``) or use the admin bearer token.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from veza_payments import sign_payload
from veza_reference._media import tone

ADMIN_ROUTES = [
    ("GET", "/api/v1/admin/findings", None),
    ("POST", "/api/v1/admin/reconcile", {"dry_run": True}),
    (
        "POST",
        "/api/v1/admin/transitions",
        {"machine": "order", "object_id": "none", "to_status": "expired", "reason": "test"},
    ),
    ("POST", "/api/v1/admin/transfers/none/retry", None),
    ("GET", "/api/v1/admin/webhooks", None),
    ("POST", "/api/v1/admin/uploads/reap", None),
]


@pytest.fixture
def http(demo: Any) -> Iterator[httpx.Client]:
    """An anonymous client."""
    with httpx.Client(base_url=demo.url, timeout=15) as session:
        yield session


@pytest.fixture
def buyer(demo: Any, login: Any) -> httpx.Client:
    """The demo's buyer, logged in."""
    return login(demo.url, "listener", demo.services.extra["demo_passwords"]["listener"])  # type: ignore[no-any-return]


@pytest.fixture
def creator(demo: Any, login: Any) -> httpx.Client:
    """The demo's creator (owner of demo-1 and demo-2), logged in."""
    return login(demo.url, "artist-ada", demo.services.extra["demo_passwords"]["artist-ada"])  # type: ignore[no-any-return]


def admin_headers(running: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.services.config.admin_token.reveal()}"}


def wait_for(predicate: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def upload(
    http: httpx.Client, data: bytes, *, title: str = "Test tone", order: list[int] | None = None
) -> dict[str, Any]:
    begin = http.post(
        "/api/v1/uploads",
        json={
            "filename": "tone.wav",
            "size": len(data),
            "content_type": "audio/wav",
            "chunk_size": 256 * 1024,
            "title": title,
        },
    )
    assert begin.status_code == 201, begin.text
    info = begin.json()
    indices = order or list(range(info["chunk_count"]))
    for index in indices:
        chunk = data[index * info["chunk_size"] : (index + 1) * info["chunk_size"]]
        response = http.put(f"/api/v1/uploads/{info['upload_id']}/chunks/{index}", content=chunk)
        assert response.status_code == 200, response.text
    done = http.post(f"/api/v1/uploads/{info['upload_id']}/complete")
    assert done.status_code == 201, done.text
    return done.json()


def test_chunked_upload_then_playback_through_the_edge(demo: Any, creator: httpx.Client) -> None:
    http = creator
    audio = tone([440.0, 660.0, 880.0] * 8)
    begin = http.post(
        "/api/v1/uploads",
        json={
            "filename": "x.wav",
            "size": len(audio),
            "content_type": "audio/wav",
            "chunk_size": 256 * 1024,
        },
    )
    upload_id, count = begin.json()["upload_id"], begin.json()["chunk_count"]
    assert count == 3
    for index in (2, 0, 0):  # out of order, and one chunk twice (a retried request)
        chunk = audio[index * 262144 : (index + 1) * 262144]
        http.put(f"/api/v1/uploads/{upload_id}/chunks/{index}", content=chunk).raise_for_status()
    status = http.get(f"/api/v1/uploads/{upload_id}").json()
    assert status["received"] == [0, 2] and not status["ready"]
    assert http.post(f"/api/v1/uploads/{upload_id}/complete").status_code == 409  # incomplete
    http.put(
        f"/api/v1/uploads/{upload_id}/chunks/1", content=audio[262144:524288]
    ).raise_for_status()
    track = http.post(f"/api/v1/uploads/{upload_id}/complete").json()
    assert track["storage_backend"] == "local" and track["storage_key"].startswith("tracks/")
    assert track["size"] == len(audio)

    redirect = http.get(track["stream_url"])
    assert redirect.status_code == 302 and redirect.headers["cache-control"] == "private, no-store"
    location = redirect.headers["location"]
    assert location.startswith(demo.edge_url) and "token=HS256-" in location
    before = demo.edge.stats["origin_fetches"]
    assert httpx.get(location).content == audio
    for _ in range(3):  # replays: the edge serves them, the origin is not asked again
        assert httpx.get(http.get(track["stream_url"]).headers["location"]).status_code == 200
    ranged = httpx.get(location, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == audio[100:200]
    assert demo.edge.stats["origin_fetches"] == before + 1
    forged = httpx.get(location.replace("token=HS256-", "token=HS256-x"))
    expired = httpx.get(
        demo.services.cdn.signed_url(track["storage_key"], now=time.time() - 10 * 86400)
    )
    assert (forged.status_code, expired.status_code) == (403, 403)
    assert "expired" in expired.text
    assert demo.edge.stats["origin_fetches"] == before + 1  # refused requests never reach it
    no_secret = http.get(f"/origin/{track['storage_key']}")
    assert no_secret.status_code == 403


def test_downloads_and_local_signed_files(demo: Any, creator: httpx.Client) -> None:
    http = creator
    audio = tone([220.0] * 4)
    track = upload(http, audio, title="Café tone")
    download = http.get(track["download_url"])
    assert download.status_code == 302
    served = http.get(download.headers["location"])
    assert served.status_code == 200 and served.content == audio
    disposition = served.headers["content-disposition"]
    assert (
        disposition.startswith("attachment")
        and "filename*=UTF-8''Caf%C3%A9%20tone.wav" in disposition
    )
    url = http.get(f"/api/v1/tracks/{track['id']}/link", params={"expires_in": 60}).json()["url"]
    assert http.get(url, headers={"Range": "bytes=-10"}).content == audio[-10:]
    unsatisfiable = http.get(url, headers={"Range": f"bytes={len(audio) + 5}-"})
    assert (
        unsatisfiable.status_code == 416
        and unsatisfiable.headers["content-range"] == f"bytes */{len(audio)}"
    )
    short = http.get(f"/api/v1/tracks/{track['id']}/link", params={"expires_in": 1}).json()["url"]
    time.sleep(2.1)
    gone = http.get(short)
    assert gone.status_code == 403 and "expired" in gone.json()["error"]["message"]
    assert http.get(url.replace("sig=", "sig=0")).status_code == 403


def test_buy_pay_refund_and_the_seller_side(
    demo: Any, buyer: httpx.Client, creator: httpx.Client
) -> None:
    services = demo.services
    http = buyer
    track = http.get("/api/v1/tracks/demo-1").json()
    assert http.get("/api/v1/tracks/demo-1/stream").status_code == 403  # not bought yet
    order = http.post("/api/v1/orders", json={"track_id": "demo-1"}).json()
    assert order["status"] == "requires_payment_method" and order["amount"] == track["price"]
    http.post(f"/api/v1/sandbox/payments/{order['payment_id']}/confirm").raise_for_status()
    paid = wait_for(
        lambda: (
            (o := http.get(f"/api/v1/orders/{order['order_id']}").json())["status"] == "paid" and o
        )
    )
    assert paid["captured"] == track["price"] and paid["buyer_id"] == "listener"
    assert http.get("/api/v1/tracks/demo-1/stream").status_code == 302  # bought: plays
    # the worker pays the seller (the sandbox's Stripe), keyed by the transfer row
    wait_for(
        lambda: (
            http.get(f"/api/v1/orders/{order['order_id']}").json()["transfers"][0]["status"]
            == "completed"
        )
    )
    assert http.post(f"/api/v1/orders/{order['order_id']}/refunds", json={}).status_code == 403
    refund = creator.post(f"/api/v1/orders/{order['order_id']}/refunds", json={"amount": 50})
    assert refund.status_code == 201, refund.text
    too_much = creator.post(f"/api/v1/orders/{order['order_id']}/refunds", json={"amount": 10**6})
    assert too_much.status_code == 422
    done = wait_for(
        lambda: (
            (o := http.get(f"/api/v1/orders/{order['order_id']}").json())["transfers"][0][
                "reversed"
            ]
            > 0
            and o
        )
    )
    assert done["status"] == "partially_refunded" and done["refunds"][0]["status"] == "succeeded"
    fake_stripe = services.sandbox.stripe
    (transfer,) = [
        t
        for t in fake_stripe.transfers.values()
        if t["metadata"]["veza_idempotency_key"].startswith(order["order_id"])
    ]
    assert transfer["amount_reversed"] == done["transfers"][0]["reversed"]
    assert all(v == 0 for v in services.ledger.journal.trial_balance().values())


def test_conflicting_bytes_for_a_received_chunk_are_a_409(creator: httpx.Client) -> None:
    audio = tone([440.0] * 12)
    begin = creator.post(
        "/api/v1/uploads",
        json={"filename": "c.wav", "size": len(audio), "chunk_size": 256 * 1024},
    ).json()
    path = f"/api/v1/uploads/{begin['upload_id']}/chunks/0"
    first = audio[: 256 * 1024]
    assert creator.put(path, content=first).status_code == 200
    assert creator.put(path, content=first).status_code == 200  # the same bytes: idempotent
    other = first[:-1] + bytes([first[-1] ^ 1])  # the header intact: still audio
    conflict = creator.put(path, content=other)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"]["type"] == "ChunkConflictError"


def test_completing_twice_returns_the_same_track(demo: Any, creator: httpx.Client) -> None:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from veza_reference._db import Track

    audio = tone([523.3] * 4)
    begin = creator.post(
        "/api/v1/uploads",
        json={"filename": "twice.wav", "size": len(audio), "chunk_size": 256 * 1024},
    ).json()
    upload_id = begin["upload_id"]
    for index in range(begin["chunk_count"]):
        chunk = audio[index * 262144 : (index + 1) * 262144]
        creator.put(f"/api/v1/uploads/{upload_id}/chunks/{index}", content=chunk).raise_for_status()
    first = creator.post(f"/api/v1/uploads/{upload_id}/complete")
    again = creator.post(f"/api/v1/uploads/{upload_id}/complete")  # a retried lost response
    assert first.status_code == again.status_code == 201, again.text
    assert first.json() == again.json()
    with Session(demo.services.engine) as session:
        rows = session.scalars(sa.select(Track).where(Track.storage_key == begin["key"])).all()
    assert len(rows) == 1


def test_a_full_refund_whose_response_is_lost_records_the_provider_id(
    demo: Any, buyer: httpx.Client, creator: httpx.Client
) -> None:
    """Issue 14's acceptance through the app: the PSP commits the full refund, the
    response is lost; the app still answers success and records the refund's id."""
    from veza_payments import refund_id_for
    from veza_payments.testing import Fault

    order = buyer.post("/api/v1/orders", json={"track_id": "demo-2"}).json()
    buyer.post(f"/api/v1/sandbox/payments/{order['payment_id']}/confirm").raise_for_status()
    wait_for(lambda: buyer.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "paid")
    fake = demo.services.sandbox.hyperswitch
    fake.inject(Fault("drop", after_commit=True, method="POST", path_prefix="/refunds"))
    refund = creator.post(f"/api/v1/orders/{order['order_id']}/refunds", json={})  # FULL
    assert refund.status_code == 201, refund.text
    answer = refund.json()
    expected = refund_id_for(
        answer["refund_id"], namespace=demo.services.hyperswitch.idempotency_namespace
    )
    assert answer["provider_refund_id"] == expected and answer["amount"] == order["amount"]
    assert fake.pending_faults == 0  # the response to the committed refund was lost
    posts = [
        r
        for r in fake.requests
        if r.method == "POST" and r.path == "/refunds" and expected.encode() in r.body
    ]
    reads = [r for r in fake.requests if r.method == "GET" and r.path == f"/refunds/{expected}"]
    assert len(posts) == 1 and reads  # the lost attempt, then resolved by reading the id
    assert expected in fake.refunds  # the provider holds exactly that refund, once
    refunded = [r for r in fake.refunds.values() if r["payment_id"] == order["payment_id"]]
    assert len(refunded) == 1
    rows = creator.get(f"/api/v1/orders/{order['order_id']}").json()["refunds"]
    assert [r["provider_refund_id"] for r in rows] == [expected]


def _expire(services: Any, upload_id: str) -> None:
    """Move an upload session's expiry into the past (as if its TTL had run out)."""
    import sqlalchemy as sa

    from veza_reference._db import UPLOAD_SESSIONS

    with services.engine.begin() as connection:
        connection.execute(
            sa.update(UPLOAD_SESSIONS)
            .where(UPLOAD_SESSIONS.c.id == upload_id)
            .values(expires_at=time.time() - 60)
        )


def _session_rows(services: Any, upload_id: str) -> int:
    import sqlalchemy as sa

    from veza_reference._db import UPLOAD_SESSIONS

    with services.engine.connect() as connection:
        query = sa.select(sa.func.count()).where(UPLOAD_SESSIONS.c.id == upload_id)
        return int(connection.execute(query).scalar_one())


def test_the_admin_route_reaps_expired_uploads(demo: Any, creator: httpx.Client) -> None:
    begin = creator.post(
        "/api/v1/uploads", json={"filename": "old.wav", "size": 300_000, "chunk_size": 262_144}
    ).json()
    upload_id = begin["upload_id"]
    creator.put(f"/api/v1/uploads/{upload_id}/chunks/1", content=b"x" * 37_856).raise_for_status()
    fresh = creator.post(
        "/api/v1/uploads", json={"filename": "new.wav", "size": 300_000, "chunk_size": 262_144}
    ).json()
    _expire(demo.services, upload_id)
    reaped = creator.post("/api/v1/admin/uploads/reap", headers=admin_headers(demo))
    assert reaped.status_code == 200, reaped.text
    assert reaped.json()["reaped"] >= 1
    assert _session_rows(demo.services, upload_id) == 0  # the session and its chunks are gone
    assert _session_rows(demo.services, fresh["upload_id"]) == 1  # a live upload is kept
    assert creator.get(f"/api/v1/uploads/{upload_id}").status_code == 404


def test_the_webhook_endpoint(demo: Any, http: httpx.Client) -> None:
    body = json.dumps(
        {"event_id": "evt_x", "event_type": "mandate_revoked", "content": {}}
    ).encode()
    key = demo.services.sandbox.webhook_key
    ok = http.post(
        "/webhooks/hyperswitch",
        content=body,
        headers={"x-webhook-signature-512": sign_payload(body, key)},
    )
    assert ok.status_code == 200 and ok.json() == {"result": "skipped"}
    forged = http.post(
        "/webhooks/hyperswitch", content=body, headers={"x-webhook-signature-512": "0" * 128}
    )
    assert forged.status_code == 401
    log = http.get(
        "/api/v1/admin/webhooks", params={"invalid_only": True}, headers=admin_headers(demo)
    ).json()
    assert (
        log
        and log[0]["processing_result"] == "signature_invalid"
        and log[0]["source_ip"] == "127.0.0.1"
    )
    huge = http.post("/webhooks/hyperswitch", content=b"{" + b" " * 70_000 + b"}")
    assert huge.status_code == 413 and huge.json() == {"result": "payload_too_large"}
    log = http.get(
        "/api/v1/admin/webhooks", params={"invalid_only": True}, headers=admin_headers(demo)
    ).json()
    assert log[0]["processing_result"].startswith("refused: body_too_large (")


def test_a_refused_oversized_webhook_is_recorded(demo: Any, http: httpx.Client) -> None:
    """A 413 delivery (declared too large, never read) still leaves a webhook-log row."""
    headers = admin_headers(demo)
    request_id = "req-too-large-413"
    before = http.get("/api/v1/admin/webhooks", params={"limit": 500}, headers=headers).json()
    limit = demo.services.intake.max_body
    huge = http.post(
        "/webhooks/hyperswitch",
        content=b"x" * (limit + 1),
        headers={"x-request-id": request_id, "x-webhook-signature-512": "0" * 128},
    )
    assert huge.status_code == 413
    after = http.get("/api/v1/admin/webhooks", params={"limit": 500}, headers=headers).json()
    # other flows' deliveries may land meanwhile: count this request's rows only
    assert not [r for r in before if r["request_id"] == request_id]
    new = [r for r in after if r["request_id"] == request_id]
    assert len(new) == 1
    assert new[0]["processing_result"] == (
        f"refused: body_too_large (limit {limit}, received 0, declared {limit + 1})"
    )
    assert new[0]["signature_valid"] is False and new[0]["source_ip"] == "127.0.0.1"


def test_subscription_gate_needs_the_payment(demo: Any, login: Any, new_user: Any) -> None:
    user_id, password = new_user(demo.services, "creator", "creator-9")
    http = login(demo.url, user_id, password)
    created = http.post("/api/v1/subscriptions", json={"plan": "creator"}).json()
    assert created["subscription_status"] == "pending_payment"
    refused = http.post("/api/v1/users/creator-9/distribution")
    assert refused.status_code == 402 and "complete payment" in refused.json()["error"]["message"]
    assert http.post("/api/v1/users/nobody/distribution").status_code == 403
    http.post(f"/api/v1/sandbox/payments/{created['payment_id']}/confirm").raise_for_status()
    wait_for(lambda: http.get("/api/v1/users/creator-9/distribution").json()["eligible"])
    assert http.post("/api/v1/users/creator-9/distribution").status_code == 202


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_every_admin_route_needs_the_token(
    demo: Any, http: httpx.Client, method: str, path: str, body: Any
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-of-sufficient-length"},
        {"Authorization": f"Basic {demo.services.config.admin_token.reveal()}"},
    ):
        assert http.request(method, path, json=body, headers=headers).status_code == 401
    assert http.request(method, path, json=body, headers=admin_headers(demo)).status_code != 401


def test_admin_reconcile_and_force(demo: Any, http: httpx.Client, buyer: httpx.Client) -> None:
    headers = admin_headers(demo)
    report = http.post(
        "/api/v1/admin/reconcile",
        json={"dry_run": True, "rules": ["stuck_orders"]},
        headers=headers,
    ).json()
    assert report["dry_run"] is True and "stuck_orders" in report["examined"]
    order = buyer.post("/api/v1/orders", json={"track_id": "demo-2"}).json()
    forced = http.post(
        "/api/v1/admin/transitions",
        headers=headers,
        json={
            "machine": "order",
            "object_id": order["order_id"],
            "to_status": "cancelled",
            "reason": "customer asked by phone",
        },
    )
    assert forced.status_code == 200 and forced.json()["to"] == "cancelled"
    assert forced.json()["actor"].startswith("admin:")
    bad = http.post(
        "/api/v1/admin/transitions",
        headers=headers,
        json={
            "machine": "order",
            "object_id": order["order_id"],
            "to_status": "nope",
            "reason": "typo",
        },
    )
    assert bad.status_code == 400


def test_operations_endpoints(demo: Any, http: httpx.Client, creator: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["ready"] and set(ready["checks"]) == {"database", "storage", "ledger_schema"}
    ice = creator.get("/api/v1/config/webrtc")
    assert ice.headers["cache-control"] == "private, no-store" and ice.json()["hasTurn"] is False
    assert creator.get("/api/v1/tracks/demo-1/stream").status_code == 302
    metrics = http.get("/metrics").text
    for name in (
        "veza_cdn_",
        "veza_ledger_open_findings",
        "veza_edge_requests_total",
        "veza_app_playback_redirects_total",
    ):
        assert name in metrics
    assert http.get("/api/v1/tracks/unknown-track/stream").status_code == 404
    assert creator.post("/api/v1/uploads", json={"filename": "", "size": 0}).status_code == 422


def test_the_demo_command(tmp_path: Any) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "veza_reference._demo",
            "--once",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "veza demo is running: http://127.0.0.1:" in result.stdout
    token_file = tmp_path / "admin-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.read_text().strip() not in result.stdout + result.stderr
    # the demo accounts' passwords are shown once, when they are created
    for user_id in ("listener", "artist-ada", "admin"):
        assert f" {user_id} " in result.stdout and "password" in result.stdout
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "veza_reference._demo",
            "--once",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "password " not in again.stdout and "were shown when created" in again.stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"APP_ENV": "production"}, "VEZA_DATABASE_URL"),
        ({"APP_ENV": "production", "VEZA_DATABASE_URL": "sqlite://"}, "VEZA_ADMIN_TOKEN"),
        (
            {
                "APP_ENV": "production",
                "VEZA_DATABASE_URL": "sqlite://",
                "VEZA_ADMIN_TOKEN": "a-long-enough-admin-token",
            },
            "VEZA_SESSION_SECRET",
        ),
        ({"VEZA_SESSION_SECRET": "too-short"}, "VEZA_SESSION_SECRET"),
        ({"VEZA_LOGIN_RATE": "ten"}, "VEZA_LOGIN_RATE"),
        ({"VEZA_TURN_RATE": "0/60"}, "VEZA_TURN_RATE"),
        ({"VEZA_REDIS_URL": "http://127.0.0.1:6379"}, "VEZA_REDIS_URL"),
        (
            {
                "APP_ENV": "production",
                "VEZA_DATABASE_URL": "sqlite://",
                "VEZA_ADMIN_TOKEN": "a-long-enough-admin-token",
                "VEZA_SESSION_SECRET": "s" * 32,
                "VEZA_FAST_PASSWORD_HASHING": "true",
            },
            "VEZA_FAST_PASSWORD_HASHING",
        ),
        ({"VEZA_PORT": "http"}, "VEZA_PORT"),
        ({"VEZA_PUBLIC_URL": "example.org"}, "VEZA_PUBLIC_URL"),
        ({"VEZA_LOCAL_EDGE": "maybe"}, "VEZA_LOCAL_EDGE"),
        ({"VEZA_ADMIN_TOKEN": "short"}, "VEZA_ADMIN_TOKEN"),
        ({"VEZA_PAYMENTS_SANDBOX": "false"}, "HYPERSWITCH_API_KEY"),
        ({"VEZA_WORKER_INTERVAL": "-1"}, "VEZA_WORKER_INTERVAL"),
        ({"VEZA_HLS_JS_PATH": "/nonexistent/hls.js"}, "VEZA_HLS_JS_PATH"),
    ],
)
def test_misconfiguration_names_the_variable(env: dict[str, str], variable: str) -> None:
    from veza_reference import AppConfig, AppConfigurationError

    with pytest.raises(AppConfigurationError, match=variable):
        AppConfig.from_env(env)


def test_secrets_stay_out_of_the_config_repr() -> None:
    from veza_reference import AppConfig

    config = AppConfig.from_env({"VEZA_ADMIN_TOKEN": "a-very-secret-admin-token"})
    assert "a-very-secret-admin-token" not in repr(config)


def test_storage_is_configured_with_the_new_names(tmp_path: Any) -> None:
    """The app fills ``VEZA_STORAGE_*`` and passes ``production=`` itself: no deprecated
    name is read (pytest turns veza-storage's DeprecationWarning into an error)."""
    from veza_reference._services import services_from

    environ = {
        "VEZA_DATA_DIR": str(tmp_path),
        "VEZA_WORKERS": "false",
        "VEZA_LOCAL_EDGE": "false",
        "VEZA_PAYMENTS_SANDBOX": "false",
        "HYPERSWITCH_API_KEY": "snd_test_key_for_config_only",
        "HYPERSWITCH_BASE_URL": "http://127.0.0.1:9",
        "HYPERSWITCH_WEBHOOK_KEYS": "whsec-config-only",
    }
    with services_from(environ) as services:
        assert services.storage_config.local_root == tmp_path / "storage"
        assert services.storage_config.production is False
        assert services.storage_config.public_url == f"{services.public_url}/files"
        assert services.storage_config.signing_key  # generated, handed over typed
        assert "VEZA_STORAGE_SIGNING_KEY" not in services.env


def test_a_lost_dispute_reaches_the_ledger_through_the_webhook(
    demo: Any, buyer: httpx.Client, http: httpx.Client
) -> None:
    services = demo.services
    order = buyer.post("/api/v1/orders", json={"track_id": "demo-1"}).json()
    buyer.post(f"/api/v1/sandbox/payments/{order['payment_id']}/confirm").raise_for_status()
    paid = wait_for(
        lambda: (
            (o := buyer.get(f"/api/v1/orders/{order['order_id']}").json())["status"] == "paid" and o
        )
    )
    key = services.sandbox.webhook_key
    for status in ("dispute_opened", "dispute_lost"):
        body = json.dumps(
            {
                "event_id": f"evt_{status}_{order['order_id']}",
                "event_type": status,
                "content": {
                    "type": "dispute_details",
                    "object": {
                        "dispute_id": f"dp_{order['order_id'][:20]}",
                        "payment_id": order["payment_id"],
                        "amount": str(paid["captured"]),
                        "currency": paid["currency"],
                        "dispute_stage": "dispute",
                        "dispute_status": status,
                    },
                },
                "timestamp": "2026-12-02T12:00:00.000Z",
            }
        ).encode()
        answer = http.post(
            "/webhooks/hyperswitch",
            content=body,
            headers={"x-webhook-signature-512": sign_payload(body, key)},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"result": "ok"}
    (dispute,) = services.ledger.disputes.of_order(order["order_id"])
    assert dispute.status == "lost"
    assert all(v == 0 for v in services.ledger.journal.trial_balance().values())
