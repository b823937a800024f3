r"""Webhook signatures: Hyperswitch's HMAC-SHA512 and its Stripe-compatible mode.

Hyperswitch signs the **raw body bytes** with the profile's payment response hash key
(HMAC-SHA512, lowercase hex, header ``X-Webhook-Signature-512``). Verification must
use the bytes as received: parsing and re-serialising the JSON changes them (key
order, spacing, ``\\u00e9`` escapes) and the signature no longer matches.

In the Stripe-compatible mode the header is ``Stripe-Signature: t=<unix>,v1=<hex>``
with HMAC-SHA256 over ``"<t>." + body``. Hyperswitch retries a delivery for about 24
hours **keeping the original** ``t``, so Stripe's usual 300-second tolerance would
reject every legitimate retry after five minutes: the tolerance is a required
argument, and :data:`HYPERSWITCH_RETRY_WINDOW` is the value that accepts them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from veza_payments._compat import positional_deprecated

SIGNATURE_HEADER = "x-webhook-signature-512"
"""Hyperswitch's signature header (lower-case; HTTP header names are case-insensitive)."""

STRIPE_SIGNATURE_HEADER = "stripe-signature"
"""The header of Hyperswitch's Stripe-compatible webhooks."""

HYPERSWITCH_RETRY_WINDOW = 25 * 3600
"""A Stripe-mode tolerance that accepts Hyperswitch's retries (about 24 h, plus skew)."""

_HEX = frozenset("0123456789abcdef")

Keys = str | bytes | Iterable[str | bytes]


def _key_list(keys: Keys) -> list[bytes]:
    if isinstance(keys, str | bytes):
        keys = [keys]
    out = [key.encode() if isinstance(key, str) else bytes(key) for key in keys]
    if not out or not all(out):
        msg = "at least one non-empty webhook key is required"
        raise ValueError(msg)
    return out


def sign_payload(raw_body: bytes, key: str | bytes) -> str:
    """The ``X-Webhook-Signature-512`` value for ``raw_body`` (lowercase hex)."""
    (secret,) = _key_list(key)
    return hmac.new(secret, raw_body, hashlib.sha512).hexdigest()


@positional_deprecated
def verify_signature(raw_body: bytes, signature: str | None, *, keys: Keys) -> bool:
    """Whether ``signature`` is the HMAC-SHA512 of ``raw_body`` under one of ``keys``.

    Several keys are accepted so a key can be rotated without dropping deliveries.
    Every key is tried (no early exit) and compared in constant time.

    Args:
        raw_body: The request body exactly as received.
        signature: The ``X-Webhook-Signature-512`` header value (hex; case ignored).
        keys: One key or several (current first, then the ones being retired).

    Returns:
        ``True`` when one key verifies. Missing or malformed signatures are ``False``.
    """
    secrets = _key_list(keys)
    if not isinstance(signature, str):
        return False
    candidate = signature.strip().lower()
    if len(candidate) != 128 or not _HEX.issuperset(candidate):
        return False
    given = candidate.encode()
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, raw_body, hashlib.sha512).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def stripe_signature_header(raw_body: bytes, key: str | bytes, *, timestamp: int) -> str:
    """A ``Stripe-Signature`` header value for ``raw_body`` signed at ``timestamp``."""
    (secret,) = _key_list(key)
    mac = hmac.new(secret, f"{timestamp}.".encode() + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _parse_stripe_header(header: str) -> tuple[int, list[bytes]] | None:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and len(value) == 64 and _HEX.issuperset(value.lower()):
            signatures.append(value.lower().encode())
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


@positional_deprecated
def verify_stripe_signature(
    raw_body: bytes,
    header: str | None,
    *,
    keys: Keys,
    tolerance: float | None,
    now: float | None = None,
) -> bool:
    """Verify a ``Stripe-Signature: t=…,v1=…`` header (Hyperswitch's Stripe mode).

    Args:
        raw_body: The request body exactly as received.
        header: The ``Stripe-Signature`` value; several ``v1`` entries are allowed.
        keys: One key or several.
        tolerance: Seconds ``t`` may be away from ``now``. Required on purpose:
            Hyperswitch's retries keep the first ``t`` for about 24 hours, so use
            :data:`HYPERSWITCH_RETRY_WINDOW` unless you want retries refused. ``None``
            disables the check (replays of a captured delivery are then accepted
            forever; dedupe by event id).
        now: The current UNIX time (``time.time()`` by default).

    Returns:
        ``True`` when a ``v1`` signature verifies under one key within the tolerance.
    """
    secrets = _key_list(keys)
    if not isinstance(header, str):
        return False
    parsed = _parse_stripe_header(header)
    if parsed is None:
        return False
    timestamp, given = parsed
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            return False
    signed = f"{timestamp}.".encode() + raw_body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode()
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    return matched
