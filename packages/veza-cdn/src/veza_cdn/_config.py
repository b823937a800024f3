"""CDN configuration from the environment, validated at start-up.

The CDN service object always exists; ``CDN_ENABLED`` decides whether it is used. When
it is enabled, every value the chosen provider needs must be present and non-empty:
a missing key fails start-up with the variable's name, never a silent fallback to
unsigned URLs. Secrets are held in :class:`~veza_cdn.Secret` and never printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, get_args

import attrs

from veza_cdn._errors import CDNConfigurationError
from veza_cdn._secret import Secret

if TYPE_CHECKING:
    from veza_cdn._metrics import CDNMetrics
    from veza_cdn._service import CDN, SignerFactory

Provider = Literal["bunny", "cloudfront", "google", "akamai", "cloudflare", "r2"]
PROVIDERS: tuple[str, ...] = get_args(Provider)

# What each provider needs when enabled: (attribute, environment variable).
_REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "bunny": (("base_url", "CDN_BASE_URL"), ("security_key", "CDN_SECURITY_KEY")),
    "cloudfront": (
        ("base_url", "CDN_BASE_URL"),
        ("key_pair_id", "CDN_KEY_PAIR_ID"),
        ("private_key_path", "CDN_PRIVATE_KEY_PATH"),
    ),
    "google": (
        ("base_url", "CDN_BASE_URL"),
        ("key_name", "CDN_KEY_NAME"),
        ("security_key", "CDN_SECURITY_KEY"),
    ),
    "akamai": (("base_url", "CDN_BASE_URL"), ("security_key", "CDN_SECURITY_KEY")),
    "cloudflare": (("base_url", "CDN_BASE_URL"), ("security_key", "CDN_SECURITY_KEY")),
    "r2": (
        ("r2_account_id", "CDN_R2_ACCOUNT_ID"),
        ("r2_access_key_id", "CDN_R2_ACCESS_KEY_ID"),
        ("r2_secret_access_key", "CDN_R2_SECRET_ACCESS_KEY"),
        ("r2_bucket", "CDN_R2_BUCKET"),
    ),
}

_BUNNY_DEFAULT_SCHEME = "hs256"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(name: str, value: str | None, *, default: bool = False) -> bool:
    """Read a boolean variable the way every veza package does.

    Accepted, in any case and with surrounding blanks ignored: ``1``/``0``,
    ``true``/``false``, ``yes``/``no``, ``on``/``off``; unset or blank gives ``default``.
    Anything else is refused instead of being read as false, because a typo such as
    ``ENABLED=ture`` must stop start-up rather than quietly switch a feature off. The
    packages share no dependency, so each keeps this same function in its config
    module; ``tests/test_parse_bool.py`` runs one table through all of them so they
    cannot drift apart.

    Args:
        name: The variable's name, for the error message.
        value: Its raw value (``None`` when unset).
        default: The answer for an unset or blank variable.

    Raises:
        CDNConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise CDNConfigurationError(msg)


def _filled(value: object) -> bool:
    if isinstance(value, Secret):
        return bool(str(value.reveal()).strip())
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


