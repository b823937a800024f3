"""veza_cdn.strategies: what they draw is what they promise, checked against the signers."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings, strategies as st

from veza_cdn import (
    CDN,
    AkamaiSigner,
    BunnySigner,
    CachePolicy,
    CanonicalPath,
    CDNConfig,
    ExpiryPolicy,
    GoogleCDNSigner,
    Secret,
    UnsafePathError,
    canonical_path,
)
from veza_cdn.strategies import canonical_paths, expiries, hostile_paths, url_paths

NOW = 1_900_000_000
SIGNERS = [
    BunnySigner("k"),
    BunnySigner("k", scheme="sha256"),
    GoogleCDNSigner("g", "nZtRohdNF9m3cKM24IcK4w=="),
    AkamaiSigner("0123456789abcdef"),
]


@settings(max_examples=80, deadline=None)
@given(path=url_paths(), expires=expiries(now=NOW), signer=st.sampled_from(SIGNERS))
def test_every_drawn_path_signs_and_verifies(path, expires, signer):
    url = "https://cdn.example" + quote(path, safe="/")
    cdn = CDN(CDNConfig(enabled=False), signer=signer, clock=lambda: float(NOW))
    verification = cdn.verify(signer.sign_url(url, expires=expires))
    assert verification
    assert verification.path == path


@settings(max_examples=150, deadline=None)
@given(raw=hostile_paths("/hls/1"))
def test_every_hostile_path_is_refused_inside_a_folder_token(raw):
    signer = BunnySigner("k")
    token_url = signer.scoped("https://cdn.example/hls/1", expires=NOW + 60)(
        "https://cdn.example/hls/1/a.ts"
    )
    segment = token_url[len("https://cdn.example") : token_url.index("/hls/1/a.ts")]
    cdn = CDN(CDNConfig(enabled=False), signer=signer, clock=lambda: float(NOW))
    verification = cdn.verify("https://cdn.example" + segment + raw)
    assert not verification
    try:
        decoded = canonical_path(raw)
    except UnsafePathError:
        return
    assert not decoded.decoded.startswith("/hls/1/")  # only out-of-scope paths are safe


@given(path=canonical_paths())
def test_canonical_paths_round_trip(path):
    assert canonical_path(path.encoded) == path


def test_value_types_resolve_through_the_entry_point_hook():
    @settings(max_examples=20)
    @given(
        st.from_type(CanonicalPath),
        st.from_type(CachePolicy),
        st.from_type(ExpiryPolicy),
        st.from_type(Secret),
    )
    def check(path, policy, expiry, secret):
        assert isinstance(path, CanonicalPath) and path.decoded.startswith("/")
        assert policy.segment_max_age >= 1
        assert expiry.ttl >= 1
        assert isinstance(secret, Secret) and repr(secret) == "Secret('********')"

    check()
