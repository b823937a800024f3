"""The reference app with production settings: PostgreSQL, S3 (moto), Bunny via the edge.

The last part runs two app *processes* (``veza-reference``, each its own interpreter)
on one PostgreSQL, one S3 endpoint and one Redis, as a load-balanced deployment does:
one webhook event delivered to both at once is applied once, a resumable upload whose
chunks alternate between them completes with the right bytes, and sessions and rate
limits hold across them.

The payment providers are remote services reached through ``HYPERSWITCH_*`` and
``STRIPE_*`` (their fakes, on 127.0.0.1, as real keys would be); no sandbox, no
in-process workers (production runs them as their own processes: the test runs one pass).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import boto3
import httpx
import pytest
import sqlalchemy as sa

from veza_cdn import SigningError
from veza_ledger import ReconcileSettings, run_reversal_worker, run_sweep
from veza_reference._media import tone
from veza_reference._serve import worker_pass
from veza_services import free_port


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
        f"{prod_like.url}/webhooks/hyperswitch", extra["webhook_key"], body=body
    )
    assert delivered.status_code == 200
    again = fake.deliver_webhook(
        f"{prod_like.url}/webhooks/hyperswitch", extra["webhook_key"], body=body
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
    assert all(v == 0 for v in prod_like.services.ledger.journal.trial_balance().values())


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


# ---- two app processes on one PostgreSQL, one S3 endpoint and Redis ---------------------


@attrs.frozen
class Instances:
    """Two ``veza-reference`` processes sharing a database, a bucket and Redis."""

    urls: tuple[str, str]
    database_url: str
    bucket: str
    s3_endpoint: str
    webhook_key: str
    fake: Any
    passwords: dict[str, str]


def _serve_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``veza-reference`` in its own interpreter, as an operator runs it."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from veza_reference._serve import main; raise SystemExit(main())",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app process exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(
        f"the app process never answered /healthz: {log.read_text(errors='replace')[-2000:]}"
    )


@pytest.fixture(scope="module")
def two_processes(
    postgres_url: str,
    moto_s3_endpoint: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Instances]:
    """Two app processes (APP_ENV=production) on one PostgreSQL, one moto S3, one Redis."""
    from veza_ledger import create_engine, upgrade
    from veza_payments.testing import FakeHyperswitch
    from veza_reference._db import create_app_tables
    from veza_reference._users import Users

    name = f"app2_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = (
        sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    )
    engine = create_engine(database_url)
    upgrade(engine)  # the release step, once, before the instances start
    create_app_tables(engine)
    passwords = {user: secrets.token_urlsafe(16) for user in ("buyer-2", "seller-2", "guarded-2")}
    users = Users(engine)
    users.create("buyer-2", passwords["buyer-2"], "buyer")
    users.create("seller-2", passwords["seller-2"], "creator")
    users.create("guarded-2", passwords["guarded-2"], "buyer")
    engine.dispose()
    bucket = f"two-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=moto_s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    fake = FakeHyperswitch().start()
    webhook_key = secrets.token_urlsafe(24)
    data = tmp_path_factory.mktemp("two-processes")
    shared = {
        "PATH": os.environ.get("PATH", ""),
        "APP_ENV": "production",
        "VEZA_DATABASE_URL": database_url,
        "VEZA_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "VEZA_SESSION_SECRET": secrets.token_urlsafe(32),
        "VEZA_LOCAL_EDGE": "0",
        "VEZA_WORKERS": "0",
        "VEZA_LOGIN_RATE": "3/60",
        "VEZA_REDIS_URL": redis_url,
        "VEZA_REDIS_PREFIX": f"veza-two-{uuid.uuid4().hex}",
        "VEZA_STORAGE_BACKEND": "s3",
        "AWS_S3_ENABLED": "1",
        "AWS_S3_BUCKET": bucket,
        "AWS_S3_ENDPOINT": moto_s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_S3_PROFILE": "minio",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CDN_ENABLED": "0",
        "HYPERSWITCH_API_KEY": fake.api_key,
        "HYPERSWITCH_BASE_URL": fake.url,
        "HYPERSWITCH_WEBHOOK_KEYS": webhook_key,
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(2):
            port = free_port()
            log = data / f"instance-{index}.log"
            env = {**shared, "VEZA_PORT": str(port), "VEZA_DATA_DIR": str(data / str(index))}
            processes.append(_serve_process(env, log))
            urls.append(f"http://127.0.0.1:{port}")
            _wait_healthy(urls[-1], processes[-1], log)  # one at a time: start-up DDL
        yield Instances(
            (urls[0], urls[1]), database_url, bucket, moto_s3_endpoint, webhook_key, fake, passwords
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        fake.stop()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _session(
    instances: Instances, user_id: str, *, on: int = 0
) -> tuple[httpx.Client, httpx.Client]:
    """Log in on instance ``on``; clients for both instances holding that one session."""
    answer = httpx.post(
        f"{instances.urls[on]}/api/v1/auth/login",
        json={"user_id": user_id, "password": instances.passwords[user_id]},
    )
    assert answer.status_code == 200, answer.text
    headers = {
        "x-csrf-token": answer.json()["csrf_token"],
        # production cookies are Secure; the test servers speak http (see conftest's login)
        "cookie": f"veza_session={answer.cookies['veza_session']}",
    }
    first, second = (
        httpx.Client(base_url=url, headers=headers, timeout=30) for url in instances.urls
    )
    return first, second


def test_two_processes_answer_as_one_app(two_processes: Instances) -> None:
    """Two interpreters, one service: a session made on one is honoured by the other."""
    first, second = _session(two_processes, "buyer-2", on=1)
    with first, second:
        assert first.get("/api/v1/auth/me").json()["user_id"] == "buyer-2"
        assert second.get("/api/v1/auth/me").json()["user_id"] == "buyer-2"
    assert two_processes.urls[0] != two_processes.urls[1]  # two servers, two ports


def test_a_webhook_delivered_to_both_at_once_is_applied_once(two_processes: Instances) -> None:
    fake = two_processes.fake
    seller_a, seller_b = _session(two_processes, "seller-2")
    buyer_a, buyer_b = _session(two_processes, "buyer-2", on=1)
    with seller_a, seller_b, buyer_a, buyer_b:
        track = _upload(seller_a, tone([440.0] * 2))
        for round_ in range(4):
            order = (buyer_a if round_ % 2 else buyer_b).post(
                "/api/v1/orders", json={"track_id": track["id"]}
            )
            assert order.status_code == 201, order.text
            order_id, payment_id = order.json()["order_id"], order.json()["payment_id"]
            payment = fake.set_payment_status(payment_id, "succeeded")
            body = fake.webhook_body("payment_succeeded", payment, event_id=f"evt_two_{order_id}")
            barrier = threading.Barrier(2)
            answers: list[httpx.Response] = []

            def deliver(
                url: str,
                body: bytes = body,
                barrier: threading.Barrier = barrier,
                answers: list[httpx.Response] = answers,
            ) -> None:
                barrier.wait()
                answers.append(
                    fake.deliver_webhook(
                        f"{url}/webhooks/hyperswitch", two_processes.webhook_key, body=body
                    )
                )

            threads = [threading.Thread(target=deliver, args=(url,)) for url in two_processes.urls]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert sorted(a.status_code for a in answers) == [200, 200], [a.text for a in answers]
            assert buyer_a.get(f"/api/v1/orders/{order_id}").json()["status"] == "paid"
            engine = sa.create_engine(two_processes.database_url)
            try:
                with engine.connect() as connection:
                    applied = connection.execute(
                        sa.text("SELECT count(*) FROM ledger_processed_events WHERE event_id = :e"),
                        {"e": f"evt_two_{order_id}"},
                    ).scalar_one()
                    logged = connection.execute(
                        sa.text("SELECT count(*) FROM ledger_webhook_log WHERE event_id = :e"),
                        {"e": f"evt_two_{order_id}"},
                    ).scalar_one()
                    journal = connection.execute(
                        sa.text(
                            "SELECT count(*) FROM ledger_journal_transactions WHERE id LIKE :o"
                        ),
                        {"o": f"%{order_id}%"},
                    ).scalar_one()
                    balance = connection.execute(
                        sa.text("SELECT coalesce(sum(amount), 0) FROM ledger_journal_entries")
                    ).scalar_one()
            finally:
                engine.dispose()
            assert applied == 1 and logged == 2  # two deliveries recorded, one applied
            assert journal == 1 and balance == 0


def test_a_resumable_upload_alternating_between_instances(two_processes: Instances) -> None:
    first, second = _session(two_processes, "seller-2")
    # random samples behind a WAV header: the app refuses a first chunk that is not audio
    body = os.urandom(5 * 256 * 1024 + 12_345 - 12)
    data = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body
    with first, second:
        begin = first.post(
            "/api/v1/uploads",
            json={
                "filename": "alternating.wav",
                "size": len(data),
                "content_type": "audio/wav",
                "chunk_size": 256 * 1024,
                "title": "alternating",
            },
        )
        assert begin.status_code == 201, begin.text
        upload = begin.json()
        clients = (first, second)
        for index in range(upload["chunk_count"]):
            chunk = data[index * upload["chunk_size"] : (index + 1) * upload["chunk_size"]]
            put = clients[index % 2].put(
                f"/api/v1/uploads/{upload['upload_id']}/chunks/{index}", content=chunk
            )
            assert put.status_code == 200, put.text
        status = first.get(f"/api/v1/uploads/{upload['upload_id']}").json()
        assert sorted(status["received"]) == list(range(upload["chunk_count"])) and status["ready"]
        done = second.post(f"/api/v1/uploads/{upload['upload_id']}/complete")
        assert done.status_code == 201, done.text
        track = done.json()
        location = first.get(track["stream_url"]).headers["location"]
    s3 = boto3.client(
        "s3",
        endpoint_url=two_processes.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    head = s3.head_object(Bucket=two_processes.bucket, Key=track["storage_key"])
    assert head["ContentLength"] == len(data)
    served = httpx.get(location).content  # the presigned S3 URL the stream route answered
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(data).hexdigest()


def test_login_rate_limit_holds_across_processes(two_processes: Instances) -> None:
    urls = two_processes.urls
    for url in (urls[0], urls[1], urls[0]):
        wrong = httpx.post(
            f"{url}/api/v1/auth/login", json={"user_id": "guarded-2", "password": "not-it"}
        )
        assert wrong.status_code == 401
    refused = httpx.post(
        f"{urls[1]}/api/v1/auth/login",
        json={"user_id": "guarded-2", "password": two_processes.passwords["guarded-2"]},
    )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
