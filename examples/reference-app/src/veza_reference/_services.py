"""Where the packages are built from the environment, once, at start-up.

Each package reads its own variables (``CDNConfig.from_env``, ``StorageConfig.from_env``,
``IceConfig.from_env``, ``PaymentsConfig.from_env``…); this module only fills in the
embedded defaults of a development machine (SQLite, a local storage directory, the local
edge with a generated Bunny key, the sandbox payment provider) and wires the objects
together. In production none of those defaults apply: a missing variable fails here,
named.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Mapping
from typing import Any, Protocol

import argon2
import attrs
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from veza_cdn import CDN, CDNConfig, CDNMetrics, PlaybackResolver
from veza_ledger import Ledger, check_schema, create_engine, upgrade
from veza_ledger.adapters import PaymentsProviderView
from veza_ledger.metrics import LedgerMetrics
from veza_payments import HyperswitchClient, PaymentsConfig, StripeConnect, WebhookIntake
from veza_reference._config import AppConfig, AppConfigurationError, MaskedEnvironment
from veza_reference._db import UPLOAD_SESSIONS, create_app_tables
from veza_reference._redis_limits import RedisRateLimiter
from veza_reference._sandbox import Sandbox
from veza_reference._sessions import RateLimiter, SessionCodec
from veza_reference._users import Users
from veza_storage import LocalStorage, ResumableUploads, S3Storage, StorageConfig, build_storage
from veza_storage.sql import SQLUploadSessionStore
from veza_webrtc import CachedIceProbe, IceConfig


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for ``VEZA_PORT=0`` / ``VEZA_EDGE_PORT=0``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define
class AppMetrics:
    """The application's own counters (the packages register theirs beside them)."""

    playback: Counter
    webhooks: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AppMetrics:
        """Register into ``registry``."""
        return cls(
            playback=Counter(
                "veza_app_playback_redirects",
                "Stream/download redirects.",
                ["source"],
                registry=registry,
            ),
            webhooks=Counter(
                "veza_app_webhooks", "Webhook deliveries by answer.", ["status"], registry=registry
            ),
        )


TURN_TTL = 600


class Limiter(Protocol):
    """What the routes need of a rate limiter (in process or in Redis)."""

    def hit(self, key: str, *, now: float | None = None) -> float | None:
        """``None`` if allowed, else the seconds until a hit is."""
        ...


@attrs.frozen
class Limits:
    """The app's rate limits: in process by default, in Redis with ``VEZA_REDIS_URL``.

    Attributes:
        login: Attempts per client address and account (``VEZA_LOGIN_RATE``).
        login_address: Attempts per client address, any account (five times ``login``).
        turn: TURN credentials per user (``VEZA_TURN_RATE``).
    """

    login: Limiter
    login_address: Limiter
    turn: Limiter
    client: Any = attrs.field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: AppConfig) -> Limits:
        """Build the limiters from the validated settings."""
        count, window = config.login_rate
        if config.redis_url is None:
            return cls(
                login=RateLimiter(count, window),
                login_address=RateLimiter(count * 5, window),
                turn=RateLimiter(*config.turn_rate),
            )
        import redis  # noqa: PLC0415 - only when configured

        client = redis.Redis.from_url(config.redis_url.reveal(), socket_timeout=2)
        prefix = config.redis_prefix
        return cls(
            login=RedisRateLimiter(client, "login", count, window, prefix=prefix),
            login_address=RedisRateLimiter(
                client, "login-address", count * 5, window, prefix=prefix
            ),
            turn=RedisRateLimiter(client, "turn", *config.turn_rate, prefix=prefix),
            client=client,
        )


@attrs.define
class Services:
    """Everything the routes use, built once. Its repr shows no secret (tested)."""

    config: AppConfig
    env: MaskedEnvironment
    engine: sa.Engine
    ledger: Ledger
    storage: LocalStorage | S3Storage
    storage_config: StorageConfig
    uploads: ResumableUploads
    cdn: CDN
    resolver: PlaybackResolver
    ice: IceConfig
    payments: PaymentsConfig
    hyperswitch: HyperswitchClient
    stripe: StripeConnect | None
    intake: WebhookIntake
    registry: CollectorRegistry
    metrics: AppMetrics
    provider_view: PaymentsProviderView
    public_url: str
    edge_url: str | None
    users: Users
    sessions: SessionCodec
    limits: Limits
    sandbox: Sandbox | None = None
    ice_probe: CachedIceProbe | None = None
    """``/readyz``'s TURN check (``None`` when no TURN URL is configured)."""
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def close(self) -> None:
        """Release connections and stop the sandbox providers."""
        self.hyperswitch.close()
        if self.limits.client is not None:
            self.limits.client.close()
        if self.stripe is not None:
            self.stripe.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        self.engine.dispose()


