"""The local CDN edge now lives in :mod:`veza_cdn.testing`; this module re-exports it.

Kept so ``veza_reference._edge.LocalEdge``, ``ORIGIN_SECRET_HEADER`` and
``secret_matches`` keep working for the app and anyone who copied the import.
"""

from __future__ import annotations

from veza_cdn.testing import DENIED_HEADERS, ORIGIN_SECRET_HEADER, LocalEdge, secret_matches

TOKEN_SEGMENT = "bcdn_token="  # noqa: S105 - a URL marker, kept for compatibility

__all__ = ["DENIED_HEADERS", "ORIGIN_SECRET_HEADER", "TOKEN_SEGMENT", "LocalEdge", "secret_matches"]
