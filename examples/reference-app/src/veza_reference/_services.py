"""Where the packages are built from the environment, once, at start-up.

Each package reads its own variables (``CDNConfig.from_env``, ``StorageConfig.from_env``,
``IceConfig.from_env``, ``PaymentsConfig.from_env``…). The embedded defaults of a
development machine (a local storage directory, the local edge with a generated Bunny
key, the sandbox payment provider, short TURN credentials) are typed values: this module
builds each package's config object itself (or evolves the one ``from_env`` read) and
hands it over. It never writes a default back into an environment mapping as a string
for a package to parse again: a value the app computed cannot be misread, and
``services.env`` stays exactly what the operator set. In production none of the
development defaults apply: a missing variable fails here, named.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import argon2
import attrs
import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from veza_cdn import CDN, CDNConfig, CDNMetrics, PlaybackResolver, Secret
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
from veza_reference._webhooks import register_handlers
from veza_storage import LocalStorage, ResumableUploads, S3Storage, StorageConfig
from veza_storage.sql import SQLUploadSessionStore
from veza_webrtc import CachedIceProbe, IceConfig, IceServers


def listen_on_any_port(host: str) -> socket.socket:
    """A socket listening on a port the kernel chose (``VEZA_PORT=0``, ``VEZA_EDGE_PORT=0``).

    The server is handed this socket: picking a free port, closing it and binding it again
    later would leave a window in which an outgoing connection (the app's own, to
    PostgreSQL, say) can take the port as its source port, and the server fails to start.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.bind((host, 0))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


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
    cdn_config: CDNConfig
    resolver: PlaybackResolver
    ice: IceServers
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
    listeners: dict[str, socket.socket] = attrs.field(factory=dict, repr=False)
    """Sockets already listening for the ``app`` and ``edge`` servers (ports chosen by the
    kernel); :func:`~veza_reference._serve.start` hands them to uvicorn."""

    def close(self) -> None:
        """Release connections and stop the sandbox providers."""
        _close_all(self.listeners)
        self.hyperswitch.close()
        if self.limits.client is not None:
            self.limits.client.close()
        if self.stripe is not None:
            self.stripe.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        self.engine.dispose()


def _storage_config(config: AppConfig, env: Mapping[str, str]) -> StorageConfig:
    """veza-storage's config: its variables, then the app's typed defaults where unset."""
    storage = StorageConfig.from_env(env, production=config.production)
    changes: dict[str, Any] = {}
    if not env.get("VEZA_STORAGE_PUBLIC_URL", "").strip():
        changes["public_url"] = f"{config.public_url}/files"
    if not config.production:
        if not env.get("VEZA_STORAGE_LOCAL_ROOT", "").strip():
            changes["local_root"] = config.data_dir / "storage"
        if not env.get("VEZA_STORAGE_SIGNING_KEY", "").strip():
            changes["signing_key"] = secrets.token_urlsafe(32)
    return attrs.evolve(storage, **changes)


def _cdn_config(config: AppConfig, env: Mapping[str, str], edge_url: str | None) -> CDNConfig:
    """veza-cdn's config: Bunny through the local edge in development unless ``CDN_*`` say."""
    if edge_url is not None and not config.production and not env.get("CDN_PROVIDER"):
        return CDNConfig(
            enabled=True,
            provider="bunny",
            base_url=edge_url,
            security_key=Secret(secrets.token_urlsafe(32)),
            ttl=3600,
        )
    return CDNConfig.from_env(env)


def _ice_config(env: Mapping[str, str]) -> IceConfig:
    """veza-webrtc's config, with short-lived TURN credentials unless ``WEBRTC_TURN_TTL`` says."""
    ice = IceConfig.from_env(env)
    if not env.get("WEBRTC_TURN_TTL", "").strip():
        ice = attrs.evolve(ice, turn_ttl=TURN_TTL)
    return ice


def _close_all(listeners: Mapping[str, socket.socket]) -> None:
    for sock in listeners.values():
        sock.close()


def build_services(
    environ: Mapping[str, str], *, registry: CollectorRegistry | None = None
) -> Services:
    """Build every service from ``environ`` (validated; errors name the variable)."""
    config = AppConfig.from_env(environ)
    listeners: dict[str, socket.socket] = {}
    with contextlib.ExitStack() as on_failure:  # a half-built app keeps no socket open
        on_failure.callback(_close_all, listeners)
        if config.port == 0:
            listeners["app"] = listen_on_any_port(config.host)
            port = int(listeners["app"].getsockname()[1])
            config = attrs.evolve(
                config,
                port=port,
                public_url=environ.get("VEZA_PUBLIC_URL") or f"http://{config.host}:{port}",
            )
        config.data_dir.mkdir(parents=True, exist_ok=True)
        edge_url = None
        if config.local_edge:
            if not config.edge_port:
                listeners["edge"] = listen_on_any_port(config.host)
            edge_port = config.edge_port or int(listeners["edge"].getsockname()[1])
            config = attrs.evolve(config, edge_port=edge_port)
            edge_url = f"http://{config.host}:{edge_port}"
        env = MaskedEnvironment(environ)

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
        storage_config = _storage_config(config, env)
        storage = storage_config.build()
        uploads = ResumableUploads(storage, SQLUploadSessionStore(engine, UPLOAD_SESSIONS))
        cdn_metrics = CDNMetrics(registry)
        cdn_config = _cdn_config(config, env, edge_url)
        cdn = CDN(cdn_config, metrics=cdn_metrics)
        resolver = PlaybackResolver(
            cdn, lambda key: storage.presign_get(key, expires_in=3600), metrics=cdn_metrics
        )
        ice = _ice_config(env).build()

        sandbox = None
        if config.payments_sandbox:
            sandbox = Sandbox.start(webhook_url=f"{config.public_url}/webhooks/hyperswitch")
        payments = (
            sandbox.payments_config() if sandbox is not None else PaymentsConfig.from_env(env)
        )
        hyperswitch = payments.build()
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
            cdn_config=cdn_config,
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
            listeners=listeners,
            sandbox=sandbox,
            # one TURN allocation per minute at most, whatever the readiness polling rate
            ice_probe=CachedIceProbe(ice, ttl=60.0, timeout=3.0) if ice.config.turn_urls else None,
        )
        register_handlers(services)
        on_failure.pop_all()
    return services


@contextlib.contextmanager
def services_from(environ: Mapping[str, str]) -> Iterator[Services]:
    """``build_services`` as a context manager (closes everything on exit)."""
    services = build_services(environ)
    try:
        yield services
    finally:
        services.close()
