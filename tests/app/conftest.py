"""The reference app, running for real: embedded defaults, and production-like.

Both start the whole thing in this process (the app and the local edge on real ports,
the workers where the configuration says so). The production-like one runs on
PostgreSQL, moto's S3 server and Bunny signing through the local edge, with the payment
providers' fakes as remote services reached through their environment variables, as
real keys would be.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from veza_services import free_port, service_unavailable

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("VEZA_TEST_OUTPUT", ROOT / "test-output"))
REDIS_URL = os.environ.get("VEZA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis on 127.0.0.1:6379 (``VEZA_TEST_REDIS_URL``), checked with a PING."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(16).startswith(b"+PONG")
    except OSError as exc:
        service_unavailable("Redis", str(exc), "start redis-server on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where screenshots and other artefacts of the app's tests go."""
    path = OUTPUT / "reference-app"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The app on its embedded defaults (what `veza-demo` runs)."""
    from veza_reference._demo import demo_environment, run_demo

    env = demo_environment(
        {
            "VEZA_WORKER_INTERVAL": "0.5",
            "VEZA_LOGIN_RATE": "200/60",
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "PATH": os.environ.get("PATH", ""),
        },
        str(tmp_path_factory.mktemp("demo")),
        0,
    )
    running = run_demo(env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def prod_like(
    postgres_url: str, moto_s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """APP_ENV=production on PostgreSQL + moto S3 + Bunny via the local edge."""
    import boto3

    from veza_ledger import create_engine, upgrade
    from veza_payments.testing import FakeHyperswitch, FakeStripe
    from veza_reference import build_services
    from veza_reference._serve import start

    name = f"app_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = (
        sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    )
    engine = create_engine(database_url)
    upgrade(engine)  # production runs the migrations as a release step, not at start-up
    engine.dispose()
    bucket = f"tracks-{uuid.uuid4().hex[:8]}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    boto3.client(
        "s3",
        endpoint_url=moto_s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    hyperswitch, stripe = FakeHyperswitch().start(), FakeStripe().start()
    port, edge_port = free_port(), free_port()
    webhook_key = secrets.token_urlsafe(24)
    env = {
        "APP_ENV": "production",
        "VEZA_DATABASE_URL": database_url,
        "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("prod")),
        "VEZA_PORT": str(port),
        "VEZA_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "VEZA_SESSION_SECRET": secrets.token_urlsafe(32),
        "VEZA_LOCAL_EDGE": "true",
        "VEZA_EDGE_PORT": str(edge_port),
        "VEZA_ORIGIN_SECRET": secrets.token_urlsafe(24),
        "VEZA_WORKERS": "false",
        "VEZA_STORAGE_BACKEND": "s3",
        "AWS_S3_ENABLED": "true",
        "AWS_S3_BUCKET": bucket,
        "AWS_S3_ENDPOINT": moto_s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_S3_PROFILE": "minio",
        **creds,
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": "bunny",
        "CDN_BASE_URL": f"http://127.0.0.1:{edge_port}",
        "CDN_SECURITY_KEY": secrets.token_urlsafe(32),
        "HYPERSWITCH_API_KEY": hyperswitch.api_key,
        "HYPERSWITCH_BASE_URL": hyperswitch.url,
        "HYPERSWITCH_WEBHOOK_KEYS": webhook_key,
        "STRIPE_SECRET_KEY": stripe.api_key,
        "STRIPE_API_BASE": stripe.url,
    }
    running = start(build_services(env))
    passwords = {}
    for user_id, role in (("buyer-p", "buyer"), ("seller-p", "creator")):
        passwords[user_id] = secrets.token_urlsafe(16)
        running.services.users.create(user_id, passwords[user_id], role)
    running.services.extra.update(
        passwords=passwords,
        fake_hyperswitch=hyperswitch,
        fake_stripe=stripe,
        webhook_key=webhook_key,
        bucket=bucket,
        s3_endpoint=moto_s3_endpoint,
    )
    yield running
    running.stop()
    hyperswitch.stop()
    stripe.stop()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def login() -> Iterator[Callable[[str, str, str], httpx.Client]]:
    """``login(url, user_id, password)``: an HTTP client holding that account's session.

    The client sends the session's CSRF token on every request, as the demo page does.
    """
    clients: list[httpx.Client] = []

    def make(url: str, user_id: str, password: str) -> httpx.Client:
        client = httpx.Client(base_url=url, timeout=15)
        clients.append(client)
        answer = client.post("/api/v1/auth/login", json={"user_id": user_id, "password": password})
        assert answer.status_code == 200, answer.text
        client.headers["x-csrf-token"] = answer.json()["csrf_token"]
        # production cookies are Secure: a browser sends them over HTTPS only, httpx over
        # plain http never; the test servers speak http, so the client sends it itself
        client.cookies.clear()
        client.headers["cookie"] = f"veza_session={answer.cookies['veza_session']}"
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def new_user() -> Callable[..., tuple[str, str]]:
    """``new_user(services, role)``: a fresh account; returns its id and password."""

    def make(services: Any, role: str, user_id: str | None = None) -> tuple[str, str]:
        user_id = user_id or f"{role}-{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(16)
        services.users.create(user_id, password, role)
        return user_id, password

    return make


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (no browser download)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        service_unavailable(
            "Chromium", "/usr/bin/chromium is missing", "apt-get install chromium (.ci/run does)"
        )
    return path


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """Debian's ffmpeg."""
    path = shutil.which("ffmpeg")
    if path is None:
        service_unavailable(
            "ffmpeg", "ffmpeg is not on PATH", "apt-get install ffmpeg (.ci/run does)"
        )
    return path
