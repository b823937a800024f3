"""Typed per-provider configuration: one small frozen value per CDN, each with ``build()``.

``CDNConfig`` stays the flat, environment-shaped record (``CDN_*`` variables, one field
per variable across six providers, ``token_scheme: str``). Each provider's config here
holds only what that provider uses, with ``Literal`` fields, and is made **once** by a
factory, :func:`provider_config`, which validates the strings and names the variable
on error. A config value never validates
in ``__attrs_post_init__``: constructing one by hand is for callers who already hold
typed values (tests, code that does not use the environment), and its ``build()``
fails in the signer's constructor if a value is unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias, TypeVar, cast

import attrs

from veza_cdn._akamai import AkamaiAlgorithm, AkamaiSigner
from veza_cdn._bunny import BunnyScheme, BunnySigner
from veza_cdn._cloudflare import CloudflareHMACSigner
from veza_cdn._cloudfront import CloudFrontSigner, HashAlgorithm, load_private_key
from veza_cdn._config import CDNConfig
from veza_cdn._errors import CDNConfigurationError
from veza_cdn._google import GoogleCDNSigner
from veza_cdn._r2 import R2Presigner
from veza_cdn._secret import Secret


@attrs.frozen
class BunnyConfig:
    """Bunny.net token authentication.

    Attributes:
        security_key: The pull zone's URL token authentication key.
        scheme: ``hs256`` (current), ``sha256`` (legacy) or ``md5`` (basic).
        verify_keys: Older keys still accepted while rotating.
    """

    security_key: Secret[str]
    scheme: BunnyScheme = "hs256"
    verify_keys: tuple[Secret[str], ...] = attrs.field(default=(), kw_only=True)

    def build(self) -> BunnySigner:
        """The signer (raises :class:`CDNConfigurationError` for an empty key)."""
        return BunnySigner(self.security_key, scheme=self.scheme, verify_keys=self.verify_keys)


@attrs.frozen
class CloudFrontConfig:
    """Amazon CloudFront signed URLs and cookies.

    Attributes:
        key_pair_id: The CloudFront public key id.
        private_key_path: The matching private key (PEM), RSA-2048 or ECDSA P-256.
        hash_algorithm: ``SHA1`` (CloudFront's default) or ``SHA256``.
    """

    key_pair_id: str
    private_key_path: Path
    hash_algorithm: HashAlgorithm = attrs.field(default="SHA1", kw_only=True)

    def build(self) -> CloudFrontSigner:
        """The signer; the key file is read here, not when the config is made."""
        try:
            pem = self.private_key_path.read_bytes()
        except OSError as exc:
            msg = f"CDN_PRIVATE_KEY_PATH cannot be read ({exc.strerror})"
            raise CDNConfigurationError(msg) from None
        return CloudFrontSigner(
            self.key_pair_id, load_private_key(pem), hash_algorithm=self.hash_algorithm
        )


@attrs.frozen
class GoogleConfig:
    """Google Cloud CDN signed URLs, URL prefixes and cookies.

    Attributes:
        key_name: The signed-request key's name.
        key: The 128-bit key, base64url as Google shows it.
    """

    key_name: str
    key: Secret[str]

    def build(self) -> GoogleCDNSigner:
        """The signer (raises :class:`CDNConfigurationError` for a malformed key)."""
        return GoogleCDNSigner(self.key_name, self.key)


@attrs.frozen
class AkamaiConfig:
    """Akamai EdgeAuth (Token Auth 2.0).

    Attributes:
        key: The EdgeAuth key, hexadecimal.
        algorithm: ``sha256``, ``sha1`` or ``md5``.
        verify_keys: Older keys still accepted while rotating.
    """

    key: Secret[str]
    algorithm: AkamaiAlgorithm = "sha256"
    verify_keys: tuple[Secret[str], ...] = attrs.field(default=(), kw_only=True)

    def build(self) -> AkamaiSigner:
        """The signer (raises :class:`CDNConfigurationError` for a malformed key)."""
        return AkamaiSigner(self.key, algorithm=self.algorithm, verify_keys=self.verify_keys)


@attrs.frozen
class CloudflareConfig:
    """Cloudflare's HMAC URL form (Workers / WAF).

    Attributes:
        secret: The shared secret the Worker or rule holds.
        max_age: Seconds a token stays valid after it is issued (the Worker's rule).
        verify_keys: Older secrets still accepted while rotating.
    """

    secret: Secret[str]
    max_age: int = 3600
    verify_keys: tuple[Secret[str], ...] = attrs.field(default=(), kw_only=True)

    def build(self) -> CloudflareHMACSigner:
        """The signer."""
        return CloudflareHMACSigner(self.secret, max_age=self.max_age, verify_keys=self.verify_keys)


@attrs.frozen
class R2Config:
    """Cloudflare R2 presigned URLs (needs ``veza-cdn[r2]``).

    Attributes:
        account_id: The Cloudflare account id.
        access_key_id: The R2 API token's access key id.
        secret_access_key: Its secret.
        bucket: The bucket.
        endpoint_url: An endpoint override (a local S3 server in tests).
    """

    account_id: str
    access_key_id: str
    secret_access_key: Secret[str] = attrs.field(kw_only=True)
    bucket: str = attrs.field(kw_only=True)
    endpoint_url: str | None = attrs.field(default=None, kw_only=True)

    def build(self) -> R2Presigner:
        """The presigner (imports boto3 now)."""
        return R2Presigner(
            account_id=self.account_id,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            bucket=self.bucket,
            endpoint_url=self.endpoint_url,
        )


ProviderConfig: TypeAlias = (
    BunnyConfig | CloudFrontConfig | GoogleConfig | AkamaiConfig | CloudflareConfig | R2Config
)


def _choice(value: str, choices: tuple[str, ...], variable: str) -> str:
    if value not in choices:
        msg = f"{variable} must be one of {', '.join(choices)}, got {value!r}"
        raise CDNConfigurationError(msg)
    return value


_T = TypeVar("_T")


def _present(value: _T | None, variable: str) -> _T:
    if value is None:
        msg = f"{variable} is missing for the configured CDN provider"
        raise CDNConfigurationError(msg)
    return value


def provider_config(config: CDNConfig) -> ProviderConfig:
    """The typed configuration of ``config``'s provider, validated once.

    Raises:
        CDNConfigurationError: The CDN is disabled, or a value is missing or not one of
            its choices; the message names the environment variable.
    """
    if not config.enabled or config.provider is None:
        msg = "the CDN is disabled (CDN_ENABLED is not true): there is no provider config"
        raise CDNConfigurationError(msg)
    provider = config.provider
    if provider == "bunny":
        scheme = _choice(config.token_scheme, ("hs256", "sha256", "md5"), "CDN_TOKEN_SCHEME")
        return BunnyConfig(
            security_key=_present(config.security_key, "CDN_SECURITY_KEY"),
            scheme=cast("BunnyScheme", scheme),
            verify_keys=config.verify_keys,
        )
    if provider == "cloudfront":
        hash_name = _choice(
            (config.hash_algorithm or "SHA1").upper(), ("SHA1", "SHA256"), "CDN_HASH_ALGORITHM"
        )
        return CloudFrontConfig(
            key_pair_id=_present(config.key_pair_id, "CDN_KEY_PAIR_ID"),
            private_key_path=_present(config.private_key_path, "CDN_PRIVATE_KEY_PATH"),
            hash_algorithm=cast("HashAlgorithm", hash_name),
        )
    if provider == "google":
        return GoogleConfig(
            key_name=_present(config.key_name, "CDN_KEY_NAME"),
            key=_present(config.security_key, "CDN_SECURITY_KEY"),
        )
    if provider == "akamai":
        algorithm = _choice(
            (config.hash_algorithm or "sha256").lower(),
            ("sha256", "sha1", "md5"),
            "CDN_HASH_ALGORITHM",
        )
        return AkamaiConfig(
            key=_present(config.security_key, "CDN_SECURITY_KEY"),
            algorithm=cast("AkamaiAlgorithm", algorithm),
            verify_keys=config.verify_keys,
        )
    if provider == "cloudflare":
        return CloudflareConfig(
            secret=_present(config.security_key, "CDN_SECURITY_KEY"),
            max_age=config.ttl + config.expiry_window,
            verify_keys=config.verify_keys,
        )
    return R2Config(
        account_id=_present(config.r2_account_id, "CDN_R2_ACCOUNT_ID"),
        access_key_id=_present(config.r2_access_key_id, "CDN_R2_ACCESS_KEY_ID"),
        secret_access_key=_present(config.r2_secret_access_key, "CDN_R2_SECRET_ACCESS_KEY"),
        bucket=_present(config.r2_bucket, "CDN_R2_BUCKET"),
        endpoint_url=config.r2_endpoint_url,
    )
