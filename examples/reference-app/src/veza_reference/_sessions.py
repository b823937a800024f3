"""Signed session cookies, their CSRF tokens, logout, and in-process rate limits.

A session is a cookie the server signed (HMAC-SHA256 over ``user|role|sid|expiry``), so
checking one costs a hash and no database round trip: the stream redirect stays fast.
The CSRF token is a second HMAC of the session id; the page reads it from the login
answer (or ``/api/v1/auth/me``) and sends it as ``X-CSRF-Token`` on every request that
changes something. A cross-site page can make the browser send the cookie (``SameSite=Lax``
already stops most of that) but cannot read the token.

Logout revokes the session id in this process; with several instances, revocation lasts
until the cookie expires elsewhere (``SESSION_TTL``). The docs say so.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import secrets
import threading
import time

import attrs

from veza_reference._users import Role

SESSION_TTL = 8 * 3600
COOKIE = "veza_session"
CSRF_HEADER = "x-csrf-token"


@attrs.frozen
class Principal:
    """Who is calling: an account with its role, or the admin bearer token.

    Attributes:
        user_id: The account (``admin-token`` for the bearer token).
        role: Its role.
        session_id: The session (``None`` for the bearer token: no cookie, no CSRF).
    """

    user_id: str
    role: Role
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """Admins may do everything."""
        return self.role is Role.ADMIN


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SessionCodec:
    """Issue and verify session cookies and CSRF tokens under one secret."""

    def __init__(self, secret: str, *, ttl: int = SESSION_TTL) -> None:
        """Keys for sessions and CSRF are derived apart from ``secret``."""
        self._session_key = hmac.digest(secret.encode(), b"veza-session-v1", "sha256")
        self._csrf_key = hmac.digest(secret.encode(), b"veza-csrf-v1", "sha256")
        self.ttl = ttl
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SessionCodec(ttl={self.ttl})"

    def _sign(self, payload: str) -> str:
        return _b64(hmac.digest(self._session_key, payload.encode(), "sha256"))

    def issue(self, user_id: str, role: Role, *, now: float | None = None) -> tuple[str, str]:
        """A new session: the cookie value and its CSRF token."""
        session_id = secrets.token_urlsafe(16)
        expires = int((time.time() if now is None else now) + self.ttl)
        payload = f"{user_id}|{role.value}|{session_id}|{expires}"
        return f"{payload}|{self._sign(payload)}", self.csrf_token(session_id)

    def verify(self, cookie: str | None, *, now: float | None = None) -> Principal | None:
        """The principal of a valid, unexpired, unrevoked cookie; ``None`` otherwise."""
        if not cookie or len(cookie) > 512:
            return None
        payload, _, signature = cookie.rpartition("|")
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        parts = payload.split("|")
        if len(parts) != 4:
            return None
        user_id, role, session_id, expires = parts
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        if session_id in self._revoked:
            return None
        try:
            return Principal(user_id, Role(role), session_id)
        except ValueError:
            return None

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token bound to ``session_id``."""
        return _b64(hmac.digest(self._csrf_key, session_id.encode(), "sha256"))

    def csrf_ok(self, principal: Principal, token: str | None) -> bool:
        """Whether ``token`` is ``principal``'s CSRF token (constant time)."""
        if principal.session_id is None:
            return True  # the bearer token is not sent by browsers on their own
        return hmac.compare_digest(self.csrf_token(principal.session_id), token or "")

    def revoke(self, session_id: str, *, now: float | None = None) -> None:
        """Log a session out in this process (kept until it would have expired)."""
        current = time.time() if now is None else now
        with self._lock:
            self._revoked[session_id] = current + self.ttl
            for sid, until in list(self._revoked.items()):
                if until < current:
                    del self._revoked[sid]


class RateLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds (sliding log, in process)."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        """``max_keys`` bounds memory under a flood of distinct keys (oldest dropped)."""
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._hits: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(limit={self.limit}, window={self.window})"

    def hit(self, key: str, *, now: float | None = None) -> float | None:
        """Count a hit; ``None`` if allowed, else the seconds until one is."""
        current = time.monotonic() if now is None else now
        key = hashlib.sha256(key.encode()).hexdigest()  # keys may hold names: keep digests
        with self._lock:
            hits = self._hits.setdefault(key, collections.deque())
            self._hits.move_to_end(key)
            while hits and hits[0] <= current - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, hits[0] + self.window - current)
            hits.append(current)
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
            return None
