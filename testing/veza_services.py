"""Shared pytest fixtures for the real services veza's tests talk to.

The convention (written down in docs/contributing.md):

* A test that needs a service asks for its fixture. When the service is missing the
  test is **skipped** with a reason that says how to get it; under ``CI=true`` it
  **fails** instead, so a CI run can never go green by skipping.
* PostgreSQL: ``VEZA_TEST_DATABASE_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Every pytest process gets its
  own freshly created database, dropped at the end, so parallel sessions never collide.
* S3: moto's standalone server (``moto.server.ThreadedMotoServer``) on an ephemeral
  127.0.0.1 port, reached over real HTTP.

This module is test infrastructure. It imports service client libraries lazily so that
a package's isolated test environment only needs what that package's tests use.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def in_ci() -> bool:
    """Whether this run is CI, where a missing service is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def service_unavailable(service: str, reason: str, how_to_get_it: str) -> NoReturn:
    """Skip the current test locally, fail it under CI, with a reason naming the fix."""
    message = f"{service} is unavailable: {reason}. To run this test: {how_to_get_it}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago (for servers that need one)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ PostgreSQL


def _libpq_url(sqlalchemy_url: str) -> str:
    """Turn ``postgresql+psycopg://…`` into the plain ``postgresql://…`` libpq reads."""
    parts = urlsplit(sqlalchemy_url)
    scheme = parts.scheme.split("+", 1)[0]
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL to a PostgreSQL database created for this pytest process alone."""
    base_url = os.environ.get("VEZA_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        import psycopg
    except ImportError:
        service_unavailable(
            "PostgreSQL",
            "the psycopg driver is not installed in this environment",
            "install the package's test extra (it declares psycopg)",
        )
    database = f"veza_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_libpq_url(base_url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        service_unavailable(
            "PostgreSQL",
            f"cannot connect to {urlsplit(base_url).hostname}:{urlsplit(base_url).port}"
            f" ({type(exc).__name__})",
            "start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
            " or point VEZA_TEST_DATABASE_URL at a server with trust auth",
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield _with_database(base_url, database)
    finally:
        with psycopg.connect(_libpq_url(base_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# ------------------------------------------------------------------ S3, served by moto


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """The endpoint URL of a moto standalone S3 server on an ephemeral 127.0.0.1 port.

    State is shared for the whole session: tests create uniquely named buckets.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        service_unavailable(
            "moto S3 server",
            "moto[server] is not installed in this environment",
            "install the package's test extra (it declares moto[server,s3])",
        )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy credentials moto accepts, isolated from any real AWS configuration."""
    creds = {
        "aws_access_key_id": "testing-access-key",
        "aws_secret_access_key": "testing-secret-key",
        "region_name": "us-east-1",
    }
    for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return creds
