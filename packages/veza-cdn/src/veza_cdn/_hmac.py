"""HMAC with the keyed state computed once per key (RFC 2104).

A signer's key never changes, yet ``hmac.digest(key, msg, ...)`` re-derives the inner
and outer padded keys on every call. Hashing ``key XOR ipad`` and ``key XOR opad``
once and copying those hash states per message gives the same bytes (tested against
``hmac.digest`` with hypothesis) in well under half the time, which is most of what
separates a URL signer from the bare primitive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash  # typeshed's name for a hash object

_BLOCK_SIZES = {"sha256": 64, "sha1": 64, "md5": 64}


class KeyedHMAC:
    """A reusable HMAC for one key and one hash (``sha256``, ``sha1`` or ``md5``).

    Args:
        key: The secret key bytes.
        algorithm: Hash name.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, algorithm: str) -> None:
        block = _BLOCK_SIZES[algorithm]
        new = _constructor(algorithm)
        if len(key) > block:
            key = new(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = new(bytes(b ^ 0x36 for b in key))
        self._outer = new(bytes(b ^ 0x5C for b in key))

    def __repr__(self) -> str:
        return "KeyedHMAC(<key>)"

    def digest(self, message: bytes) -> bytes:
        """HMAC(key, message) as raw bytes."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return bytes(outer.digest())

    def hexdigest(self, message: bytes) -> str:
        """HMAC(key, message) as lower-case hex."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())


def _md5(data: bytes = b"") -> _Hash:
    return hashlib.md5(data, usedforsecurity=False)


def _constructor(algorithm: str) -> Callable[[bytes], _Hash]:
    if algorithm == "md5":
        return _md5
    constructor: Callable[[bytes], _Hash] = getattr(hashlib, algorithm)
    return constructor
