r"""Signed, expiring URLs for the local backend, with the semantics of an S3 presign.

``presign_get`` on S3 returns a SigV4 URL; on local disk there is no S3 to sign for, so
the application serves the file itself behind an HMAC-signed URL. Code that answers
"302 to a signed URL" does not care which backend it runs on.

URL: ``{base_url}/{key}?expires=E[&dl=FILENAME][&type=MIME]&sig=HEX`` where
``sig = HMAC-SHA256(secret, key \n expires \n filename \n type)``; the same 7-day limit
as SigV4 applies.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlencode

import attrs

from veza_storage._errors import SignatureError, StorageConfigurationError
from veza_storage._keys import validate_key

MAX_EXPIRES_IN = 7 * 24 * 3600


@attrs.frozen
class SignedRequest:
    """What a valid signed URL grants.

    Attributes:
        key: The object key.
        expires_at: UTC epoch seconds when the URL stops working.
        download_filename: Serve as an attachment with this name, if set.
        content_type: Serve with this ``Content-Type``, if set.
    """

    key: str
    expires_at: int
    download_filename: str | None = None
    content_type: str | None = None


class LocalURLSigner:
    """Issues and verifies signed URLs for files the application serves.

    Args:
        secret: HMAC key (at least 16 bytes); share it across instances.
        base_url: Where the application serves files, e.g. ``/files`` or
            ``https://app.example.com/files``.
    """

    def __init__(self, secret: str | bytes, base_url: str) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(raw) < 16:
            msg = "the local URL signing key must be at least 16 bytes"
            raise StorageConfigurationError(msg)
        self._secret = raw
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"LocalURLSigner(base_url={self._base_url!r}, secret='********')"

    @property
    def base_url(self) -> str:
        """The URL prefix signed URLs start with."""
        return self._base_url

    def _signature(self, key: str, expires_at: int, filename: str, content_type: str) -> str:
        message = "\n".join((key, str(expires_at), filename, content_type)).encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
        content_type: str | None = None,
        now: float | None = None,
    ) -> str:
        """A URL granting a GET of ``key`` for ``expires_in`` seconds (at most 7 days)."""
        validate_key(key)
        if not 1 <= expires_in <= MAX_EXPIRES_IN:
            msg = f"expires_in must be between 1 second and 7 days, got {expires_in}"
            raise StorageConfigurationError(msg)
        expires_at = int(time.time() if now is None else now) + int(expires_in)
        params = {"expires": str(expires_at)}
        if download_filename:
            params["dl"] = download_filename
        if content_type:
            params["type"] = content_type
        params["sig"] = self._signature(
            key, expires_at, download_filename or "", content_type or ""
        )
        return f"{self._base_url}/{quote(key, safe='/')}?{urlencode(params, quote_via=quote)}"

    def verify(
        self, path_key: str, query: Mapping[str, str], *, now: float | None = None
    ) -> SignedRequest:
        """Check a request for ``path_key`` with these query parameters.

        Args:
            path_key: The key from the URL path (percent-decoded or not).
            query: The decoded query parameters.
            now: Check time (default: now).

        Raises:
            SignatureError: ``malformed``, ``bad_signature`` or ``expired``.
        """
        key = unquote(path_key.lstrip("/"))
        expires_text, signature = query.get("expires", ""), query.get("sig", "")
        if not expires_text.isdigit() or not signature:
            raise SignatureError("malformed", "expires and sig are required")
        filename, content_type = query.get("dl", ""), query.get("type", "")
        expected = self._signature(key, int(expires_text), filename, content_type)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise SignatureError("bad_signature", "the signature does not match")
        if (time.time() if now is None else now) >= int(expires_text):
            raise SignatureError("expired", f"expired at {expires_text}")
        return SignedRequest(
            key=key,
            expires_at=int(expires_text),
            download_filename=filename or None,
            content_type=content_type or None,
        )
