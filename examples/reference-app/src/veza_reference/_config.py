"""The application's own settings; each package reads its own variables itself.

Everything comes from environment variables (a mapping, so the demo and the tests pass
their own without touching ``os.environ``), validated at start-up with errors that name
the variable. ``APP_ENV=production`` turns development conveniences into errors: no
generated admin token, no sandbox payment provider, no local edge unless asked for.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import attrs
import sqlalchemy as sa

from veza_cdn import Secret


class AppConfigurationError(ValueError):
    """A setting is missing or invalid (the message names the variable)."""


TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(name: str, value: str | None, *, default: bool = False) -> bool:
    """Read a boolean variable the way every veza package does.

    Accepted, in any case and with surrounding blanks ignored: ``1``/``0``,
    ``true``/``false``, ``yes``/``no``, ``on``/``off``; unset or blank gives ``default``.
    Anything else is refused instead of being read as false, because a typo such as
    ``ENABLED=ture`` must stop start-up rather than quietly switch a feature off. The
    packages share no dependency, so each keeps this same function in its config
    module, and so does this app; ``tests/test_parse_bool.py`` runs one table through
    all of them so they cannot drift apart.

    Args:
        name: The variable's name, for the error message.
        value: Its raw value (``None`` when unset).
        default: The answer for an unset or blank variable.

    Raises:
        AppConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise AppConfigurationError(msg)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    return parse_bool(name, env.get(name), default=default)


def _secret(
    env: Mapping[str, str],
    name: str,
    *,
    required: bool,
    why: str,
    minimum: int,
    generated: list[str],
) -> str:
    """``name``'s value; without one, a random one (noted in ``generated``) unless required."""
    value = env.get(name, "").strip()
    if not value:
        if required:
            msg = f"{name} is required in production ({why})"
            raise AppConfigurationError(msg)
        value = secrets.token_urlsafe(max(24, minimum))
        generated.append(name)
    if len(value) < minimum:
        msg = f"{name} must be at least {minimum} characters"
        raise AppConfigurationError(msg)
    return value


def _payments_sandbox(env: Mapping[str, str], *, production: bool) -> bool:
    """``VEZA_PAYMENTS_SANDBOX``: on by default without a Hyperswitch key, never in production."""
    has_psp = bool(env.get("HYPERSWITCH_API_KEY", "").strip())
    sandbox = _flag(env, "VEZA_PAYMENTS_SANDBOX", default=not has_psp and not production)
    if sandbox and production:
        msg = "VEZA_PAYMENTS_SANDBOX cannot be on in production"
        raise AppConfigurationError(msg)
    if not sandbox and not has_psp:
        msg = "HYPERSWITCH_API_KEY is required when VEZA_PAYMENTS_SANDBOX is off"
        raise AppConfigurationError(msg)
    return sandbox


def _positive_seconds(env: Mapping[str, str], name: str, default: str) -> float:
    raw = env.get(name, "").strip() or default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:  # NaN too
        msg = f"{name} must be positive seconds, got {raw!r}"
        raise AppConfigurationError(msg)
    return seconds


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        msg = f"{name} must be a TCP port (0-65535), got {raw!r}"
        raise AppConfigurationError(msg)
    return int(raw)


class DatabaseURL(Secret[str]):
    """A database (or Redis) URL: its repr and str show it with the password masked."""

    __slots__ = ()

    def __repr__(self) -> str:
        try:
            shown = sa.make_url(self.reveal()).render_as_string(hide_password=True)
        except (sa.exc.ArgumentError, ValueError):  # unparsable: show none of it
            shown = "<unparsable database URL>"
        return f"DatabaseURL({shown!r})"

    __str__ = __repr__


def _rate(env: Mapping[str, str], name: str, default: tuple[int, float]) -> tuple[int, float]:
    """``COUNT/SECONDS`` (``10/60``: ten per minute)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    count, _, seconds = raw.partition("/")
    try:
        parsed = (int(count), float(seconds))
    except ValueError:
        parsed = (0, 0.0)
    if parsed[0] < 1 or not parsed[1] > 0:
        msg = f"{name} must be COUNT/SECONDS (for example 10/60), got {raw!r}"
        raise AppConfigurationError(msg)
    return parsed


class MaskedMapping(dict[str, str]):
    """A mapping of names to secrets whose repr lists the names, never the values."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self)} names: {', '.join(sorted(self))}>)"

    __str__ = __repr__


class MaskedEnvironment(MaskedMapping):
    """The process environment the packages read (it holds every provider key).

    A ``repr(services)`` in a log or a traceback must not print it.
    """


