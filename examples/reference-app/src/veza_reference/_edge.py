"""The local CDN edge now lives in :mod:`veza_cdn.testing`; this module re-exports it.

Kept so ``veza_reference._edge.LocalEdge``, ``ORIGIN_SECRET_HEADER`` and
``secret_matches`` keep working for the app and anyone who copied the import.
"""

from __future__ import annotations

from veza_cdn.testing import DENIED_HEADERS, ORIGIN_SECRET_HEADER, LocalEdge, secret_matches

__all__ = ["DENIED_HEADERS", "ORIGIN_SECRET_HEADER", "LocalEdge", "secret_matches"]
