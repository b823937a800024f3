"""The CDN service object: one per application, always constructed, gated by ``is_enabled``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import quote

from veza_cdn._akamai import AkamaiSigner
from veza_cdn._bunny import BunnySigner
from veza_cdn._cloudflare import CloudflareHMACSigner
from veza_cdn._cloudfront import CloudFrontSigner, load_private_key
from veza_cdn._config import CDNConfig
from veza_cdn._errors import CDNConfigurationError, CDNDisabledError
from veza_cdn._expiry import ExpiryPolicy
from veza_cdn._google import GoogleCDNSigner
from veza_cdn._hls import sign_playlist
from veza_cdn._metrics import CDNMetrics
from veza_cdn._r2 import R2Presigner
from veza_cdn._verification import Verification


class Signer(Protocol):
    """What every veza-cdn signer offers: sign one URL."""

    def sign_url(self, url: str, *, expires: int) -> str:
        """Sign ``url`` until ``expires`` (UTC epoch seconds)."""
        ...


def build_signer(config: CDNConfig) -> Signer:
    """Construct the provider's signer from a validated, enabled configuration.

    Raises:
        CDNConfigurationError: The CDN is disabled, or a provider value is unusable
            (for example an unreadable private key file).
    """
    if not config.enabled or config.provider is None:
        msg = "the CDN is disabled (CDN_ENABLED is not true): there is no signer to build"
        raise CDNConfigurationError(msg)
    key = config.security_key
    algorithm = config.hash_algorithm
    if config.provider == "bunny":
        assert key is not None  # noqa: S101 - CDNConfig validated it
        if config.token_scheme not in ("hs256", "sha256", "md5"):
            msg = f"CDN_TOKEN_SCHEME must be hs256, sha256 or md5, got {config.token_scheme!r}"
            raise CDNConfigurationError(msg)
        return BunnySigner(key, scheme=config.token_scheme, verify_keys=config.verify_keys)  # type: ignore[arg-type]
    if config.provider == "cloudfront":
        assert config.private_key_path is not None  # noqa: S101 - CDNConfig validated it
        assert config.key_pair_id is not None  # noqa: S101
        try:
            pem = config.private_key_path.read_bytes()
        except OSError as exc:
            msg = f"CDN_PRIVATE_KEY_PATH cannot be read ({exc.strerror})"
            raise CDNConfigurationError(msg) from None
        hash_name = (algorithm or "SHA1").upper()
        if hash_name not in ("SHA1", "SHA256"):
            msg = f"CDN_HASH_ALGORITHM must be SHA1 or SHA256 for CloudFront, got {algorithm!r}"
            raise CDNConfigurationError(msg)
        return CloudFrontSigner(config.key_pair_id, load_private_key(pem), hash_algorithm=hash_name)  # type: ignore[arg-type]
    if config.provider == "google":
        assert key is not None  # noqa: S101 - CDNConfig validated it
        assert config.key_name is not None  # noqa: S101
        return GoogleCDNSigner(config.key_name, key)
    if config.provider == "akamai":
        assert key is not None  # noqa: S101
        akamai_hash = (algorithm or "sha256").lower()
        if akamai_hash not in ("sha256", "sha1", "md5"):
            msg = f"CDN_HASH_ALGORITHM must be sha256, sha1 or md5 for Akamai, got {algorithm!r}"
            raise CDNConfigurationError(msg)
        return AkamaiSigner(key, algorithm=akamai_hash, verify_keys=config.verify_keys)  # type: ignore[arg-type]
    if config.provider == "cloudflare":
        assert key is not None  # noqa: S101
        return CloudflareHMACSigner(
            key, max_age=config.ttl + config.expiry_window, verify_keys=config.verify_keys
        )
    assert config.r2_secret_access_key is not None  # noqa: S101
    return R2Presigner(
        account_id=config.r2_account_id or "",
        access_key_id=config.r2_access_key_id or "",
        secret_access_key=config.r2_secret_access_key,
        bucket=config.r2_bucket or "",
        endpoint_url=config.r2_endpoint_url,
    )


class CDN:
    """The application's CDN: signs object keys under the CDN base URL.

    Always construct it (``CDN.from_env()``) and gate on :attr:`is_enabled`; a disabled
    CDN refuses to sign (:class:`CDNDisabledError`) rather than return unsigned URLs.

    Args:
        config: A validated :class:`CDNConfig`.
        signer: Use this signer instead of building one from ``config``.
        metrics: Counters to update (see :class:`CDNMetrics`).
        clock: Returns the current UTC epoch time (tests pass a fixed clock).
    """

    def __init__(
        self,
        config: CDNConfig,
        *,
        signer: Signer | None = None,
        metrics: CDNMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._expiry = ExpiryPolicy(config.ttl, config.expiry_window, config.backdate)
        self._signer = signer if signer is not None or not config.enabled else build_signer(config)
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
        """Verify a URL this service (or its rotation keys) signed."""
        signer = self.signer
        current = self._clock() if now is None else now
        if isinstance(signer, BunnySigner | CloudFrontSigner | AkamaiSigner):
            result = signer.verify(signed_url, now=current, user_ip=user_ip)
        elif isinstance(signer, GoogleCDNSigner | CloudflareHMACSigner | R2Presigner):
            result = signer.verify(signed_url, now=current)
        else:
            msg = f"{type(signer).__name__} has no verifier"
            raise CDNConfigurationError(msg)
        if self._metrics is not None:
            outcome = "valid" if result.valid else (result.reason.value if result.reason else "")
            self._metrics.verifications.labels(self._config.provider, outcome).inc()
        return result
