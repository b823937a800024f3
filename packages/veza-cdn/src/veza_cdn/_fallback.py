"""Playback URL resolution that a CDN fault can never block.

Prefer the CDN-signed URL when the CDN is enabled; when it is disabled, or signing
raises for any reason, use the caller's fallback (typically the storage backend's
presigned GET), and say which path was taken so the application can count it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import attrs

from veza_cdn._metrics import CDNMetrics
from veza_cdn._service import CDN

_log = logging.getLogger("veza_cdn")


@attrs.frozen
class Resolution:
    """The URL to redirect to, and where it came from.

    Attributes:
        url: The URL to send the client to.
        source: ``cdn`` or ``fallback``.
        reason: Why the fallback was used (``cdn_disabled`` or ``signing_failed:<Error>``).
    """

    url: str
    source: Literal["cdn", "fallback"]
    reason: str | None = None


class PlaybackResolver:
    """Resolves an object key to a playable URL.

    Args:
        cdn: The application's :class:`CDN`.
        fallback: ``(key) -> url``; for example ``storage.presign_get`` wrapped to fix
            the expiry.
        metrics: Counters for which path was taken.
    """

    def __init__(
        self,
        cdn: CDN,
        fallback: Callable[[str], str],
        *,
        metrics: CDNMetrics | None = None,
    ) -> None:
        self._cdn = cdn
        self._fallback = fallback
        self._metrics = metrics

    def resolve(self, key: str) -> Resolution:
        """The URL for ``key``: CDN-signed if possible, else the fallback's.

        Raises:
            Exception: Whatever the fallback raises when both paths fail (chained to
                the signing error, if any): there is no URL to give.
        """
        if not self._cdn.is_enabled:
            return self._use_fallback(key, "cdn_disabled", None)
        try:
            url = self._cdn.signed_url(key)
        except Exception as exc:  # noqa: BLE001 - any signing fault must fall back
            _log.warning(
                "CDN signing failed for a playback URL, using the fallback: %s",
                type(exc).__name__,
            )
            return self._use_fallback(key, f"signing_failed:{type(exc).__name__}", exc)
        self._count("cdn", "ok")
        return Resolution(url=url, source="cdn")

    def _use_fallback(self, key: str, reason: str, cause: Exception | None) -> Resolution:
        try:
            url = self._fallback(key)
        except Exception as exc:
            if cause is not None:
                raise exc from cause
            raise
        self._count("fallback", reason)
        return Resolution(url=url, source="fallback", reason=reason)

    def _count(self, source: str, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.resolutions.labels(source, reason).inc()
