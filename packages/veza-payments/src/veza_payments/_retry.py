"""Retry policy as an immutable value (urllib3's ``Retry`` is the model).

Retried: connection errors and timeouts, 5xx, 429 (honouring ``Retry-After``, capped)
and 422 ``HE_00`` ("resource busy": another request holds the payment's lock). Never:
other 4xx. Delays are exponential with full jitter; the total time is bounded. Every
retry of a logical call reuses its idempotency key and derived id, so a retry after
the provider committed finds the object instead of creating a second one.
"""

from __future__ import annotations

import email.utils
import random
import time

import attrs

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before trying a request again.

    Attributes:
        total: Retries allowed after the first attempt.
        backoff_base: Seconds; attempt ``n`` waits up to ``backoff_base * 2**n``.
        backoff_max: Cap on one wait (before ``Retry-After``).
        retry_after_max: Cap on a server-requested ``Retry-After``.
        max_elapsed: Give up once this many seconds passed since the first attempt.
        attempts: Retries used so far (``increment`` returns a policy with one more).
    """

    total: int = 4
    backoff_base: float = 0.25
    backoff_max: float = attrs.field(default=8.0, kw_only=True)
    retry_after_max: float = attrs.field(default=30.0, kw_only=True)
    max_elapsed: float = attrs.field(default=60.0, kw_only=True)
    attempts: int = attrs.field(default=0, kw_only=True)

    @property
    def exhausted(self) -> bool:
        """No retries left."""
        return self.attempts >= self.total

    def increment(self) -> RetryPolicy:
        """The policy after one more retry."""
        return attrs.evolve(self, attempts=self.attempts + 1)

    @staticmethod
    def is_retryable(status: int | None, code: str | None) -> bool:
        """Whether an outcome may be retried (``status`` ``None`` means no response)."""
        if status is None:
            return True
        return status in RETRY_STATUSES or (status == 422 and code == "HE_00")

    def delay(self, retry_after: str | None, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt: ``Retry-After`` or full jitter."""
        requested = _retry_after_seconds(retry_after) if retry_after is not None else None
        if requested is not None:
            return min(requested, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**self.attempts))
        return (rng or random).uniform(0, ceiling)


def _retry_after_seconds(value: str) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    return seconds if seconds >= 0 else None  # NaN compares false, so it is refused too
