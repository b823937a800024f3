"""Who is calling, what they may do: login/logout routes and FastAPI dependencies.

Browsers authenticate with the signed session cookie (``HttpOnly``, ``SameSite=Lax``,
``Secure`` in production) and prove each state-changing request with the
``X-CSRF-Token`` header; automation uses ``Authorization: Bearer <VEZA_ADMIN_TOKEN>``
(an admin, no cookie, no CSRF). Every dependency here is ``async`` and does no I/O, so
the playback hot path checks its caller without a thread hop or a database round trip.
They find the services on ``request.app.state.services`` (set by ``create_app``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from veza_reference._errors import ClientError
from veza_reference._sessions import COOKIE, CSRF_HEADER, Principal, SessionCodec
from veza_reference._users import Role

if TYPE_CHECKING:
    from veza_reference._services import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BEARER_PRINCIPAL = "admin-token"
"""How audit rows and sessions name whoever used the admin bearer token."""


class LoginRequest(BaseModel):
    """A user id and its password."""

    user_id: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TooManyRequestsError(ClientError):
    """429 with ``Retry-After``."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(429, message)
        self.retry_after = math.ceil(retry_after)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def resolve(services: Services, request: Request) -> Principal | None:
    """The caller, or ``None`` (anonymous). A bad token or CSRF is an error, not anonymous.

    Raises:
        ClientError: 401 for a wrong bearer token, 403 for a cookie request that changes
            something without its CSRF token.
    """
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        expected = services.config.admin_token.reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected):
            raise ClientError(401, "the bearer token is not VEZA_ADMIN_TOKEN")
        return Principal(BEARER_PRINCIPAL, Role.ADMIN)
    principal = services.sessions.verify(request.cookies.get(COOKIE))
    if principal is None:
        return None
    if request.method not in SAFE_METHODS and not services.sessions.csrf_ok(
        principal, request.headers.get(CSRF_HEADER)
    ):
        raise ClientError(403, "missing or wrong X-CSRF-Token (reload the page)")
    return principal


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def optional_principal(request: Request) -> Principal | None:
    """The caller or ``None``; bad credentials are errors (see :func:`resolve`)."""
    return resolve(_services(request), request)


async def current_user(request: Request) -> Principal:
    """The caller; 401 when anonymous."""
    principal = resolve(_services(request), request)
    if principal is None:
        raise ClientError(401, "log in first")
    return principal


def role_required(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting ``roles`` (and admins): 401 anonymous, 403 others."""
    allowed = {*roles, Role.ADMIN}
    names = " or ".join(sorted(r.value for r in allowed))

    async def dependency(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
        if principal.role not in allowed:
            raise ClientError(403, f"this needs the {names} role")
        return principal

    return dependency


Caller = Annotated[Principal | None, Depends(optional_principal)]
"""Anyone; ``None`` when anonymous."""
User = Annotated[Principal, Depends(current_user)]
"""A logged-in account (or the bearer token)."""
Admin = Annotated[Principal, Depends(role_required(Role.ADMIN))]
"""An admin account or the bearer token."""
Creator = Annotated[Principal, Depends(role_required(Role.CREATOR))]
"""A creator (or an admin)."""


def actor(principal: Principal, services: Services) -> str:
    """How the ledger's audit rows name the caller (the token by a digest, never itself)."""
    if principal.session_id is None:
        return (
            "admin:" + hashlib.sha256(services.config.admin_token.reveal().encode()).hexdigest()[:8]
        )
    return f"user:{principal.user_id}"


def build_router(services: Services) -> APIRouter:
    """``/api/v1/auth``: login, logout, who am I (``/me``, 401 if nobody; ``/session``)."""
    router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
    secure = services.config.production or services.public_url.startswith("https://")
    own_origin = services.public_url

    @router.post("/login")
    def login(request: Request, body: LoginRequest, response: Response) -> dict[str, Any]:
        """Check the password (rate-limited), then set the session cookie."""
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") != own_origin:
            raise ClientError(403, "log in from the app's own page")
        client = _client(request)
        for limiter, key in (
            (services.limits.login, f"{client}|{body.user_id}"),
            (services.limits.login_address, client),
        ):
            wait = limiter.hit(key)
            if wait is not None:
                raise TooManyRequestsError(wait, "too many login attempts: wait and try again")
        account = services.users.authenticate(body.user_id, body.password)
        if account is None:
            raise ClientError(401, "wrong user or password")
        cookie, csrf = services.sessions.issue(account.id, account.role)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=services.sessions.ttl,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
        return {"user_id": account.id, "role": account.role.value, "csrf_token": csrf}

    @router.post("/logout")
    async def logout(response: Response, principal: User) -> dict[str, Any]:
        """End the session (the cookie is cleared and its id revoked)."""
        if principal.session_id is not None:
            services.sessions.revoke(principal.session_id)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
        return {"logged_out": True}

    @router.get("/session")
    async def current_session(principal: Caller) -> dict[str, Any]:
        """Who is this browser: ``{"user": null}`` (200) when nobody is logged in.

        The demo page asks this on every load. ``/me`` answers an anonymous caller 401,
        which is right for an API client but is logged by browsers as a console error on
        every logged-out visit; "nobody" is a normal answer to this question, not an
        error, so this route says it with a 200.
        """
        if principal is None:
            return {"user": None}
        csrf = (
            services.sessions.csrf_token(principal.session_id)
            if principal.session_id is not None
            else None
        )
        return {
            "user": {
                "user_id": principal.user_id,
                "role": principal.role.value,
                "csrf_token": csrf,
            }
        }

    @router.get("/me")
    async def me(principal: User) -> dict[str, Any]:
        """The caller and the CSRF token the page sends back on changes."""
        csrf = (
            services.sessions.csrf_token(principal.session_id)
            if principal.session_id is not None
            else None
        )
        return {"user_id": principal.user_id, "role": principal.role.value, "csrf_token": csrf}

    return router


__all__ = [
    "Admin",
    "Caller",
    "Creator",
    "Principal",
    "SessionCodec",
    "User",
    "actor",
    "build_router",
    "resolve",
]
