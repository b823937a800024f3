"""Test helpers for integrators: a local CDN edge and a hostile-path corpus.

``from veza_cdn.testing import LocalEdge, hostile_paths``. Nothing here is needed in
production; it exists so your own test suite can run the whole signed-URL path on one
machine and prove that nothing escapes a token's scope.
"""

from veza_cdn.testing._corpus import hostile_paths

__all__ = ["hostile_paths"]
