"""``/readyz`` reports TURN when configured; start-up reaps expired upload sessions."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from veza_services import free_udp_tcp_port


@pytest.fixture(scope="module")
def unreachable_turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app with a TURN URL nothing listens on (TCP: refused at once, no timeout wait)."""
    from veza_reference import build_services
    from veza_reference._serve import start

    port = free_udp_tcp_port()
    services = build_services(
        {
            "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("readyz")),
            "VEZA_PORT": "0",
            "VEZA_WORKERS": "false",
            "VEZA_LOCAL_EDGE": "false",
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "WEBRTC_TURN_URLS": f"turn:127.0.0.1:{port}?transport=tcp",
            "WEBRTC_TURN_SECRET": secrets.token_urlsafe(16),
            "PATH": os.environ.get("PATH", ""),
        }
    )
    running = start(services)
    yield running, port
    running.stop()


def test_readyz_reports_an_unreachable_turn_server(unreachable_turn: Any) -> None:
    running, port = unreachable_turn
    answer = httpx.get(f"{running.url}/readyz", timeout=10)
    assert answer.status_code == 503
    body = answer.json()
    assert body["ready"] is False
    assert body["checks"]["turn"].startswith(f"failed: turn:127.0.0.1:{port}?transport=tcp ")
    assert all(v == "ok" for k, v in body["checks"].items() if k != "turn")
    assert running.services.ice_probe is not None  # built once, at start-up
    again = httpx.get(f"{running.url}/readyz", timeout=10).json()
    assert again["checks"]["turn"] == body["checks"]["turn"]  # the cached result


def test_readyz_has_no_turn_check_without_turn(demo: Any) -> None:
    answer = httpx.get(f"{demo.url}/readyz", timeout=10)
    assert answer.status_code == 200 and "turn" not in answer.json()["checks"]
    assert demo.services.ice_probe is None


def test_start_up_reaps_expired_uploads(tmp_path_factory: pytest.TempPathFactory) -> None:
    import time

    import sqlalchemy as sa

    from veza_reference import build_services
    from veza_reference._db import UPLOAD_SESSIONS
    from veza_reference._serve import start

    environ = {
        "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("reap")),
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_LOCAL_EDGE": "false",
        "VEZA_FAST_PASSWORD_HASHING": "true",
        "VEZA_STORAGE_SIGNING_KEY": secrets.token_urlsafe(32),
        "PATH": os.environ.get("PATH", ""),
    }
    services = build_services(environ)
    upload_id = services.uploads.begin(
        "tracks/stale.wav", 300_000, chunk_size=262_144, content_type="audio/wav"
    )
    services.uploads.put_chunk(upload_id, 1, data=b"x" * 37_856)
    with services.engine.begin() as connection:
        connection.execute(
            sa.update(UPLOAD_SESSIONS)
            .where(UPLOAD_SESSIONS.c.id == upload_id)
            .values(expires_at=time.time() - 60)
        )
    services.close()
    running = start(build_services(environ))  # a restart: the same data directory
    try:
        with running.services.engine.connect() as connection:
            left = connection.execute(
                sa.select(sa.func.count()).where(UPLOAD_SESSIONS.c.id == upload_id)
            ).scalar_one()
        assert left == 0
    finally:
        running.stop()
