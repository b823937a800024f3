"""Cloudflare R2 presigned URLs (S3 SigV4, region ``auto``), behind ``veza-cdn[r2]``.

boto3 is imported when an :class:`R2Presigner` is created, not when veza-cdn is, so the
extra stays optional. Verification (:meth:`R2Presigner.verify`) needs no boto3.
"""

from __future__ import annotations

import time
from typing import Protocol
from urllib.parse import unquote

from veza_cdn._encoding import normalize_url, split_url
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._secret import Secret
from veza_cdn._sigv4 import MAX_EXPIRES, string_to_sign, verify_presigned_url
from veza_cdn._verification import Verification


class PresigningClient(Protocol):
    """The one boto3 S3 client method :class:`R2Presigner` calls (boto3 ships no types)."""

    def generate_presigned_url(self, client_method: str, /, **arguments: object) -> str:
        """A presigned URL for ``client_method`` (``Params``, ``ExpiresIn``)."""
        ...


class R2Presigner:
    """Presigns GETs on an R2 bucket (or any S3-compatible endpoint).

    Args:
        account_id: The Cloudflare account id (names the endpoint).
        access_key_id: The R2 API token's access key id.
        secret_access_key: Its secret.
        bucket: The bucket the URLs point into.
        endpoint_url: Override the endpoint (``https://<account>.r2.cloudflarestorage.com``
            by default); tests point it at a local S3 server.
        client: A ready boto3 S3 client to use instead of building one.

    Raises:
        CDNConfigurationError: Missing values, or boto3 not installed.
    """

    def __init__(
        self,
        *,
        account_id: str,
        access_key_id: str,
        secret_access_key: str | Secret[str],
        bucket: str,
        endpoint_url: str | None = None,
        client: PresigningClient | None = None,
    ) -> None:
        secret = (
            secret_access_key
            if isinstance(secret_access_key, Secret)
            else Secret(secret_access_key)
        )
        for name, value in (
            ("account_id", account_id),
            ("access_key_id", access_key_id),
            ("bucket", bucket),
            ("secret_access_key", secret.reveal()),
        ):
            if not value or not value.strip():
                msg = f"R2 {name} is empty"
                raise CDNConfigurationError(msg)
        self._endpoint = (endpoint_url or f"https://{account_id}.r2.cloudflarestorage.com").rstrip(
            "/"
        )
        self._bucket = bucket
        self._access_key_id = access_key_id
        self._secret = secret
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                msg = "R2 presigning needs boto3: pip install 'veza-cdn[r2]'"
                raise CDNConfigurationError(msg) from None
            client = boto3.client(
                "s3",
                endpoint_url=self._endpoint,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret.reveal(),
                region_name="auto",
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
        self._client = client

    def __repr__(self) -> str:
        return (
            f"R2Presigner(endpoint={self._endpoint!r}, bucket={self._bucket!r},"
            f" access_key_id={self._access_key_id!r}, secret_access_key=Secret('********'))"
        )

    @property
    def base_url(self) -> str:
        """``endpoint/bucket``: object URLs are this plus ``/`` plus the key."""
        return f"{self._endpoint}/{self._bucket}"

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
    ) -> str:
        """A SigV4 presigned GET for ``key`` valid for ``expires_in`` seconds (max 7 days)."""
        if not 1 <= expires_in <= MAX_EXPIRES:
            msg = f"expires_in must be between 1 s and 7 days, got {expires_in}"
            raise SigningError(msg)
        params: dict[str, str] = {"Bucket": self._bucket, "Key": key}
        if download_filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{download_filename}"'
        url: str = self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=int(expires_in)
        )
        return url

    def sign_url(self, url: str, *, expires: int, now: float | None = None) -> str:
        """Presign an object URL under :attr:`base_url` so it expires at ``expires``."""
        url = normalize_url(url)
        prefix = self.base_url + "/"
        if not url.startswith(prefix):
            msg = f"the URL is not in this R2 bucket ({self.base_url})"
            raise SigningError(msg)
        _, path, _ = split_url(url)
        key = unquote(path[len("/" + self._bucket + "/") :])
        current = time.time() if now is None else now
        return self.presign_get(key, expires_in=int(expires - current))

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Verify a presigned URL this presigner's credentials issued.

        ``user_ip`` is accepted for :class:`~veza_cdn.Verifier`; SigV4 URLs bind no IP.
        """
        del user_ip
        return verify_presigned_url(
            signed_url,
            access_key_id=self._access_key_id,
            secret_key=self._secret.reveal(),
            now=now,
        )

    @staticmethod
    def string_to_sign(signed_url: str) -> str:
        """The SigV4 string-to-sign the endpoint computes for ``signed_url``."""
        return string_to_sign(signed_url)
