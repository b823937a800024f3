"""Expiry times that keep URLs cache-friendly and tolerate clock skew."""

from __future__ import annotations

import math
import time

import attrs

from veza_cdn._errors import CDNConfigurationError


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        msg = f"{attribute.name} must be a positive number of seconds, got {value}"
        raise CDNConfigurationError(msg)


def _not_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        msg = f"{attribute.name} must be zero or a positive number of seconds, got {value}"
        raise CDNConfigurationError(msg)


@attrs.frozen
class ExpiryPolicy:
    """How long signed URLs live, optionally rounded to a window.

    With ``window = W`` the expiry is ``floor(now / W) * W + ttl + W``: every URL signed
    for the same object inside one window is byte-identical (browser and CDN caches hit,
    and signers can memoise), and each still lives at least ``ttl`` seconds.
    ``backdate`` moves start times (Akamai ``st``, CloudFront ``DateGreaterThan``) into
    the past to absorb clock skew between the signer and the edge.

    Attributes:
        ttl: Minimum lifetime of a URL, in seconds.
        window: Rounding window in seconds; 0 signs with exact times.
        backdate: Seconds to subtract from start times.
    """

    ttl: int = attrs.field(validator=_positive)
    window: int = attrs.field(default=0, validator=_not_negative)
    backdate: int = attrs.field(kw_only=True, default=0, validator=_not_negative)

    def expires_at(self, now: float | None = None) -> int:
        """The expiry (UTC epoch seconds) for a URL signed at ``now``."""
        current = time.time() if now is None else now
        if self.window:
            return math.floor(current / self.window) * self.window + self.window + self.ttl
        return math.ceil(current) + self.ttl

    def not_before(self, now: float | None = None) -> int:
        """The start time for a URL signed at ``now``, back-dated by ``backdate``."""
        current = time.time() if now is None else now
        if self.window:
            return math.floor(current / self.window) * self.window - self.backdate
        return math.floor(current) - self.backdate
