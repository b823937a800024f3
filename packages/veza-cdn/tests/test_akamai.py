"""Akamai EdgeAuth: byte-identical to akamai-edgeauth, minus its global side effects."""

import os

import pytest
from hypothesis import given, settings, strategies as st

from veza_cdn import AkamaiSigner, CDNConfigurationError, FailureReason, SigningError
from veza_cdn._paths import UnsafePathError, canonical_path

hexkeys = st.binary(min_size=8, max_size=32).map(bytes.hex)
texts = st.none() | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="~!"),
    min_size=1,
    max_size=12,
)
paths = st.text(alphabet="abcxyz/-_.*?", min_size=1, max_size=30).map(lambda p: "/" + p)


def _unsafe(path: str) -> bool:
    try:
        canonical_path(path)
    except UnsafePathError:
        return True
    return False


@settings(max_examples=150)
@given(
    key=hexkeys,
    algorithm=st.sampled_from(["sha256", "sha1", "md5"]),
    path=paths,
    acls=st.lists(paths, min_size=1, max_size=3),
    end=st.integers(1_600_000_001, 2_000_000_000),
    start=st.none() | st.integers(1_000_000_000, 1_600_000_000),
    ip=st.none() | st.sampled_from(["1.2.3.4", "2001:db8::1"]),
    session_id=texts,
    payload=texts,
    salt=texts,
    escape_early=st.booleans(),
)
def test_tokens_match_the_vendor_package(
    edgeauth, key, algorithm, path, acls, end, start, ip, session_id, payload, salt, escape_early
):
    vendor = edgeauth(
        key=key,
        algorithm=algorithm,
        end_time=end,
        start_time=start,
        ip=ip,
        session_id=session_id,
        payload=payload,
        salt=salt,
        escape_early=escape_early,
    )
    ours = AkamaiSigner(key, algorithm=algorithm, salt=salt, escape_early=escape_early)
    fields = {
        "end_time": end,
        "start_time": start,
        "ip": ip,
        "session_id": session_id,
        "payload": payload,
    }
    mid = start if start is not None else end - 1
    if _unsafe(path):  # the vendor signs anything; veza never issues what it would refuse
        with pytest.raises(UnsafePathError):
            ours.url_token(path, **fields)
    else:
        url_token = ours.url_token(path, **fields)
        assert url_token == vendor.generate_url_token(path)
        assert ours.verify_token(url_token, path=path, now=mid, ip=ip).valid
    acl_token = ours.acl_token(acls, **fields)
    assert acl_token == vendor.generate_acl_token(acls)
    requested = acls[-1].replace("*", "x").replace("?", "y")
    verdict = ours.verify_token(acl_token, path=requested, now=mid, ip=ip)
    assert verdict.valid is not _unsafe(requested)


def test_our_module_leaves_the_time_zone_alone():
    before = os.environ.get("TZ")
    import veza_cdn._akamai  # noqa: F401

    AkamaiSigner("abcd").url_token("/a", end_time=2_000_000_000)
    assert os.environ.get("TZ") == before


def test_verification_reasons():
    signer = AkamaiSigner("0a0b0c0d", salt="s")
    token = signer.acl_token(["/hls/a/*", "/hls/b/*"], end_time=2000, start_time=1000, ip="9.9.9.9")
    assert signer.verify_token(token, path="/hls/b/x.ts", now=1500, ip="9.9.9.9").valid
    assert signer.verify_token(token, path="/hls/c/x.ts", now=1500, ip="9.9.9.9").reason is (
        FailureReason.PATH_OUT_OF_SCOPE
    )
    assert signer.verify_token(token, path="/hls/a/x", now=2000, ip="9.9.9.9").reason is (
        FailureReason.EXPIRED
    )
    assert signer.verify_token(token, path="/hls/a/x", now=999, ip="9.9.9.9").reason is (
        FailureReason.NOT_YET_VALID
    )
    assert signer.verify_token(token, path="/hls/a/x", now=1500, ip="8.8.8.8").reason is (
        FailureReason.IP_MISMATCH
    )
    assert (
        AkamaiSigner("0a0b0c0e", salt="s")
        .verify_token(token, path="/hls/a/x", now=1500, ip="9.9.9.9")
        .reason
        is FailureReason.BAD_SIGNATURE
    )


def test_url_token_in_a_url_and_rotation():
    old = AkamaiSigner("aaaa")
    url = old.sign_url("https://a.akamaized.net/v/a.mp4?x=1", expires=2_000_000_000)
    assert "__token__=exp=2000000000~hmac=" in url
    assert AkamaiSigner("bbbb", verify_keys=["aaaa"]).verify(url, now=0).valid
    assert AkamaiSigner("bbbb").verify(url, now=0).reason is FailureReason.BAD_SIGNATURE


def test_a_field_containing_the_delimiter_is_refused():
    # the vendor package emits such a token, which the edge then splits in the wrong place
    for escape_early in (False, True):  # quote_plus leaves '~' alone
        with pytest.raises(SigningError, match="delimiter"):
            AkamaiSigner("aa", escape_early=escape_early).url_token(
                "/a", end_time=10, payload="x~y"
            )
    token = AkamaiSigner("aa", field_delimiter="|").url_token("/a", end_time=10, payload="x~y")
    assert token.startswith("exp=10|data=x~y|hmac=")


@pytest.mark.parametrize("key", ["", "xyz", "abc"])
def test_key_must_be_hex(key):
    with pytest.raises(CDNConfigurationError):
        AkamaiSigner(key)


def test_start_after_end_is_refused():
    with pytest.raises(SigningError, match="after"):
        AkamaiSigner("aa").url_token("/a", end_time=10, start_time=20)
