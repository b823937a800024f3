"""Hypothesis strategies for your own property-based tests of a veza-cdn integration.

``pip install "veza-cdn[hypothesis]"``, then::

    from veza_cdn.strategies import url_paths, hostile_paths

``url_paths`` draws paths the path rule accepts — any Unicode letter or digit, spaces,
the URL's sub-delimiters — so ``verify(sign(url))`` can be checked over what real
catalogues contain (``/música/a b.mp3``); ``hostile_paths`` draws paths every verifier
must refuse and no edge may serve (dot segments in every spelling, encoded and
look-alike separators, control characters, sibling folders sharing a prefix).

The package registers :class:`~veza_cdn.CanonicalPath`, :class:`~veza_cdn.CachePolicy`,
:class:`~veza_cdn.ExpiryPolicy` and :class:`~veza_cdn.Secret` through hypothesis's
entry-point hook, so ``st.from_type(CanonicalPath)`` works without importing this module.
"""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import strategies as st

from veza_cdn._expiry import ExpiryPolicy
from veza_cdn._hls import CachePolicy
from veza_cdn._paths import CanonicalPath, UnsafePathError, canonical_path
from veza_cdn._secret import Secret
from veza_cdn.testing._corpus import hostile_paths as _corpus

__all__ = [
    "cache_policies",
    "canonical_paths",
    "expiries",
    "expiry_policies",
    "hostile_paths",
    "path_segments",
    "secrets",
    "url_paths",
]

_PUNCTUATION = " -_~!$&'()*+,;=:@"
_NOW = 1_900_000_000


def _accepted(path: str) -> bool:
    try:
        canonical_path(quote(path, safe="/"))
    except UnsafePathError:
        return False
    return True


def path_segments() -> st.SearchStrategy[str]:
    """One path segment the rule accepts: letters and digits of any script, spaces, ``-_~``..."""
    return st.text(
        alphabet=st.characters(categories=("L", "N"), include_characters=_PUNCTUATION),
        min_size=1,
        max_size=16,
    ).filter(lambda s: _accepted("/" + s))


def url_paths(
    *, max_segments: int = 4, suffixes: tuple[str, ...] = (".ts", ".m4s", ".mp3")
) -> st.SearchStrategy[str]:
    """Decoded URL paths (``/música/a b.mp3``) the path rule accepts, ending in a media suffix."""
    return st.builds(
        lambda segments, suffix: "/" + "/".join(segments) + suffix,
        st.lists(path_segments(), min_size=1, max_size=max_segments),
        st.sampled_from(suffixes),
    ).filter(_accepted)


def canonical_paths() -> st.SearchStrategy[CanonicalPath]:
    """:class:`CanonicalPath` values (what ``st.from_type(CanonicalPath)`` draws)."""
    return url_paths().map(lambda p: canonical_path(quote(p, safe="/")))


def hostile_paths(scope: str = "/hls/1/") -> st.SearchStrategy[str]:
    """Raw (wire-form) paths a verifier scoped to ``scope`` must refuse, and no edge may serve.

    Drawn from veza's corpus (``veza_cdn.testing.hostile_paths``, about 200 spellings)
    and from generated ones: a dot segment in several spellings spliced into a path
    the rule otherwise accepts.
    """
    spellings = st.sampled_from(["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "."])
    separators = st.sampled_from(["/", "%2f", "%5c", "\\"])
    spliced = st.builds(
        lambda head, dots, sep, tail: f"{scope.rstrip('/')}/{quote(head)}/{dots}{sep}{quote(tail)}",
        path_segments(),
        spellings,
        separators,
        path_segments(),
    )
    return st.one_of(st.sampled_from(_corpus(scope)), spliced)


def expiries(*, now: int = _NOW, max_ttl: int = 7 * 86400) -> st.SearchStrategy[int]:
    """Expiry times (UTC epoch seconds) from just after ``now`` up to ``max_ttl`` later."""
    return st.integers(min_value=now + 1, max_value=now + max_ttl)


def expiry_policies() -> st.SearchStrategy[ExpiryPolicy]:
    """Valid :class:`ExpiryPolicy` values (TTL, rounding window, back-dating)."""
    return st.builds(
        ExpiryPolicy,
        ttl=st.integers(min_value=1, max_value=7 * 86400),
        window=st.integers(min_value=0, max_value=3600),
        backdate=st.integers(min_value=0, max_value=600),
    )


def cache_policies() -> st.SearchStrategy[CachePolicy]:
    """Valid :class:`CachePolicy` values."""
    seconds = st.integers(min_value=1, max_value=365 * 86400)
    return st.builds(
        CachePolicy, segment_max_age=seconds, playlist_max_age=seconds, low_latency_max_age=seconds
    )


def secrets() -> st.SearchStrategy[Secret[str]]:
    """Non-empty :class:`Secret` keys (text)."""
    return st.text(min_size=1, max_size=64).map(Secret)


def _hypothesis_setup_hook() -> None:
    """Hypothesis's entry-point hook: ``st.from_type`` for veza-cdn's value types."""
    st.register_type_strategy(CanonicalPath, canonical_paths())
    st.register_type_strategy(CachePolicy, cache_policies())
    st.register_type_strategy(ExpiryPolicy, expiry_policies())
    st.register_type_strategy(Secret, secrets())
