"""Google Cloud CDN signed URLs, signed URL prefixes and signed cookies.

* Signed URL: append ``Expires=E&KeyName=N`` to the URL (``?`` or ``&``), sign the whole
  resulting URL with HMAC-SHA1 under the base64url-decoded key, append
  ``&Signature=`` + base64url **with padding**.
* Signed URL prefix: the signed string is ``URLPrefix=B64(prefix)&Expires=E&KeyName=N``
  only; it is appended to the URL with the signature. One signature covers every URL
  that starts with the prefix (an HLS playlist's directory).
* Signed cookie: ``Cloud-CDN-Cookie=URLPrefix=…:Expires=…:KeyName=…:Signature=…``,
  the signed string using ``:`` separators.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping

from veza_cdn._encoding import (
    b64url,
    normalize_url,
    refuse_reserved,
    split_url,
    strict_b64decode,
)
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._hmac import KeyedHMAC
from veza_cdn._paths import (
    CanonicalPath,
    canonical_path,
    checked_path,
    plainly_under,
    prefix_scope,
    url_within_prefix,
)
from veza_cdn._secret import Secret
from veza_cdn._verification import (
    FailureReason,
    Verification,
    check_time_window,
    constant_time_equal,
)

COOKIE_NAME = "Cloud-CDN-Cookie"
_RESERVED = frozenset({"Expires", "KeyName", "Signature", "URLPrefix"})
_KEY_BYTES = 16


def decode_key(value: str | Secret[str], *, what: str = "the Google Cloud CDN key") -> bytes:
    """Decode a base64url signing key (Cloud CDN keys are 128-bit).

    Raises:
        CDNConfigurationError: Not base64url, or not 16 bytes. No key material in the
            message.
    """
    text = (value.reveal() if isinstance(value, Secret) else value).strip()
    standard = text.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        msg = f"{what} is not valid base64url"
        raise CDNConfigurationError(msg) from None
    if len(raw) != _KEY_BYTES:
        msg = f"{what} must decode to 16 bytes (a 128-bit Cloud CDN key), got {len(raw)}"
        raise CDNConfigurationError(msg)
    return raw


class GoogleCDNSigner:
    """Signs and verifies Google Cloud CDN URLs, URL prefixes and cookies.

    Args:
        key_name: The signed-request key's name on the backend bucket or service.
        key: The key, base64url as Google shows it.
        verify_keys: More ``name → base64url key`` pairs :meth:`verify` accepts.
    """

    def __init__(
        self,
        key_name: str,
        key: str | Secret[str],
        *,
        verify_keys: Mapping[str, str | Secret[str]] | None = None,
    ) -> None:
        if not key_name.strip():
            msg = "the Google Cloud CDN key name is empty"
            raise CDNConfigurationError(msg)
        self._key_name = key_name.strip()
        self._keys = {self._key_name: decode_key(key)}
        for name, value in (verify_keys or {}).items():
            self._keys[name] = decode_key(value, what=f"verify key {name!r}")
        self._macs = {name: KeyedHMAC(raw, "sha1") for name, raw in self._keys.items()}

    def __repr__(self) -> str:
        return f"GoogleCDNSigner(key_name={self._key_name!r}, key=Secret('********'))"

    def _signature(self, message: str, key_name: str | None = None) -> str:
        return b64url(self._macs[key_name or self._key_name].digest(message.encode("utf-8")))

    def sign_url(self, url: str, *, expires: int) -> str:
        """Sign one URL (the signature covers the full URL, host and query included)."""
        url = normalize_url(url)
        canonical_path(split_url(url)[1])
        refuse_reserved(url, _RESERVED, "Google Cloud CDN")
        to_sign = (
            f"{url}{'&' if '?' in url else '?'}Expires={int(expires)}&KeyName={self._key_name}"
        )
        return f"{to_sign}&Signature={self._signature(to_sign)}"

    def _prefix_policy(self, prefix: str, expires: int, separator: str) -> str:
        prefix = normalize_url(prefix)
        prefix_scope(prefix)  # a folder on one origin, safe by the path rule
        encoded = b64url(prefix.encode("utf-8"))
        return separator.join(
            (f"URLPrefix={encoded}", f"Expires={int(expires)}", f"KeyName={self._key_name}")
        )

    def sign_url_prefix(self, url: str, *, prefix: str, expires: int) -> str:
        """Sign ``url`` with a token valid for every URL starting with ``prefix``."""
        url = normalize_url(url)
        refuse_reserved(url, _RESERVED, "Google Cloud CDN")
        policy = self._prefix_policy(prefix, expires, "&")
        origin, path, _ = split_url(url)
        if not url_within_prefix(normalize_url(prefix), origin, canonical_path(path)):
            msg = f"the URL is not under the prefix {prefix!r} (whole path segments)"
            raise SigningError(msg)
        return f"{url}{'&' if '?' in url else '?'}{policy}&Signature={self._signature(policy)}"

    def signed_cookie(self, prefix: str, *, expires: int) -> str:
        """The ``Cloud-CDN-Cookie`` value (without the name) for everything under ``prefix``."""
        policy = self._prefix_policy(prefix, expires, ":")
        return f"{policy}:Signature={self._signature(policy)}"

    def scoped(self, prefix_url: str, *, expires: int) -> Callable[[str], str]:
        """One URL-prefix signature for every URL under ``prefix_url`` (HLS)."""
        prefix = normalize_url(prefix_url)
        policy = self._prefix_policy(prefix, expires, "&")
        params = f"{policy}&Signature={self._signature(policy)}"

        folder = prefix.rstrip("/") + "/"

        def sign(url: str) -> str:
            normalized = normalize_url(url)
            if plainly_under(normalized, folder):
                return f"{normalized}?{params}"
            refuse_reserved(normalized, _RESERVED, "Google Cloud CDN")
            origin, path, _ = split_url(normalized)
            if not url_within_prefix(prefix, origin, canonical_path(path)):
                msg = f"{url[:80]!r} is outside the signed prefix {prefix_url!r}"
                raise SigningError(msg)
            return f"{normalized}{'&' if '?' in normalized else '?'}{params}"

        return sign

    def string_to_sign(self, url: str, *, expires: int, prefix: str | None = None) -> bytes:
        """The exact bytes the HMAC covers for a URL or URL-prefix signature."""
        if prefix is not None:
            return self._prefix_policy(prefix, expires, "&").encode("utf-8")
        url = normalize_url(url)
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}Expires={int(expires)}&KeyName={self._key_name}".encode()

    # ------------------------------------------------------------------ verification

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Verify a signed URL or signed-URL-prefix URL.

        ``user_ip`` is accepted for :class:`~veza_cdn.Verifier`; Cloud CDN binds no IP.
        """
        del user_ip
        marker = signed_url.rfind("&Signature=")
        if marker == -1:
            return Verification.fail(FailureReason.MALFORMED, "no Signature parameter")
        signed_part, signature = signed_url[:marker], signed_url[marker + len("&Signature=") :]
        try:
            origin, raw_path, _ = split_url(signed_part)
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc))
        path = checked_path(raw_path)
        if isinstance(path, Verification):
            return path
        prefix_at = signed_part.rfind("URLPrefix=")
        if prefix_at > 0 and signed_part[prefix_at - 1] in "?&":
            policy = signed_part[prefix_at:]
            return self._check_policy(policy, "&", signature, (origin, path), now)
        fields = _fields(signed_part.rpartition("?")[2], "&")
        return self._check(signed_part, fields, signature, None, path=path, now=now)

    def verify_cookie(self, url: str, cookie: str, *, now: float | None = None) -> Verification:
        """Verify a ``Cloud-CDN-Cookie`` value for a request to ``url`` (as requested)."""
        value = cookie.removeprefix(f"{COOKIE_NAME}=")
        policy, sep, signature = value.rpartition(":Signature=")
        if not sep:
            return Verification.fail(FailureReason.MALFORMED, "no Signature in the cookie")
        try:
            origin, raw_path, _ = split_url(url)
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc))
        path = checked_path(raw_path)
        if isinstance(path, Verification):
            return path
        return self._check_policy(policy, ":", signature, (origin, path), now)

    def _check_policy(
        self,
        policy: str,
        separator: str,
        signature: str,
        request: tuple[str, CanonicalPath],
        now: float | None,
    ) -> Verification:
        fields = _fields(policy, separator)
        prefix_raw = strict_b64decode(fields.get("URLPrefix", ""), alphabet="url-padded")
        if prefix_raw is None:
            return Verification.fail(FailureReason.MALFORMED, "URLPrefix is not base64url")
        prefix = prefix_raw.decode("utf-8", "replace")
        return self._check(
            policy, fields, signature, (prefix, request[0]), path=request[1], now=now
        )

    def _check(
        self,
        signed: str,
        fields: dict[str, str],
        signature: str,
        prefix_and_origin: tuple[str, str] | None,
        *,
        path: CanonicalPath,
        now: float | None,
    ) -> Verification:
        key_name, expires_text = fields.get("KeyName"), fields.get("Expires", "")
        if not key_name or not expires_text.isdigit():
            return Verification.fail(FailureReason.MALFORMED, "missing KeyName or Expires")
        if key_name not in self._keys:
            return Verification.fail(FailureReason.UNKNOWN_KEY, f"no key named {key_name!r}")
        expires = int(expires_text)
        if not constant_time_equal(signature, self._signature(signed, key_name)):
            return Verification.fail(FailureReason.BAD_SIGNATURE, "signature does not match")
        failed = check_time_window(time.time() if now is None else now, expires)
        if failed is not None:
            return failed
        if prefix_and_origin is not None and not url_within_prefix(
            prefix_and_origin[0], prefix_and_origin[1], path
        ):
            return Verification.fail(
                FailureReason.PATH_OUT_OF_SCOPE,
                "the URL is outside the signed prefix (matched by whole path segments)",
                expires=expires,
            )
        return Verification.ok(expires=expires, path=path.decoded)


def _fields(text: str, separator: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split(separator):
        name, _, value = part.partition("=")
        fields[name] = value
    return fields
