"""The CDN service object: one per application, always constructed, gated by ``is_enabled``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from veza_cdn._config import CDNConfig
from veza_cdn._errors import CDNConfigurationError, CDNDisabledError
from veza_cdn._expiry import ExpiryPolicy
from veza_cdn._hls import sign_playlist
from veza_cdn._metrics import CDNMetrics
from veza_cdn._providers import provider_config
from veza_cdn._r2 import R2Presigner
from veza_cdn._verification import Verification


class Signer(Protocol):
    """What every veza-cdn signer offers: sign one URL."""

    def sign_url(self, url: str, *, expires: int) -> str:
        """Sign ``url`` until ``expires`` (UTC epoch seconds)."""
        ...


@runtime_checkable
class Verifier(Protocol):
    """What :meth:`CDN.verify` calls: every built-in signer is one, and so can yours be.

    ``user_ip`` is the client's address for schemes that bind tokens to one; schemes
    that cannot (Google Cloud CDN, Cloudflare, R2) accept and ignore it.
    """

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Check ``signed_url`` as the edge would, at ``now`` (UTC epoch seconds)."""
        ...


SignerFactory = Callable[[CDNConfig], Signer]
"""Builds a provider's signer from a validated, enabled :class:`CDNConfig`."""


def _typed(config: CDNConfig) -> Signer:
    """The built-in factory: the provider's typed config, validated once, then built."""
    return provider_config(config).build()


SIGNER_FACTORIES: Mapping[str, SignerFactory] = MappingProxyType(
    {
        "bunny": _typed,
        "cloudfront": _typed,
        "google": _typed,
        "akamai": _typed,
        "cloudflare": _typed,
        "r2": _typed,
    }
)
"""The built-in provider → signer factory registry (read-only; pass your own mapping to
:func:`build_signer` or :class:`CDN` to replace or add a provider's signer)."""


def build_signer(
    config: CDNConfig, *, factories: Mapping[str, SignerFactory] | None = None
) -> Signer:
    """Construct the provider's signer from a validated, enabled configuration.

    Args:
        config: The configuration.
        factories: Provider name → factory, consulted before :data:`SIGNER_FACTORIES`
            (your own signer for a provider, without subclassing anything).

    Raises:
        CDNConfigurationError: The CDN is disabled, no factory knows the provider, or a
            provider value is unusable (for example an unreadable private key file).
    """
    config.validate()
    if not config.enabled or config.provider is None:
        msg = "the CDN is disabled (CDN_ENABLED is not true): there is no signer to build"
        raise CDNConfigurationError(msg)
    factory = (factories or {}).get(config.provider) or SIGNER_FACTORIES.get(config.provider)
    if factory is None:
        msg = f"no signer factory is registered for CDN provider {config.provider!r}"
        raise CDNConfigurationError(msg)
    return factory(config)


class CDN:
    """The application's CDN: signs object keys under the CDN base URL.

    Always construct it (``CDN.from_env()``) and gate on :attr:`is_enabled`; a disabled
    CDN refuses to sign (:class:`CDNDisabledError`) rather than return unsigned URLs.

    Args:
        config: A validated :class:`CDNConfig`.
        signer: Use this signer instead of building one from ``config``.
        factories: Provider name → signer factory, consulted before the built-in ones
            (see :func:`build_signer`).
        metrics: Counters to update (see :class:`CDNMetrics`).
        clock: Returns the current UTC epoch time (tests pass a fixed clock).
    """

    def __init__(
        self,
        config: CDNConfig,
        *,
        signer: Signer | None = None,
        factories: Mapping[str, SignerFactory] | None = None,
        metrics: CDNMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config.validate()
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._expiry = ExpiryPolicy(config.ttl, config.expiry_window, backdate=config.backdate)
        if signer is None and config.enabled:
            signer = build_signer(config, factories=factories)
        self._signer = signer
        base = config.base_url
        if base is None and isinstance(self._signer, R2Presigner):
            base = self._signer.base_url
        self._base_url = (base or "").rstrip("/")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, metrics: CDNMetrics | None = None
    ) -> CDN:
        """Build from ``CDN_*`` variables; fails at start-up on a bad configuration."""
        return cls(CDNConfig.from_env(environ), metrics=metrics)

    def __repr__(self) -> str:
        return (
            f"CDN(enabled={self.is_enabled}, provider={self._config.provider!r},"
            f" base_url={self._base_url!r}, signer={self._signer!r})"
        )

    @property
    def is_enabled(self) -> bool:
        """Whether signed CDN URLs are in use."""
        return self._config.enabled

    @property
    def provider(self) -> str | None:
        """The configured provider name."""
        return self._config.provider

    @property
    def signer(self) -> Signer:
        """The provider's signer, for options beyond :meth:`signed_url`."""
        if self._signer is None:
            msg = "the CDN is disabled (CDN_ENABLED is not true)"
            raise CDNDisabledError(msg)
        return self._signer

    @property
    def expiry(self) -> ExpiryPolicy:
        """The expiry policy applied to every URL this service signs."""
        return self._expiry

    def url_for(self, key: str) -> str:
        """The unsigned CDN URL of an object key (percent-encoded, RFC 3986)."""
        return f"{self._base_url}/{quote(key.lstrip('/'), safe='/~')}"

    def signed_url(self, key: str, *, now: float | None = None) -> str:
        """The signed CDN URL of an object key, valid for at least the configured TTL.

        Raises:
            CDNDisabledError: The CDN is disabled.
            CDNError: The key cannot be signed.
        """
        return self.sign_url(self.url_for(key), now=now)

    def sign_url(self, url: str, *, now: float | None = None) -> str:
        """Sign an absolute URL on the CDN with the configured expiry policy."""
        signer = self.signer
        current = self._clock() if now is None else now
        provider = self._config.provider or "custom"
        try:
            if isinstance(signer, R2Presigner):
                signed = signer.sign_url(url, expires=self._expiry.expires_at(current), now=current)
            else:
                signed = signer.sign_url(url, expires=self._expiry.expires_at(current))
        except Exception:
            if self._metrics is not None:
                self._metrics.signing_failures.labels(provider).inc()
            raise
        if self._metrics is not None:
            self._metrics.signed.labels(provider).inc()
        return signed

    def sign_playlist(self, playlist: str, *, playlist_key: str, now: float | None = None) -> str:
        """Sign every URI in an HLS playlist stored at ``playlist_key``."""
        current = self._clock() if now is None else now
        return sign_playlist(
            playlist,
            playlist_url=self.url_for(playlist_key),
            signer=self.signer,
            expires=self._expiry.expires_at(current),
        )

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Verify a URL this service (or its rotation keys) signed.

        Dispatches through the :class:`Verifier` protocol: any signer with a matching
        ``verify`` method takes part, built-in or not.

        Raises:
            CDNConfigurationError: The signer has no ``verify`` method.
        """
        signer = self.signer
        current = self._clock() if now is None else now
        if not isinstance(signer, Verifier):
            msg = f"{type(signer).__name__} has no verify(signed_url, *, now, user_ip) method"
            raise CDNConfigurationError(msg)
        result = signer.verify(signed_url, now=current, user_ip=user_ip)
        if self._metrics is not None:
            outcome = "valid" if result.valid else (result.reason.value if result.reason else "")
            self._metrics.verifications.labels(self._config.provider, outcome).inc()
        return result