@attrs.frozen
class AppConfig:
    """Validated application settings.

    Attributes:
        production: ``APP_ENV=production``.
        data_dir: ``VEZA_DATA_DIR``: where embedded defaults keep their files.
        database_url: ``VEZA_DATABASE_URL`` (default: SQLite in the data directory); its
            repr masks the password, ``.reveal()`` gives the URL.
        host: ``VEZA_HOST``.
        port: ``VEZA_PORT`` (0: any free port).
        public_url: ``VEZA_PUBLIC_URL``: how browsers reach the app.
        admin_token: ``VEZA_ADMIN_TOKEN``: bearer token of the admin routes (a
            :class:`veza_cdn.Secret`: ``.reveal()`` where it is used, masked elsewhere).
        session_secret: ``VEZA_SESSION_SECRET``: signs session cookies and CSRF tokens
            (secret; at least 32 characters; generated in development).
        login_rate: ``VEZA_LOGIN_RATE``: login attempts per account and client address
            (``COUNT/SECONDS``, default ``10/60``); one address gets five times that.
        turn_rate: ``VEZA_TURN_RATE``: TURN credentials per user (default ``30/60``).
        fast_password_hashing: ``VEZA_FAST_PASSWORD_HASHING``: argon2-cffi's cheapest
            profile, for test suites only (refused in production).
        redis_url: ``VEZA_REDIS_URL``: keep the rate limits in Redis, shared by every
            instance (unset: each process counts its own).
        redis_prefix: ``VEZA_REDIS_PREFIX``: the prefix of the app's Redis keys.
        local_edge: ``VEZA_LOCAL_EDGE``: run the local CDN edge (Bunny token checks).
        edge_port: ``VEZA_EDGE_PORT`` (0: any free port).
        origin_secret: ``VEZA_ORIGIN_SECRET``: what the edge presents to ``/origin``.
        payments_sandbox: ``VEZA_PAYMENTS_SANDBOX``: the built-in fake Hyperswitch/Stripe.
        workers: ``VEZA_WORKERS``: run sweeps and workers inside this process.
        worker_interval: ``VEZA_WORKER_INTERVAL`` seconds between worker runs.
        hls_js_path: ``VEZA_HLS_JS_PATH``: hls.js to serve at ``/vendor/hls.min.js``.
        generated: Names of the settings this process generated (development only).
    """

    production: bool
    data_dir: Path
    database_url: DatabaseURL
    host: str
    port: int
    public_url: str
    admin_token: Secret[str]
    session_secret: Secret[str]
    login_rate: tuple[int, float]
    turn_rate: tuple[int, float]
    fast_password_hashing: bool
    redis_url: DatabaseURL | None
    redis_prefix: str
    local_edge: bool
    edge_port: int
    origin_secret: Secret[str]
    payments_sandbox: bool
    workers: bool
    worker_interval: float
    hls_js_path: Path | None
    generated: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppConfig:
        """Read and validate the application's variables.

        Raises:
            AppConfigurationError: A variable is missing or invalid (named).
        """
        env = os.environ if environ is None else environ
        production = env.get("APP_ENV", "").strip().lower() == "production"
        generated: list[str] = []
        data_dir = Path(env.get("VEZA_DATA_DIR", "").strip() or "veza-data").resolve()
        database_url = env.get("VEZA_DATABASE_URL", "").strip()
        if not database_url:
            if production:
                msg = "VEZA_DATABASE_URL is required in production"
                raise AppConfigurationError(msg)
            database_url = f"sqlite:///{data_dir / 'veza.db'}"
        host = env.get("VEZA_HOST", "").strip() or "127.0.0.1"
        port = _port(env, "VEZA_PORT", 8000)
        public_url = (env.get("VEZA_PUBLIC_URL", "").strip() or f"http://{host}:{port}").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            msg = f"VEZA_PUBLIC_URL must be an http(s) URL, got {public_url!r}"
            raise AppConfigurationError(msg)
        admin_token = _secret(
            env,
            "VEZA_ADMIN_TOKEN",
            required=production,
            why="the admin routes' bearer token",
            minimum=16,
            generated=generated,
        )
        session_secret = _secret(
            env,
            "VEZA_SESSION_SECRET",
            required=production,
            why="it signs session cookies",
            minimum=32,
            generated=generated,
        )
        fast_hashing = _flag(env, "VEZA_FAST_PASSWORD_HASHING", default=False)
        if fast_hashing and production:
            msg = "VEZA_FAST_PASSWORD_HASHING cannot be on in production"
            raise AppConfigurationError(msg)
        redis_url = env.get("VEZA_REDIS_URL", "").strip()
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            msg = "VEZA_REDIS_URL must be a redis://, rediss:// or unix:// URL"
            raise AppConfigurationError(msg)
        local_edge = _flag(env, "VEZA_LOCAL_EDGE", default=not production)
        origin_secret = _secret(
            env,
            "VEZA_ORIGIN_SECRET",
            required=production and local_edge,
            why="VEZA_LOCAL_EDGE is on",
            minimum=1,
            generated=generated,
        )
        sandbox = _payments_sandbox(env, production=production)
        interval = _positive_seconds(env, "VEZA_WORKER_INTERVAL", "5")
        hls_js = env.get("VEZA_HLS_JS_PATH", "").strip()
        if hls_js and not Path(hls_js).is_file():
            msg = f"VEZA_HLS_JS_PATH does not name a file: {hls_js!r}"
            raise AppConfigurationError(msg)
        return cls(
            production=production,
            data_dir=data_dir,
            database_url=DatabaseURL(database_url),
            host=host,
            port=port,
            public_url=public_url,
            admin_token=Secret(admin_token),
            session_secret=Secret(session_secret),
            login_rate=_rate(env, "VEZA_LOGIN_RATE", (10, 60.0)),
            turn_rate=_rate(env, "VEZA_TURN_RATE", (30, 60.0)),
            fast_password_hashing=fast_hashing,
            redis_url=DatabaseURL(redis_url) if redis_url else None,
            redis_prefix=env.get("VEZA_REDIS_PREFIX", "").strip() or "veza",
            local_edge=local_edge,
            edge_port=_port(env, "VEZA_EDGE_PORT", 0),
            origin_secret=Secret(origin_secret),
            payments_sandbox=sandbox,
            workers=_flag(env, "VEZA_WORKERS", default=not production),
            worker_interval=interval,
            hls_js_path=Path(hls_js) if hls_js else None,
            generated=tuple(generated),
        )
