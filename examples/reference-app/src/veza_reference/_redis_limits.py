"""Rate limits shared by every instance, in Redis (``VEZA_REDIS_URL``).

The same sliding window as the in-process :class:`~veza_reference._sessions.RateLimiter`
(at most ``limit`` hits per key in any ``window`` seconds), kept in one sorted set per
key and decided by one Lua script, so two instances hit at the same moment cannot both
take the last slot. Keys are SHA-256 digests of what the app passes (client addresses,
account names), under ``VEZA_REDIS_PREFIX``.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import redis

_SCRIPT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return false
"""


class RedisRateLimiter:
    """``hit(key)`` like :class:`RateLimiter`, counted in Redis across instances."""

    def __init__(
        self, client: redis.Redis, name: str, limit: int, window: float, *, prefix: str
    ) -> None:
        """``client``: a ``redis.Redis``; ``name`` tells this limit's keys apart."""
        self.limit = limit
        self.window = window
        self._client = client
        self._prefix = f"{prefix}:rate:{name}:"
        self._script = client.register_script(_SCRIPT)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(limit={self.limit}, window={self.window})"

    def hit(self, key: str, *, now: float | None = None) -> float | None:
        """Count a hit; ``None`` if allowed, else the seconds until one is."""
        current = time.time() if now is None else now
        digest = hashlib.sha256(key.encode()).hexdigest()
        member = f"{current:.6f}:{secrets.token_hex(4)}"
        answer = self._script(
            keys=[self._prefix + digest], args=[current, self.window, self.limit, member]
        )
        if answer is None:
            return None
        return max(0.001, float(answer))
