"""Test helpers for integrators: a local CDN edge and a hostile-path corpus.

``from veza_cdn.testing import LocalEdge, hostile_paths``. Nothing here is needed in
production: it lets your own test suite run the whole signed-URL path on one machine
(your app signs, :class:`LocalEdge` verifies and serves, your origin is pulled once) and
prove that no hostile path escapes a token's scope. Standard library only; the edge's
Prometheus counters need ``veza-cdn[metrics]`` when you pass a registry.
"""

from veza_cdn.testing._corpus import hostile_paths
from veza_cdn.testing._edge import (
    DENIED_HEADERS,
    ORIGIN_SECRET_HEADER,
    EdgeResponse,
    LocalEdge,
    secret_matches,
)

__all__ = [
    "DENIED_HEADERS",
    "ORIGIN_SECRET_HEADER",
    "EdgeResponse",
    "LocalEdge",
    "hostile_paths",
    "secret_matches",
]