def _defaults(config: AppConfig, env: Mapping[str, str], edge_url: str | None) -> MaskedEnvironment:
    """The embedded development defaults, under whatever the environment says."""
    out = MaskedEnvironment(env)
    out.setdefault("WEBRTC_TURN_TTL", str(TURN_TTL))  # short-lived TURN credentials
    if config.production:
        return out
    out.setdefault("VEZA_STORAGE_LOCAL_ROOT", str(config.data_dir / "storage"))
    out.setdefault("VEZA_STORAGE_SIGNING_KEY", secrets.token_urlsafe(32))
    if edge_url is not None and not out.get("CDN_PROVIDER"):
        out.update(
            CDN_ENABLED="true",
            CDN_PROVIDER="bunny",
            CDN_BASE_URL=edge_url,
            CDN_SECURITY_KEY=secrets.token_urlsafe(32),
            CDN_TTL="3600",
        )
    return out


def build_services(
    environ: Mapping[str, str], *, registry: CollectorRegistry | None = None
) -> Services:
    """Build every service from ``environ`` (validated; errors name the variable)."""
    config = AppConfig.from_env(environ)
    if config.port == 0:
        port = free_port()
        config = attrs.evolve(
            config,
            port=port,
            public_url=environ.get("VEZA_PUBLIC_URL") or f"http://{config.host}:{port}",
        )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    edge_url = None
    if config.local_edge:
        edge_port = config.edge_port or free_port()
        config = attrs.evolve(config, edge_port=edge_port)
        edge_url = f"http://{config.host}:{edge_port}"
    env = _defaults(config, environ, edge_url)
    env.setdefault("VEZA_STORAGE_PUBLIC_URL", f"{config.public_url}/files")

    engine = create_engine(config.database_url.reveal())
    if config.production:
        check_schema(engine)  # production runs `veza-ledger db upgrade` as a release step
    else:
        upgrade(engine)
    create_app_tables(engine)
    users = Users(
        engine,
        argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
        if config.fast_password_hashing
        else None,
    )
    if config.production and (demo := users.demo_accounts()):
        engine.dispose()
        msg = (
            f"the database holds veza-demo accounts ({', '.join(sorted(demo))}) with known "
            "passwords: production refuses to start until they are deleted"
        )
        raise AppConfigurationError(msg)

    registry = registry or CollectorRegistry()
    storage_config = StorageConfig.from_env(env, production=config.production)
    storage = build_storage(storage_config)
    uploads = ResumableUploads(storage, SQLUploadSessionStore(engine, UPLOAD_SESSIONS))
    cdn_metrics = CDNMetrics(registry)
    cdn = CDN(CDNConfig.from_env(env), metrics=cdn_metrics)
    resolver = PlaybackResolver(
        cdn, lambda key: storage.presign_get(key, expires_in=3600), metrics=cdn_metrics
    )
    ice = IceConfig.from_env(env)

    sandbox = None
    if config.payments_sandbox:
        sandbox = Sandbox.start(webhook_url=f"{config.public_url}/webhooks/hyperswitch")
        env.update(sandbox.environment())
    payments = PaymentsConfig.from_env(env)
    hyperswitch = payments.hyperswitch_client()
    stripe = payments.stripe_connect() if payments.stripe_secret_key else None
    ledger = Ledger(engine)
    intake = payments.webhook_intake(ledger.webhook_log)
    LedgerMetrics(engine, registry)
    services = Services(
        config=config,
        env=env,
        engine=engine,
        ledger=ledger,
        storage=storage,
        storage_config=storage_config,
        uploads=uploads,
        cdn=cdn,
        resolver=resolver,
        ice=ice,
        payments=payments,
        hyperswitch=hyperswitch,
        stripe=stripe,
        intake=intake,
        registry=registry,
        metrics=AppMetrics.create(registry),
        provider_view=PaymentsProviderView(hyperswitch, stripe),
        public_url=config.public_url,
        edge_url=edge_url,
        users=users,
        sessions=SessionCodec(config.session_secret.reveal()),
        limits=Limits.from_config(config),
        sandbox=sandbox,
        # one TURN allocation per minute at most, whatever the readiness polling rate
        ice_probe=CachedIceProbe(ice, ttl=60.0, timeout=3.0) if ice.turn_urls else None,
    )
    from veza_reference._webhooks import register_handlers  # noqa: PLC0415 - wiring

    register_handlers(services)
    return services


@contextlib.contextmanager
def services_from(environ: Mapping[str, str]) -> Any:  # noqa: ANN401
    """``build_services`` as a context manager (closes everything on exit)."""
    services = build_services(environ)
    try:
        yield services
    finally:
        services.close()
