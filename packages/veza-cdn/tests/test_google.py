"""Google Cloud CDN: key handling, scopes and verification failures."""

import pytest

from veza_cdn import CDNConfigurationError, FailureReason, GoogleCDNSigner, SigningError

KEY = "nZtRohdNF9m3cKM24IcK4w=="
EXP = 1_900_000_000


def test_signature_covers_host_and_query():
    signer = GoogleCDNSigner("k1", KEY)
    url = signer.sign_url("https://cdn.example/a.mp3?x=1", expires=EXP)
    assert signer.verify(url, now=0).valid
    assert signer.verify(url.replace("cdn.example", "evil.example"), now=0).reason is (
        FailureReason.BAD_SIGNATURE
    )
    assert signer.verify(url.replace("x=1", "x=2"), now=0).reason is FailureReason.BAD_SIGNATURE


def test_prefix_token_covers_only_its_prefix():
    signer = GoogleCDNSigner("k1", KEY)
    sign = signer.scoped("https://cdn.example/hls/t1/", expires=EXP)
    assert signer.verify(sign("https://cdn.example/hls/t1/seg1.ts"), now=0).valid
    forged = sign("https://cdn.example/hls/t1/seg1.ts").replace("/hls/t1/", "/hls/t2/")
    assert signer.verify(forged, now=0).reason is FailureReason.PATH_OUT_OF_SCOPE
    with pytest.raises(SigningError):
        sign("https://cdn.example/hls/t2/seg1.ts")


def test_cookie_scope_and_expiry():
    signer = GoogleCDNSigner("k1", KEY)
    cookie = signer.signed_cookie("https://cdn.example/hls/", expires=EXP)
    assert signer.verify_cookie("https://cdn.example/hls/a.ts", cookie, now=0).valid
    assert signer.verify_cookie("https://cdn.example/x.ts", cookie, now=0).reason is (
        FailureReason.PATH_OUT_OF_SCOPE
    )
    assert signer.verify_cookie("https://cdn.example/hls/a.ts", cookie, now=EXP).reason is (
        FailureReason.EXPIRED
    )


def test_unknown_key_name_and_rotation():
    old = GoogleCDNSigner("old", KEY)
    url = old.sign_url("https://cdn.example/a", expires=EXP)
    new = GoogleCDNSigner("new", "AAAAAAAAAAAAAAAAAAAAAA==")
    assert new.verify(url, now=0).reason is FailureReason.UNKNOWN_KEY
    rotating = GoogleCDNSigner("new", "AAAAAAAAAAAAAAAAAAAAAA==", verify_keys={"old": KEY})
    assert rotating.verify(url, now=0).valid


@pytest.mark.parametrize("key", ["", "not base64!", "AAAA"])
def test_bad_keys_fail_at_construction_without_echoing_them(key):
    with pytest.raises(CDNConfigurationError) as info:
        GoogleCDNSigner("k1", key)
    assert key not in str(info.value) or key == ""


def test_unpadded_key_is_accepted():
    assert GoogleCDNSigner("k", KEY.rstrip("=")).sign_url("https://a.example/", expires=1) == (
        GoogleCDNSigner("k", KEY).sign_url("https://a.example/", expires=1)
    )
