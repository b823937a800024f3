"""Bunny token forms beyond the published vectors: legacy SHA-256, MD5, scopes, failures."""

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, strategies as st

from veza_cdn import BunnySigner, CDNConfigurationError, FailureReason, SigningError

KEY = "bunny-security-key"
HOST = "https://zone.b-cdn.net"
EXP = 2_000_000_000


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_legacy_sha256_form_is_sha256_of_key_path_expires_ip_params():
    signer = BunnySigner(KEY, scheme="sha256")
    signed = signer.sign_url(f"{HOST}/v/a.mp3", expires=EXP, user_ip="10.1.2.3", token_path="/v/")
    expected = _b64(hashlib.sha256(f"{KEY}/v/{EXP}10.1.2.3token_path=/v/".encode()).digest())
    assert signed == f"{HOST}/v/a.mp3?token={expected}&token_path=%2Fv%2F&expires={EXP}"
    assert signer.verify(signed, now=EXP - 1, user_ip="10.1.2.3").valid
    assert not signer.verify(signed, now=EXP - 1, user_ip="10.1.2.4").valid


def test_legacy_sha256_without_ip_verifies_for_any_client():
    signer = BunnySigner(KEY, scheme="sha256")
    signed = signer.sign_url(f"{HOST}/a.mp3", expires=EXP)
    assert signer.verify(signed, now=EXP - 1, user_ip="192.0.2.9").valid


def test_md5_basic_form():
    signer = BunnySigner(KEY, scheme="md5")
    signed = signer.sign_url(f"{HOST}/a.mp3", expires=EXP)
    expected = _b64(hashlib.md5(f"{KEY}/a.mp3{EXP}".encode()).digest())
    assert signed == f"{HOST}/a.mp3?token={expected}&expires={EXP}"
    assert signer.verify(signed, now=EXP - 1).valid


def test_md5_refuses_what_it_cannot_express():
    signer = BunnySigner(KEY, scheme="md5")
    with pytest.raises(SigningError):
        signer.sign_url(f"{HOST}/a.mp3", expires=EXP, token_path="/")
    with pytest.raises(SigningError):
        signer.sign_url(f"{HOST}/a.mp3", expires=EXP, directory=True)
    with pytest.raises(SigningError):
        signer.scoped(f"{HOST}/dir/", expires=EXP)


def test_hs256_query_parameters_are_signed_sorted_and_reencoded():
    signer = BunnySigner(KEY)
    signed = signer.sign_url(f"{HOST}/a.mp3?b=2&a=x%20y", expires=EXP)
    message = f"/a.mp3{EXP}a=x y&b=2".encode()
    token = "HS256-" + _b64(hmac.digest(KEY.encode(), message, "sha256"))
    assert signed == f"{HOST}/a.mp3?token={token}&a=x%20y&b=2&expires={EXP}"
    assert signer.verify(signed, now=0).valid


def test_ipv6_is_bound_to_its_slash_64():
    signer = BunnySigner(KEY)
    url = signer.sign_url(f"{HOST}/a.mp3", expires=EXP, user_ip="2001:db8:1:2::1")
    assert signer.verify(url, now=0, user_ip="2001:db8:1:2:ffff::9").valid
    other = signer.verify(url, now=0, user_ip="2001:db8:1:3::1")
    assert other.reason is FailureReason.BAD_SIGNATURE
    assert "IP-bound" in other.detail


def test_ipv4_mapped_ipv6_binds_like_ipv4():
    signer = BunnySigner(KEY)
    assert signer.sign_url(f"{HOST}/a", expires=EXP, user_ip="::ffff:1.2.3.4") == signer.sign_url(
        f"{HOST}/a", expires=EXP, user_ip="1.2.3.4"
    )


def test_ip_bound_token_without_client_ip_is_an_ip_mismatch():
    signer = BunnySigner(KEY)
    url = signer.sign_url(f"{HOST}/a.mp3", expires=EXP, user_ip="1.2.3.4")
    assert signer.verify(url, now=0).reason is FailureReason.IP_MISMATCH


def test_invalid_ip_is_a_clear_error():
    with pytest.raises(SigningError, match="not a valid IP"):
        BunnySigner(KEY).sign_url(f"{HOST}/a", expires=EXP, user_ip="1.2.3")


