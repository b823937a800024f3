"""Accounts, sessions, CSRF, rate limits and TURN credentials, over real HTTP.

The codec and the rate limiter also get hypothesis properties: a session cookie verifies
only as issued (any change, another secret, or expiry refuses it), and no key is ever
granted more than ``limit`` hits in any window.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given, settings, strategies as st

from veza_reference._sessions import RateLimiter, SessionCodec
from veza_reference._users import Role

USER_IDS = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=64)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app with tight limits: 3 logins a minute per account, 4 TURN grants per user."""
    from veza_reference import build_services
    from veza_reference._serve import start

    services = build_services(
        {
            "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("auth")),
            "VEZA_PORT": "0",
            "VEZA_WORKERS": "false",
            "VEZA_LOCAL_EDGE": "false",
            "VEZA_LOGIN_RATE": "3/60",
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "VEZA_TURN_RATE": "4/60",
            "WEBRTC_TURN_URLS": "turn:127.0.0.1:3478",
            "WEBRTC_TURN_SECRET": secrets.token_urlsafe(16),
            "PATH": os.environ.get("PATH", ""),
        }
    )
    running = start(services)
    yield running
    running.stop()


@pytest.fixture
def account(app: Any, new_user: Callable[..., tuple[str, str]]) -> tuple[str, str]:
    return new_user(app.services, "buyer")


def _login(url: str, user_id: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/auth/login", json={"user_id": user_id, "password": password})


def test_passwords_are_stored_as_argon2id_hashes(app: Any, account: tuple[str, str]) -> None:
    user_id, password = account
    with app.services.engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT password_hash FROM app_users WHERE id = :id"), {"id": user_id}
        ).scalar_one()
    assert stored.startswith("$argon2id$") and password not in stored
    assert app.services.users.authenticate(user_id, password) is not None
    assert app.services.users.authenticate(user_id, password + "x") is None
    assert app.services.users.authenticate("nobody-at-all", password) is None


def test_short_passwords_and_bad_ids_are_refused(app: Any) -> None:
    from veza_reference._users import UserError

    with pytest.raises(UserError, match="12 characters"):
        app.services.users.create("shorty", "short", "buyer")
    with pytest.raises(UserError, match="user id"):
        app.services.users.create("a|b", "long-enough-password", "buyer")
    with pytest.raises(UserError, match="role"):
        app.services.users.create("role-less", "long-enough-password", "superuser")


def test_login_sets_a_hardened_cookie_and_logout_revokes_it(
    app: Any, account: tuple[str, str]
) -> None:
    user_id, password = account
    assert _login(app.url, user_id, "wrong-password").status_code == 401
    answer = _login(app.url, user_id, password)
    assert answer.status_code == 200 and answer.json()["role"] == "buyer"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # development over http; production: see test_production_like
    with httpx.Client(base_url=app.url, cookies=answer.cookies) as client:
        csrf = {"x-csrf-token": answer.json()["csrf_token"]}
        assert client.get("/api/v1/auth/me").json()["user_id"] == user_id
        kept = dict(client.cookies)
        assert client.post("/api/v1/auth/logout", headers=csrf).status_code == 200
    with httpx.Client(base_url=app.url, cookies=kept) as stale:  # the cookie a thief kept
        assert stale.get("/api/v1/auth/me").status_code == 401


def test_state_changes_need_the_csrf_token(app: Any, account: tuple[str, str]) -> None:
    user_id, password = account
    answer = _login(app.url, user_id, password)
    with httpx.Client(base_url=app.url, cookies=answer.cookies) as client:
        body = {"plan": "creator"}
        assert client.post("/api/v1/subscriptions", json=body).status_code == 403
        wrong = {"x-csrf-token": "x" * 43}
        assert client.post("/api/v1/subscriptions", json=body, headers=wrong).status_code == 403
        other = _login(app.url, user_id, password).json()["csrf_token"]  # another session's
        assert (
            client.post("/api/v1/subscriptions", json=body, headers={"x-csrf-token": other})
        ).status_code == 403
        good = {"x-csrf-token": answer.json()["csrf_token"]}
        assert client.post("/api/v1/subscriptions", json=body, headers=good).status_code == 201


