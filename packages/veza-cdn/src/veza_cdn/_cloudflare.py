"""Cloudflare's HMAC URL form (Workers / WAF ``is_timed_hmac_valid_v0``).

``verify=<issued_at>-<base64(HMAC-SHA256(secret, path + issued_at))>``, standard base64
with padding, percent-encoded in the query. The token records when it was issued; the
Worker (or WAF rule) decides how long that stays valid (``max_age``), so a signer built
with the same ``max_age`` can express an absolute expiry: ``issued_at = expires - max_age``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from urllib.parse import unquote

from veza_cdn._encoding import (
    b64_query_component,
    normalize_url,
    refuse_reserved,
    split_url,
)
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._hmac import KeyedHMAC
from veza_cdn._paths import canonical_path, checked_path
from veza_cdn._secret import Secret
from veza_cdn._verification import FailureReason, Verification, constant_time_equal


class CloudflareHMACSigner:
    """Signs and verifies Cloudflare HMAC-token URLs.

    Args:
        secret: The shared secret the Worker or WAF rule holds.
        max_age: Seconds a token stays valid after ``issued_at`` (the Worker's rule).
        param: The query parameter name (``verify``).
        clock_skew: Seconds a token's ``issued_at`` may lie in the future.
        verify_keys: Older secrets :meth:`verify` accepts during a rotation.
    """

    def __init__(
        self,
        secret: str | Secret[str],
        *,
        max_age: int = 3600,
        param: str = "verify",
        clock_skew: int = 30,
        verify_keys: Iterable[str | Secret[str]] = (),
    ) -> None:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not value:
            msg = "the Cloudflare HMAC secret is empty"
            raise CDNConfigurationError(msg)
        if max_age <= 0:
            msg = f"max_age must be positive, got {max_age}"
            raise CDNConfigurationError(msg)
        self._macs = tuple(
            KeyedHMAC(k.encode("utf-8"), "sha256")
            for k in (value, *(k.reveal() if isinstance(k, Secret) else k for k in verify_keys))
        )
        self._max_age = max_age
        self._param = param
        self._skew = clock_skew

    def __repr__(self) -> str:
        return f"CloudflareHMACSigner(max_age={self._max_age}, secret=Secret('********'))"

    @property
    def max_age(self) -> int:
        """Seconds a token stays valid after it was issued."""
        return self._max_age

    @staticmethod
    def _mac(mac: KeyedHMAC, path: str, issued_at: int) -> str:
        return base64.b64encode(mac.digest(f"{path}{issued_at}".encode())).decode("ascii")

    def sign_url_issued_at(self, url: str, *, issued_at: int) -> str:
        """Sign ``url`` with an explicit issue time (what the Worker measures from)."""
        url = normalize_url(url)
        _, path, _ = split_url(url)
        canonical_path(path)
        refuse_reserved(url, frozenset({self._param}), "Cloudflare")
        issued = int(issued_at)
        digest = self._macs[0].digest(f"{path}{issued}".encode())
        return (
            f"{url}{'&' if '?' in url else '?'}{self._param}={issued}-{b64_query_component(digest)}"
        )

    def sign_url(self, url: str, *, expires: int) -> str:
        """Sign ``url`` so the Worker's ``max_age`` rule lets it expire at ``expires``."""
        url = normalize_url(url)
        _, path, _ = split_url(url)
        canonical_path(path)
        refuse_reserved(url, frozenset({self._param}), "Cloudflare")
        issued = int(expires) - self._max_age
        digest = self._macs[0].digest(f"{path}{issued}".encode())
        return (
            f"{url}{'&' if '?' in url else '?'}{self._param}={issued}-{b64_query_component(digest)}"
        )

    def string_to_sign(self, url: str, *, issued_at: int) -> bytes:
        """The exact bytes the HMAC covers: the path and the issue time."""
        _, path, _ = split_url(normalize_url(url))
        return f"{path}{int(issued_at)}".encode()

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Verify as the Worker does: HMAC, then ``issued_at + max_age > now``.

        ``user_ip`` is accepted for :class:`~veza_cdn.Verifier`; this form binds no IP.
        """
        del user_ip
        try:
            _, path, query = split_url(signed_url)
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc))
        checked = checked_path(path)
        if isinstance(checked, Verification):
            return checked
        prefix = f"{self._param}="
        values = [unquote(p[len(prefix) :]) for p in query.split("&") if p.startswith(prefix)]
        if len(values) != 1:
            return Verification.fail(FailureReason.MALFORMED, f"expected one {self._param}")
        issued_text, sep, mac = values[0].partition("-")
        if not sep or not issued_text.isdigit():
            return Verification.fail(FailureReason.MALFORMED, "expected <issued_at>-<hmac>")
        issued_at = int(issued_text)
        expires = issued_at + self._max_age
        if not any(constant_time_equal(mac, self._mac(m, path, issued_at)) for m in self._macs):
            return Verification.fail(
                FailureReason.BAD_SIGNATURE, "hmac does not match", expires=expires
            )
        current = time.time() if now is None else now
        if current >= expires:
            return Verification.fail(
                FailureReason.EXPIRED, f"expired at {expires}", expires=expires
            )
        if issued_at > current + self._skew:
            return Verification.fail(
                FailureReason.NOT_YET_VALID, "issued in the future", expires=expires
            )
        return Verification.ok(expires=expires, path=checked.decoded)