def test_directory_token_scope():
    signer = BunnySigner(KEY)
    sign = signer.scoped(f"{HOST}/hls/track-1/", expires=EXP)
    seg = sign(f"{HOST}/hls/track-1/seg-00001.ts")
    assert seg.startswith(f"{HOST}/bcdn_token=HS256-")
    assert seg.endswith("/hls/track-1/seg-00001.ts")
    assert signer.verify(seg, now=0).valid
    # one token for the whole directory: only the path after it differs
    other = sign(f"{HOST}/hls/track-1/720p/index.m3u8")
    assert other.split("/hls/")[0] == seg.split("/hls/")[0]
    # the same token moved onto a path outside its scope is refused as out of scope
    moved = seg.replace("/hls/track-1/seg-00001.ts", "/hls/track-2/seg-00001.ts")
    assert signer.verify(moved, now=0).reason is FailureReason.PATH_OUT_OF_SCOPE
    with pytest.raises(SigningError, match="outside"):
        sign(f"{HOST}/elsewhere/x.ts")


def test_scoped_uri_with_its_own_query_gets_its_own_token():
    signer = BunnySigner(KEY)
    sign = signer.scoped(f"{HOST}/hls/", expires=EXP)
    url = sign(f"{HOST}/hls/key.bin?v=2")
    assert signer.verify(url, now=0).valid


def test_country_lists_are_enforced_when_the_country_is_known():
    signer = BunnySigner(KEY)
    url = signer.sign_url(f"{HOST}/a", expires=EXP, countries="CA,US", countries_blocked="RU")
    assert signer.verify(url, now=0, country="ca").valid
    assert signer.verify(url, now=0, country="FR").reason is FailureReason.COUNTRY_NOT_ALLOWED
    assert signer.verify(url, now=0).valid  # unknown country: the edge's job


def test_key_rotation_accepts_old_keys_and_signs_with_the_new_one():
    old = BunnySigner("old-key")
    rotated = BunnySigner("new-key", verify_keys=["old-key"])
    legacy_url = old.sign_url(f"{HOST}/a", expires=EXP)
    assert rotated.verify(legacy_url, now=0).valid
    assert not old.verify(rotated.sign_url(f"{HOST}/a", expires=EXP), now=0).valid


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ignore_params": True, "countries": "US"}, "ignore_params"),
        ({"token_path": "relative/"}, "token_path"),
        ({"speed_limit": -1}, "speed_limit"),
    ],
)
def test_contradictory_options_are_refused(kwargs, message):
    with pytest.raises(SigningError, match=message):
        BunnySigner(KEY).sign_url(f"{HOST}/a", expires=EXP, **kwargs)


def test_duplicate_query_parameter_is_refused():
    with pytest.raises(SigningError, match="duplicate"):
        BunnySigner(KEY).sign_url(f"{HOST}/a?x=1&x=2", expires=EXP)


def test_ignore_params_keeps_the_callers_query_in_the_url():
    signer = BunnySigner(KEY)
    url = signer.sign_url(f"{HOST}/a.mp3?utm=1", expires=EXP, ignore_params=True)
    assert url.endswith(f"&expires={EXP}&utm=1")
    assert signer.verify(url, now=0).valid
    assert signer.verify(url.replace("utm=1", "utm=2"), now=0).valid  # ignored by design


@pytest.mark.parametrize("key", ["", "   "])
def test_empty_key_fails_fast(key):
    with pytest.raises(CDNConfigurationError, match="empty"):
        BunnySigner(key)


def test_unknown_scheme_is_refused():
    with pytest.raises(CDNConfigurationError, match="scheme"):
        BunnySigner(KEY, scheme="sha1")  # type: ignore[arg-type]


def test_repr_hides_the_key():
    assert KEY not in repr(BunnySigner(KEY))


@pytest.mark.parametrize(
    "url",
    [
        f"{HOST}/a.mp3",
        f"{HOST}/a.mp3?token=x",
        f"{HOST}/a.mp3?token=a&expires=soon",
        f"{HOST}/a.mp3?token=a&token=b&expires=1",
        f"{HOST}/bcdn_token=abc",
        "ftp://zone/a.mp3?token=a&expires=1",
    ],
)
def test_malformed_urls_are_typed_failures(url):
    assert BunnySigner(KEY).verify(url, now=0).reason is FailureReason.MALFORMED


@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(["hs256", "sha256"]))
def test_expiry_boundary(expires, scheme):
    signer = BunnySigner(KEY, scheme=scheme)
    url = signer.sign_url(f"{HOST}/x", expires=expires)
    assert signer.verify(url, now=expires - 1).valid
    assert signer.verify(url, now=expires).reason is FailureReason.EXPIRED
