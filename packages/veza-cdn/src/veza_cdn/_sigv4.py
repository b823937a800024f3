"""Verification of S3 SigV4 presigned URLs (query authentication), standard library only.

R2, S3 and MinIO presigned GETs are SigV4 query-signed. Issuing them is boto3's job
(``veza-cdn[r2]``); checking one needs only the secret key, so an origin or a local edge
can verify what the presigner issued without boto3. Only ``host`` as the signed header
and ``UNSIGNED-PAYLOAD`` are supported: what presigned GETs use.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from urllib.parse import quote, unquote

from veza_cdn._encoding import split_url
from veza_cdn._errors import SigningError
from veza_cdn._verification import FailureReason, Verification, constant_time_equal

_ALGORITHM = "AWS4-HMAC-SHA256"
_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
MAX_EXPIRES = 7 * 24 * 3600


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def canonical_request(url: str) -> tuple[str, dict[str, str]]:
    """The SigV4 canonical request of a presigned GET, and its X-Amz parameters."""
    origin, path, query = split_url(url)
    pairs: list[tuple[str, str]] = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    amz = {k: v for k, v in pairs if k.startswith("X-Amz-")}
    unsigned = sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs if k != "X-Amz-Signature")
    host = origin.split("://", 1)[1].lower()
    request = "\n".join(
        [
            "GET",
            path,
            "&".join(f"{k}={v}" for k, v in unsigned),
            f"host:{host}\n",
            amz.get("X-Amz-SignedHeaders", ""),
            "UNSIGNED-PAYLOAD",
        ]
    )
    return request, amz


def string_to_sign(url: str) -> str:
    """The SigV4 string-to-sign for a presigned GET URL (for debugging a 403)."""
    request, amz = canonical_request(url)
    scope = amz.get("X-Amz-Credential", "").split("/", 1)[-1]
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return "\n".join([_ALGORITHM, amz.get("X-Amz-Date", ""), scope, digest])


def verify_presigned_url(
    url: str,
    *,
    access_key_id: str,
    secret_key: str,
    now: float | None = None,
    clock_skew: int = 900,
) -> Verification:
    """Check a SigV4 presigned GET the way S3/R2 does.

    Args:
        url: The presigned URL as requested.
        access_key_id: The key id the URL must name.
        secret_key: The matching secret access key.
        now: Check time (default: now).
        clock_skew: Seconds ``X-Amz-Date`` may lie in the future (S3 allows 15 min).
    """
    try:
        request, amz = canonical_request(url)
    except SigningError as exc:
        return Verification.fail(FailureReason.MALFORMED, str(exc))
    missing = [name for name in _REQUIRED if name not in amz]
    if missing or amz["X-Amz-Algorithm"] != _ALGORITHM:
        return Verification.fail(FailureReason.MALFORMED, f"not a SigV4 URL (missing {missing})")
    if amz["X-Amz-SignedHeaders"] != "host":
        return Verification.fail(FailureReason.MALFORMED, "only 'host' may be signed")
    credential = amz["X-Amz-Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        return Verification.fail(FailureReason.MALFORMED, "bad X-Amz-Credential")
    key_id, date, region, service, _ = credential
    if key_id != access_key_id:
        return Verification.fail(FailureReason.UNKNOWN_KEY, "the URL names another access key")
    try:
        signed_at = calendar.timegm(time.strptime(amz["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        lifetime = int(amz["X-Amz-Expires"])
    except ValueError:
        return Verification.fail(FailureReason.MALFORMED, "bad X-Amz-Date or X-Amz-Expires")
    if not 1 <= lifetime <= MAX_EXPIRES or not amz["X-Amz-Date"].startswith(date):
        return Verification.fail(FailureReason.MALFORMED, "expiry or scope out of range")
    scope = "/".join(credential[1:])
    to_sign = "\n".join(
        [_ALGORITHM, amz["X-Amz-Date"], scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    expected = hmac.new(
        _signing_key(secret_key, date, region, service), to_sign.encode(), "sha256"
    ).hexdigest()
    expires = signed_at + lifetime
    if not constant_time_equal(expected, amz["X-Amz-Signature"]):
        return Verification.fail(
            FailureReason.BAD_SIGNATURE, "signature does not match", expires=expires
        )
    current = time.time() if now is None else now
    if current >= expires:
        return Verification.fail(FailureReason.EXPIRED, f"expired at {expires}", expires=expires)
    if signed_at > current + clock_skew:
        return Verification.fail(
            FailureReason.NOT_YET_VALID, "signed in the future", expires=expires
        )
    return Verification.ok(expires=expires)
