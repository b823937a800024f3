"""Idempotency keys in, deterministic provider ids out.

Hyperswitch v1 ignores the ``Idempotency-Key`` header on ``/payments`` and ``/refunds``
(its router never reads it). What it does enforce is that merchant-supplied ids are
unique: a second create with the same ``payment_id`` or ``refund_id`` answers 400
``HE_01``. So each key becomes an id, the same on every retry of one logical call:
``p_`` / ``r_`` + the namespace + base32 SHA-256 of (namespace, kind, key), at most 30
characters of ``[a-z0-9_]`` (connectors pass the id on as a merchant reference; 30
fits all of them).
"""

from __future__ import annotations

import base64
import hashlib
import re

from veza_payments._errors import (
    InvalidIdempotencyKeyError,
    MissingIdempotencyKeyError,
    PaymentsConfigurationError,
)

MAX_ID = 30
MAX_KEY_LENGTH = 255
"""Longest idempotency key accepted (Stripe's limit; Hyperswitch only sees its hash)."""
_NAMESPACE = re.compile(r"^[a-z0-9]{0,8}$")
_KEY = re.compile(r"[!-~]{1,255}")


def is_blank(value: object) -> bool:
    """``None``, not a string, empty or only whitespace (callers are not always typed)."""
    return not isinstance(value, str) or not value.strip()


def is_count(value: object) -> bool:
    """A non-negative ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def require_key(idempotency_key: object) -> str:
    """Return the key, or raise before any I/O.

    A key is 1 to 255 visible ASCII characters (``!`` to ``~``, so letters, digits and
    punctuation such as ``-_.:/#``). It goes into a header and into logs: a space, a
    newline or a non-ASCII character would be mangled there (or break the request and
    be retried as a connection error), so it is refused up front.

    Raises:
        MissingIdempotencyKeyError: ``None``, not a string, empty or only whitespace.
        InvalidIdempotencyKeyError: Outside the alphabet, or longer than 255.
    """
    if not isinstance(idempotency_key, str) or is_blank(idempotency_key):
        msg = (
            "an idempotency key is required for every money-moving call (use the row id "
            f"that stands for this operation), got {idempotency_key!r}"
        )
        raise MissingIdempotencyKeyError(msg)
    if not _KEY.fullmatch(idempotency_key):
        msg = (
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            f"(no space, control or non-ASCII character), got {len(idempotency_key)} "
            f"characters: {idempotency_key[:40]!r}"
        )
        raise InvalidIdempotencyKeyError(msg)
    return idempotency_key


def check_namespace(namespace: str) -> str:
    """A merchant prefix for derived ids: up to 8 of ``[a-z0-9]``."""
    if not _NAMESPACE.match(namespace):
        msg = f"idempotency_namespace must be 0-8 lower-case letters or digits, got {namespace!r}"
        raise PaymentsConfigurationError(msg)
    return namespace


def derive_id(kind: str, namespace: str, idempotency_key: str) -> str:
    """The provider id a key stands for (``kind``: ``p`` payment, ``r`` refund)."""
    key = require_key(idempotency_key)
    digest = hashlib.sha256("\0".join((namespace, kind, key)).encode()).digest()
    encoded = base64.b32encode(digest).decode().lower().rstrip("=")
    head = f"{kind}_{namespace}_" if namespace else f"{kind}_"
    return head + encoded[: MAX_ID - len(head)]


def payment_id_for(idempotency_key: str, *, namespace: str = "") -> str:
    """The Hyperswitch ``payment_id`` ``create_payment(idempotency_key, ...)`` uses."""
    return derive_id("p", check_namespace(namespace), idempotency_key)


def refund_id_for(idempotency_key: str, *, namespace: str = "") -> str:
    """The Hyperswitch ``refund_id`` ``create_refund(idempotency_key, ...)`` uses."""
    return derive_id("r", check_namespace(namespace), idempotency_key)
