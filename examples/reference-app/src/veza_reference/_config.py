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

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


class AppConfigurationError(ValueError):
    """A setting is missing or invalid (the message names the variable)."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    msg = f"{name} must be true or false, got {raw!r}"
    raise AppConfigurationError(msg)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:  # noqa: PLR2004
        msg = f"{name} must be a TCP port (0-65535), got {raw!r}"
        raise AppConfigurationError(msg)
    return int(raw)


def _hidden(value: object) -> str:
    return "<hidden>" if value else "<unset>"


@attrs.frozen
class AppConfig:
    """Validated application settings.

    Attributes:
        production: ``APP_ENV=production``.
        data_dir: ``VEZA_DATA_DIR``: where embedded defaults keep their files.
        database_url: ``VEZA_DATABASE_URL`` (default: SQLite in the data directory).
        host: ``VEZA_HOST``.
        port: ``VEZA_PORT`` (0: any free port).
        public_url: ``VEZA_PUBLIC_URL``: how browsers reach the app.
        admin_token: ``VEZA_ADMIN_TOKEN``: bearer token of the admin routes (secret).
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
    database_url: str
    host: str
    port: int
    public_url: str
    admin_token: str = attrs.field(repr=_hidden)
    local_edge: bool
    edge_port: int
    origin_secret: str = attrs.field(repr=_hidden)
    payments_sandbox: bool
    workers: bool
    worker_interval: float
    hls_js_path: Path | None
    generated: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppConfig:  # noqa: PLR0915
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
        admin_token = env.get("VEZA_ADMIN_TOKEN", "").strip()
        if not admin_token:
            if production:
                msg = "VEZA_ADMIN_TOKEN is required in production (the admin routes' bearer token)"
                raise AppConfigurationError(msg)
            admin_token = secrets.token_urlsafe(24)
            generated.append("VEZA_ADMIN_TOKEN")
        if len(admin_token) < 16:  # noqa: PLR2004
            msg = "VEZA_ADMIN_TOKEN must be at least 16 characters"
            raise AppConfigurationError(msg)
        local_edge = _flag(env, "VEZA_LOCAL_EDGE", default=not production)
        origin_secret = env.get("VEZA_ORIGIN_SECRET", "").strip()
        if not origin_secret:
            if production and local_edge:
                msg = "VEZA_ORIGIN_SECRET is required in production when VEZA_LOCAL_EDGE is on"
                raise AppConfigurationError(msg)
            origin_secret = secrets.token_urlsafe(24)
            generated.append("VEZA_ORIGIN_SECRET")
        has_psp = bool(env.get("HYPERSWITCH_API_KEY", "").strip())
        sandbox = _flag(env, "VEZA_PAYMENTS_SANDBOX", default=not has_psp and not production)
        if sandbox and production:
            msg = "VEZA_PAYMENTS_SANDBOX cannot be on in production"
            raise AppConfigurationError(msg)
        if not sandbox and not has_psp:
            msg = "HYPERSWITCH_API_KEY is required when VEZA_PAYMENTS_SANDBOX is off"
            raise AppConfigurationError(msg)
        raw_interval = env.get("VEZA_WORKER_INTERVAL", "").strip() or "5"
        try:
            interval = float(raw_interval)
        except ValueError:
            interval = -1.0
        if not interval > 0:
            msg = f"VEZA_WORKER_INTERVAL must be positive seconds, got {raw_interval!r}"
            raise AppConfigurationError(msg)
        hls_js = env.get("VEZA_HLS_JS_PATH", "").strip()
        if hls_js and not Path(hls_js).is_file():
            msg = f"VEZA_HLS_JS_PATH does not name a file: {hls_js!r}"
            raise AppConfigurationError(msg)
        return cls(
            production=production,
            data_dir=data_dir,
            database_url=database_url,
            host=host,
            port=port,
            public_url=public_url,
            admin_token=admin_token,
            local_edge=local_edge,
            edge_port=_port(env, "VEZA_EDGE_PORT", 0),
            origin_secret=origin_secret,
            payments_sandbox=sandbox,
            workers=_flag(env, "VEZA_WORKERS", default=not production),
            worker_interval=interval,
            hls_js_path=Path(hls_js) if hls_js else None,
            generated=tuple(generated),
        )