def test_a_cross_site_login_is_refused(app: Any, account: tuple[str, str]) -> None:
    user_id, password = account
    answer = httpx.post(
        f"{app.url}/api/v1/auth/login",
        json={"user_id": user_id, "password": password},
        headers={"origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_a_forged_cookie_is_anonymous(app: Any, account: tuple[str, str]) -> None:
    user_id, password = account
    cookie = _login(app.url, user_id, password).cookies["veza_session"]
    forged = cookie.replace("|buyer|", "|admin|")
    assert forged != cookie
    answer = httpx.get(f"{app.url}/api/v1/admin/findings", cookies={"veza_session": forged})
    assert answer.status_code == 401


def test_login_is_rate_limited_per_account_and_address(
    app: Any, new_user: Callable[..., tuple[str, str]]
) -> None:
    user_id, password = new_user(app.services, "buyer")
    for _ in range(3):
        assert _login(app.url, user_id, "guess-" + secrets.token_hex(4)).status_code == 401
    limited = _login(app.url, user_id, password)  # even the right password, now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    other, other_password = new_user(app.services, "buyer")
    assert _login(app.url, other, other_password).status_code == 200  # another account: fine


def test_turn_credentials_only_for_the_caller_short_lived_and_rate_limited(
    app: Any, new_user: Callable[..., tuple[str, str]]
) -> None:
    user_id, password = new_user(app.services, "buyer")
    answer = _login(app.url, user_id, password)
    with httpx.Client(base_url=app.url, cookies=answer.cookies) as client:
        assert httpx.get(f"{app.url}/api/v1/config/webrtc").status_code == 401
        refused = client.get("/api/v1/config/webrtc", params={"user_id": "alice"})
        assert refused.status_code == 403
        mine = client.get("/api/v1/config/webrtc").json()
        (turn,) = [s for s in mine["iceServers"] if s.get("username")]
        assert turn["username"].endswith(f":{user_id}") and 0 < mine["ttl"] <= 600
        assert client.get("/api/v1/config/webrtc", params={"user_id": user_id}).status_code == 200
        statuses = [client.get("/api/v1/config/webrtc").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


def test_the_stream_redirect_checks_the_caller_without_the_database(
    app: Any, new_user: Callable[..., tuple[str, str]]
) -> None:
    """Once the track and the grant are in memory, a redirect runs no SQL at all."""
    import io

    from veza_reference._routes_media import add_track

    owner, password = new_user(app.services, "creator")
    app.services.storage.put("tracks/hot.wav", io.BytesIO(b"RIFF"), content_type="audio/wav")
    add_track(
        app.services,
        key="tracks/hot.wav",
        title="hot",
        owner_id=owner,
        price=100,
        content_type="audio/wav",
        size=4,
        sha256=None,
        track_id="hot-track",
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    answer = _login(app.url, owner, password)
    with httpx.Client(base_url=app.url, cookies=answer.cookies) as client:
        assert client.get("/api/v1/tracks/hot-track/stream").status_code == 302  # warms up
        sa.event.listen(app.services.engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                assert client.get("/api/v1/tracks/hot-track/stream").status_code == 302
        finally:
            sa.event.remove(app.services.engine, "before_cursor_execute", count)
    assert statements == []


# ---- properties -------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(user_id=USER_IDS, role=st.sampled_from(list(Role)), data=st.data())
def test_a_session_cookie_verifies_only_as_issued(user_id: str, role: Role, data: Any) -> None:
    codec = SessionCodec("s" * 32)
    cookie, csrf = codec.issue(user_id, role, now=1_000_000)
    principal = codec.verify(cookie, now=1_000_000)
    assert principal is not None and (principal.user_id, principal.role) == (user_id, role)
    assert codec.csrf_ok(principal, csrf)
    assert codec.verify(cookie, now=1_000_000 + codec.ttl + 1) is None  # expired
    assert SessionCodec("t" * 32).verify(cookie, now=1_000_000) is None  # another secret
    index = data.draw(st.integers(0, len(cookie) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != cookie[index]))
    tampered = cookie[:index] + replacement + cookie[index + 1 :]
    assert codec.verify(tampered, now=1_000_000) is None
    other, _ = codec.issue(user_id, role, now=1_000_000)
    other_principal = codec.verify(other, now=1_000_000)
    assert other_principal is not None and not codec.csrf_ok(other_principal, csrf)


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 5),
    window=st.floats(0.5, 10),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=40),
)
def test_the_rate_limiter_never_grants_more_than_the_limit_in_a_window(
    limit: int, window: float, gaps: list[float]
) -> None:
    limiter = RateLimiter(limit, window)
    now = 0.0
    granted: list[float] = []
    for gap in gaps:
        now += gap
        wait = limiter.hit("k", now=now)
        if wait is None:
            granted.append(now)
        else:
            assert wait > 0
            # refused only when the window really is full
            assert sum(1 for t in granted if t > now - window) >= limit
    for start in granted:
        assert sum(1 for t in granted if start <= t < start + window) <= limit
