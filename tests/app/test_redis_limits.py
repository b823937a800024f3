"""Rate limits shared by two app instances through Redis (``VEZA_REDIS_URL``).

With the in-process default each instance counts its own clients, so a client that
alternates between two instances gets twice the attempts; with Redis configured the
limit holds across them.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture(scope="module")
def two_instances(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    """Two app processes' worth of services on one database and one Redis."""
    from veza_reference import build_services
    from veza_reference._serve import start

    data: Path = tmp_path_factory.mktemp("two")
    env = {
        "VEZA_DATA_DIR": str(data),
        "VEZA_DATABASE_URL": f"sqlite:///{data / 'shared.db'}",
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_LOCAL_EDGE": "false",
        "VEZA_SESSION_SECRET": secrets.token_urlsafe(32),
        "VEZA_FAST_PASSWORD_HASHING": "true",
        "VEZA_LOGIN_RATE": "3/60",
        "VEZA_TURN_RATE": "4/60",
        "VEZA_REDIS_URL": redis_url,
        "VEZA_REDIS_PREFIX": f"veza-test-{uuid.uuid4().hex}",
        "PATH": os.environ.get("PATH", ""),
    }
    instances = [start(build_services(env)) for _ in range(2)]
    yield instances
    for running in instances:
        running.stop()


def _login(url: str, user_id: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/auth/login", json={"user_id": user_id, "password": password})


def test_login_attempts_count_across_instances(two_instances: list[Any], new_user: Any) -> None:
    first, second = two_instances
    user_id, password = new_user(first.services, "buyer")
    for running in (first, second, first):
        assert _login(running.url, user_id, "guess-" + secrets.token_hex(4)).status_code == 401
    refused = _login(second.url, user_id, password)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_a_session_from_one_instance_works_on_the_other(
    two_instances: list[Any], new_user: Any
) -> None:
    first, second = two_instances
    user_id, password = new_user(first.services, "buyer")
    answer = _login(first.url, user_id, password)
    with httpx.Client(base_url=second.url, cookies=answer.cookies) as client:
        assert client.get("/api/v1/auth/me").json()["user_id"] == user_id
        statuses = [
            httpx.get(f"{running.url}/api/v1/config/webrtc", cookies=answer.cookies).status_code
            for running in (first, second, first, second, first)
        ]
    assert statuses == [200, 200, 200, 200, 429]  # TURN: 4 a minute, over both instances


def test_the_redis_limiter_window(redis_url: str) -> None:
    import redis

    from veza_reference._redis_limits import RedisRateLimiter

    client = redis.Redis.from_url(redis_url)
    try:
        limiter = RedisRateLimiter(client, "unit", 2, 1.0, prefix=f"veza-test-{uuid.uuid4().hex}")
        assert limiter.hit("k", now=100.0) is None
        assert limiter.hit("k", now=100.1) is None
        wait = limiter.hit("k", now=100.2)
        assert wait is not None and abs(wait - 0.8) < 1e-6
        assert limiter.hit("other", now=100.2) is None  # keys are separate
        assert limiter.hit("k", now=101.05) is None  # the first hit left the window
        assert "redis" not in repr(limiter).lower() or "limit=2" in repr(limiter)
    finally:
        client.close()