@attrs.frozen(kw_only=True)
class CDNConfig:
    """Everything the CDN service needs; build with :meth:`from_env` or directly.

    A frozen value: constructing one checks nothing across fields. :meth:`from_env`,
    :meth:`build` and :class:`CDN` validate (the family's rule: validation lives in the
    factories, so a value can be built, compared and evolved freely).

    Attributes:
        enabled: ``CDN_ENABLED``. When false nothing else is required.
        provider: ``CDN_PROVIDER``: bunny, cloudfront, google, akamai, cloudflare, r2.
        base_url: ``CDN_BASE_URL``: the CDN hostname URL object keys are appended to.
        security_key: ``CDN_SECURITY_KEY``: Bunny token key, Google base64url key,
            Akamai hex key or Cloudflare HMAC secret.
        verify_keys: ``CDN_VERIFY_KEYS``: comma-separated older keys still accepted by
            verification during a rotation (Bunny, Akamai, Cloudflare).
        token_scheme: ``CDN_TOKEN_SCHEME``: Bunny's ``hs256`` (default), ``sha256`` or ``md5``.
        key_pair_id: ``CDN_KEY_PAIR_ID``: CloudFront public key id.
        private_key_path: ``CDN_PRIVATE_KEY_PATH``: CloudFront private key (PEM).
        key_name: ``CDN_KEY_NAME``: Google Cloud CDN key name.
        hash_algorithm: ``CDN_HASH_ALGORITHM``: CloudFront ``SHA1``/``SHA256``, Akamai
            ``sha256``/``sha1``/``md5``.
        ttl: ``CDN_TTL``: seconds a signed URL lives at least (default 3600).
        expiry_window: ``CDN_EXPIRY_WINDOW``: round expiries to this window (0: off).
        backdate: ``CDN_CLOCK_SKEW``: seconds start times are back-dated.
        r2_account_id: ``CDN_R2_ACCOUNT_ID``.
        r2_access_key_id: ``CDN_R2_ACCESS_KEY_ID``.
        r2_secret_access_key: ``CDN_R2_SECRET_ACCESS_KEY``.
        r2_bucket: ``CDN_R2_BUCKET``.
        r2_endpoint_url: ``CDN_R2_ENDPOINT_URL`` (override, e.g. a local S3 server).
    """

    enabled: bool = False
    provider: Provider | None = None
    base_url: str | None = None
    security_key: Secret[str] | None = None
    verify_keys: tuple[Secret[str], ...] = ()
    token_scheme: str = _BUNNY_DEFAULT_SCHEME
    key_pair_id: str | None = None
    private_key_path: Path | None = None
    key_name: str | None = None
    hash_algorithm: str | None = None
    ttl: int = 3600
    expiry_window: int = 0
    backdate: int = 0
    r2_account_id: str | None = None
    r2_access_key_id: str | None = None
    r2_secret_access_key: Secret[str] | None = None
    r2_bucket: str | None = None
    r2_endpoint_url: str | None = None

    def build(
        self,
        *,
        factories: Mapping[str, SignerFactory] | None = None,
        metrics: CDNMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> CDN:
        """The :class:`CDN` these settings describe: ``CDNConfig.from_env().build()``.

        Args:
            factories: Provider name → signer factory, consulted before the built-in
                ones (see :func:`build_signer`).
            metrics: Counters to update (see :class:`CDNMetrics`).
            clock: Returns the current UTC epoch time (tests pass a fixed clock).

        Raises:
            CDNConfigurationError: The settings are invalid (the message names the
                variable).
        """
        from veza_cdn._service import CDN  # noqa: PLC0415 - _service imports this module

        return CDN(self, factories=factories, metrics=metrics, clock=clock)

    def validate(self) -> None:
        """Check the settings across fields; :meth:`from_env`, :meth:`build` and ``CDN`` call it.

        Raises:
            CDNConfigurationError: A non-positive TTL, a negative window or skew, an
                unknown provider, a required value missing for the enabled provider, or a
                base URL that is not absolute; the message names the variable.
        """
        for name in ("ttl", "expiry_window", "backdate"):
            if getattr(self, name) < (1 if name == "ttl" else 0):
                msg = f"{name} ({_ENV_OF[name]}) must be a positive number of seconds"
                raise CDNConfigurationError(msg)
        if not self.enabled:
            return
        if self.provider not in PROVIDERS:
            msg = (
                f"CDN_PROVIDER must be one of {', '.join(PROVIDERS)} when CDN_ENABLED is"
                f" true, got {self.provider!r}"
            )
            raise CDNConfigurationError(msg)
        for attribute, variable in _REQUIRED[self.provider]:
            if not _filled(getattr(self, attribute)):
                msg = (
                    f"{variable} is missing or empty; CDN_PROVIDER={self.provider} with "
                    "CDN_ENABLED=true requires it (veza never falls back to unsigned URLs)"
                )
                raise CDNConfigurationError(msg)
        if self.base_url is not None and not self.base_url.startswith(("https://", "http://")):
            msg = f"CDN_BASE_URL must be an absolute http(s) URL, got {self.base_url!r}"
            raise CDNConfigurationError(msg)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CDNConfig:
        """Read and validate the ``CDN_*`` variables.

        Args:
            environ: The environment to read (default ``os.environ``); tests pass a dict.

        Raises:
            CDNConfigurationError: A value is invalid, or the enabled provider lacks one;
                the message names the variable.
        """
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() else None

        def secret(name: str) -> Secret[str] | None:
            value = env.get(name)
            return Secret(value.strip()) if value is not None else None

        def number(name: str, default: int) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                return int(raw)
            except ValueError:
                msg = f"{name} must be an integer number of seconds, got {raw!r}"
                raise CDNConfigurationError(msg) from None

        enabled = parse_bool("CDN_ENABLED", env.get("CDN_ENABLED"))
        provider = (text("CDN_PROVIDER") or "").lower() or None
        key_path = text("CDN_PRIVATE_KEY_PATH")
        verify_keys = tuple(
            Secret(k.strip()) for k in (env.get("CDN_VERIFY_KEYS") or "").split(",") if k.strip()
        )
        config = cls(
            enabled=enabled,
            provider=cast("Provider | None", provider),
            base_url=(text("CDN_BASE_URL") or "").rstrip("/") or None,
            security_key=secret("CDN_SECURITY_KEY"),
            verify_keys=verify_keys,
            token_scheme=(text("CDN_TOKEN_SCHEME") or "hs256").lower(),
            key_pair_id=text("CDN_KEY_PAIR_ID"),
            private_key_path=Path(key_path) if key_path else None,
            key_name=text("CDN_KEY_NAME"),
            hash_algorithm=text("CDN_HASH_ALGORITHM"),
            ttl=number("CDN_TTL", 3600),
            expiry_window=number("CDN_EXPIRY_WINDOW", 0),
            backdate=number("CDN_CLOCK_SKEW", 0),
            r2_account_id=text("CDN_R2_ACCOUNT_ID"),
            r2_access_key_id=text("CDN_R2_ACCESS_KEY_ID"),
            r2_secret_access_key=secret("CDN_R2_SECRET_ACCESS_KEY"),
            r2_bucket=text("CDN_R2_BUCKET"),
            r2_endpoint_url=text("CDN_R2_ENDPOINT_URL"),
        )
        config.validate()
        return config


_ENV_OF = {"ttl": "CDN_TTL", "expiry_window": "CDN_EXPIRY_WINDOW", "backdate": "CDN_CLOCK_SKEW"}
