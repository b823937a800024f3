"""Extension by protocol: a signer veza-cdn has never heard of takes part in ``CDN``.

``CDN.verify`` dispatches through the ``Verifier`` protocol (it used to dispatch on
``isinstance`` of the built-in signers and refuse anything else), and a provider's
signer is built by a factory the caller may register (``factories=``).
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from veza_cdn import (
    CDN,
    SIGNER_FACTORIES,
    CDNConfig,
    CDNConfigurationError,
    FailureReason,
    Secret,
    Signer,
    Verification,
    Verifier,
    build_signer,
)

NOW = 1_700_000_000.0


class AcmeSigner:
    """A third party's scheme: ``?exp=E&sig=hex(HMAC-SHA256(key, path|E|ip))``."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.seen_ips: list[str | None] = []

    def _sig(self, path: str, expires: int, ip: str) -> str:
        return hmac.new(self._key, f"{path}|{expires}|{ip}".encode(), hashlib.sha256).hexdigest()

    def sign_url(self, url: str, *, expires: int) -> str:
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        return f"{url}?exp={expires}&sig={self._sig(path, expires, '')}"

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        self.seen_ips.append(user_ip)
        base, _, query = signed_url.partition("?")
        fields = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        path = "/" + base.split("://", 1)[1].split("/", 1)[1]
        expires = int(fields.get("exp", "0"))
        if not hmac.compare_digest(fields.get("sig", ""), self._sig(path, expires, "")):
            return Verification.fail(FailureReason.BAD_SIGNATURE, "acme: bad sig")
        if (now or 0) >= expires:
            return Verification.fail(FailureReason.EXPIRED, "acme: expired", expires=expires)
        return Verification.ok(expires=expires, path=path)


class SignOnly:
    def sign_url(self, url: str, *, expires: int) -> str:
        return f"{url}?e={expires}"


def _enabled() -> CDNConfig:
    return CDNConfig(
        enabled=True, provider="bunny", base_url="https://cdn.acme.test", security_key=Secret("k")
    )


def test_a_third_party_signer_given_directly_signs_and_verifies():
    signer = AcmeSigner(b"acme-key")
    assert isinstance(signer, Verifier)
    cdn = CDN(CDNConfig(), signer=signer, clock=lambda: NOW)
    url = cdn.sign_url("https://cdn.acme.test/tracks/a.mp3")
    result = cdn.verify(url, user_ip="203.0.113.9")
    assert result.valid and result.path == "/tracks/a.mp3"
    assert signer.seen_ips == ["203.0.113.9"]
    assert cdn.verify(url.replace("sig=", "sig=0")).reason is FailureReason.BAD_SIGNATURE


def test_a_third_party_signer_registered_for_a_provider():
    made: list[CDNConfig] = []

    def acme(config: CDNConfig) -> Signer:
        made.append(config)
        return AcmeSigner(config.security_key.reveal().encode())  # type: ignore[union-attr]

    cdn = CDN(_enabled(), factories={"bunny": acme}, clock=lambda: NOW)
    assert isinstance(cdn.signer, AcmeSigner) and made == [_enabled()]
    url = cdn.signed_url("tracks/b.mp3")
    assert "sig=" in url and cdn.verify(url).valid
    assert isinstance(build_signer(_enabled(), factories={"bunny": acme}), AcmeSigner)
    assert type(build_signer(_enabled())).__name__ == "BunnySigner"  # the default stays


def test_the_builtin_registry_is_read_only():
    assert set(SIGNER_FACTORIES) == {"bunny", "cloudfront", "google", "akamai", "cloudflare", "r2"}
    with pytest.raises(TypeError):
        SIGNER_FACTORIES["bunny"] = lambda config: SignOnly()  # type: ignore[index]


def test_a_signer_without_verify_is_a_clear_configuration_error():
    cdn = CDN(CDNConfig(), signer=SignOnly(), clock=lambda: NOW)
    assert "?e=" in cdn.sign_url("https://cdn.acme.test/a")
    with pytest.raises(CDNConfigurationError, match="SignOnly has no verify"):
        cdn.verify("https://cdn.acme.test/a?e=1")
