"""The reference app with production settings: PostgreSQL, S3 (moto), Bunny via the edge.

The payment providers are remote services reached through ``HYPERSWITCH_*`` and
``STRIPE_*`` (their fakes, on 127.0.0.1, as real keys would be); no sandbox, no
in-process workers (production runs them as their own processes: the test runs one pass).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import sqlalchemy as sa

from veza_cdn import SigningError
from veza_ledger import ReconcileSettings, run_reversal_worker, run_sweep
from veza_reference._media import tone
from veza_reference._serve import worker_pass


@pytest.fixture
def http(prod_like: Any) -> Iterator[httpx.Client]:
    """An anonymous client."""
    with httpx.Client(base_url=prod_like.url, timeout=15) as session:
        yield session


@pytest.fixture
def buyer(prod_like: Any, login: Any) -> httpx.Client:
    """A buyer account (created by the fixture, as ``veza-reference add-user`` would)."""
    return login(prod_like.url, "buyer-p", prod_like.services.extra["passwords"]["buyer-p"])  # type: ignore[no-any-return]


@pytest.fixture
def seller(prod_like: Any, login: Any) -> httpx.Client:
    """A creator account."""
    return login(prod_like.url, "seller-p", prod_like.services.extra["passwords"]["seller-p"])  # type: ignore[no-any-return]


def _upload(http: httpx.Client, data: bytes) -> dict[str, Any]:
    begin = http.post(
        "/api/v1/uploads",
        json={
            "filename": "t.wav",
            "size": len(data),
            "content_type": "audio/wav",
            "chunk_size": 256 * 1024,
            "title": "prod tone",
        },
    ).json()
    for index in range(begin["chunk_count"]):
        chunk = data[index * begin["chunk_size"] : (index + 1) * begin["chunk_size"]]
        http.put(
            f"/api/v1/uploads/{begin['upload_id']}/chunks/{index}", content=chunk
        ).raise_for_status()
    done = http.post(f"/api/v1/uploads/{begin['upload_id']}/complete")
    assert done.status_code == 201, done.text
    return done.json()


def test_configuration_is_production(prod_like: Any) -> None:
    config = prod_like.services.config
    assert config.production and not config.payments_sandbox and not config.workers
    assert prod_like.services.engine.dialect.name == "postgresql"
    assert prod_like.services.storage_config.backend == "s3"


def test_upload_lands_in_s3_and_plays_through_the_edge(
    prod_like: Any, seller: httpx.Client
) -> None:
    http = seller
    audio = tone([330.0, 440.0] * 14)
    track = _upload(http, audio)
    assert track["storage_backend"] == "s3"
    extra = prod_like.services.extra
    s3 = boto3.client(
        "s3",
        endpoint_url=extra["s3_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    head = s3.head_object(Bucket=extra["bucket"], Key=track["storage_key"])
    assert head["ContentLength"] == len(audio)
    location = http.get(track["stream_url"]).headers["location"]
    assert location.startswith(prod_like.edge_url)
    before = prod_like.edge.stats["origin_fetches"]
    for _ in range(3):
        assert httpx.get(location).content == audio
    assert prod_like.edge.stats["origin_fetches"] == before + 1


def test_a_cdn_signing_failure_falls_back_to_the_presigned_s3_url(
    prod_like: Any, seller: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = seller
    track = _upload(http, tone([550.0] * 4))

    def broken(key: str, *, now: float | None = None) -> str:
        raise SigningError("the signing key is unreadable")

    monkeypatch.setattr(prod_like.services.cdn, "signed_url", broken)
    location = http.get(track["stream_url"]).headers["location"]
    extra = prod_like.services.extra
    assert (
        location.startswith(f"{extra['s3_endpoint']}/{extra['bucket']}/")
        and "X-Amz-Signature=" in location
    )
    assert httpx.get(location).status_code == 200
    metrics = http.get("/metrics").text
    assert 'veza_app_playback_redirects_total{source="fallback"}' in metrics


def test_payments_with_remote_providers_and_a_worker_pass(
    prod_like: Any, buyer: httpx.Client, seller: httpx.Client
) -> None:
    http = buyer
    extra = prod_like.services.extra
    fake, stripe = extra["fake_hyperswitch"], extra["fake_stripe"]
    track = _upload(seller, tone([660.0] * 4))
    order = http.post("/api/v1/orders", json={"track_id": track["id"]}).json()
    payment = fake.set_payment_status(order["payment_id"], "succeeded")
    body = fake.webhook_body("payment_succeeded", payment, event_id=f"evt_{order['order_id']}")
    delivered = fake.deliver_webhook(
        f"{prod_like.url}/webhooks/hyperswitch", extra["webhook_key"], body
    )
    assert delivered.status_code == 200
    again = fake.deliver_webhook(
        f"{prod_like.url}/webhooks/hyperswitch", extra["webhook_key"], body
    )
    assert again.json() == {"result": "skipped"}  # Hyperswitch's retry of the same event
    assert http.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "paid"
    worker_pass(prod_like.services)
    state = http.get(f"/api/v1/orders/{order['order_id']}").json()
    assert state["transfers"][0]["status"] == "completed" and len(stripe.transfers) >= 1
    refund = seller.post(f"/api/v1/orders/{order['order_id']}/refunds", json={}).json()
    fake.set_refund_status(refund["provider_refund_id"], "pending")
    time.sleep(0.1)
    # no refund webhook (pending refunds send none): the sweep polls it once it settles
    fake.set_refund_status(refund["provider_refund_id"], "succeeded")
    run_sweep(
        prod_like.services.ledger,
        prod_like.services.provider_view,
        settings=ReconcileSettings(stuck_refund_after=dt.timedelta(0)),
    )
    run_reversal_worker(prod_like.services.ledger, prod_like.services.stripe)
    final = http.get(f"/api/v1/orders/{order['order_id']}").json()
    assert final["status"] == "refunded" and final["refunds"][0]["status"] == "succeeded"
    assert final["transfers"][0]["status"] == "reversed"
    assert all(v == 0 for v in prod_like.services.ledger.trial_balance().values())


def test_readiness_on_production_services(prod_like: Any, http: httpx.Client) -> None:
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"]
    assert http.get("/api/v1/admin/findings").status_code == 401


def test_session_cookies_are_secure_in_production(prod_like: Any) -> None:
    password = prod_like.services.extra["passwords"]["buyer-p"]
    answer = httpx.post(
        f"{prod_like.url}/api/v1/auth/login", json={"user_id": "buyer-p", "password": password}
    )
    cookie = answer.headers["set-cookie"].lower()
    assert answer.status_code == 200
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie


def test_production_refuses_a_database_with_demo_accounts(prod_like: Any) -> None:
    from veza_reference import AppConfigurationError, build_services

    services = prod_like.services
    services.users.create("demo-leftover", "a-demo-password-1", "admin", demo=True)
    try:
        with pytest.raises(AppConfigurationError, match="demo-leftover"):
            build_services({**services.env, "VEZA_PORT": "0", "VEZA_EDGE_PORT": "0"})
    finally:
        with services.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM app_users WHERE id = 'demo-leftover'"))
