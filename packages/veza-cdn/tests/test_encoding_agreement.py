"""Signers and verifiers agree on the encoding of paths, token paths and query strings.

``verify(sign(x))`` for arbitrary Unicode input, for every provider veza-cdn both signs
and verifies: a URL veza issues is a URL veza accepts, and the path it accepts is the
path that was signed. Input veza cannot sign safely is refused at signing time
(``SigningError``), never issued and then refused at the edge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_cdn import (
    AkamaiSigner,
    BunnySigner,
    CloudflareHMACSigner,
    CloudFrontSigner,
    GoogleCDNSigner,
    SigningError,
    Verification,
    normalize_url,
)
from veza_cdn._encoding import split_url
from veza_cdn._paths import UnsafePathError, canonical_decoded_path, canonical_path

HOST = "https://x.b-cdn.net"
EXP = 2_000_000_000
NOW = 1_900_000_000
GOOGLE_KEY = "nZtRohdNF9m3cKM24IcK4w=="

# --------------------------------------------------------------------------- issue 12, item 2


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bunnyway_hs256(path: str, token_path: str, *, directory: bool, encode_path: bool) -> str:
    """What BunnyWay's SDKs output for a token_path URL, written from their algorithm.

    HMAC-SHA256(key, token_path + expires + "token_path=" + token_path), the parameter
    percent-encoded in the URL. ``encode_path`` picks the URL's path form: Python's SDK
    keeps the path as given (Unicode), the Rust and Node SDKs percent-encode it.
    """
    message = f"{token_path}{EXP}token_path={token_path}".encode()
    token = "HS256-" + _b64(hmac.new(b"k", message, hashlib.sha256).digest())
    shown = quote(path, safe="/") if encode_path else path
    tail = f"&token_path={quote(token_path, safe='')}&expires={EXP}"
    if directory:
        return f"{HOST}/bcdn_token={token}{tail}{shown}"
    return f"{HOST}{shown}?token={token}{tail}"


@pytest.mark.parametrize(
    ("path", "token_path"),
    [
        ("/música/a.mp3", "/música/"),
        ("/música/a.mp3", "/música"),
        ("/a b/c d.mp3", "/a b/"),
        ("/日本/曲.m4a", "/日本/"),
    ],
)
@pytest.mark.parametrize("directory", [False, True])
@pytest.mark.parametrize("scheme", ["hs256", "sha256"])
def test_token_path_with_spaces_or_non_ascii_verifies(path, token_path, directory, scheme):
    signer = BunnySigner("k", scheme=scheme)
    signed = signer.sign_url(
        f"{HOST}{path}", expires=EXP, token_path=token_path, directory=directory
    )
    result = signer.verify(signed, now=NOW)
    assert result.valid, result
    assert result.path == path


@pytest.mark.parametrize("directory", [False, True])
@pytest.mark.parametrize("encode_path", [False, True])
def test_bunnyway_sdk_output_verifies(directory, encode_path):
    signer = BunnySigner("k")
    for path, token_path in (("/música/a.mp3", "/música/"), ("/a b/c.mp3", "/a b/")):
        url = _bunnyway_hs256(path, token_path, directory=directory, encode_path=encode_path)
        if not encode_path:  # what a browser sends for the SDK's Unicode URL
            url = normalize_url(url)
        result = signer.verify(url, now=NOW)
        assert result.valid, (url, result)
        assert result.path == path
        ours = signer.sign_url(f"{HOST}{path}", expires=EXP, token_path=token_path)
        assert (
            ours.split("?token=")[1]
            == _bunnyway_hs256(path, token_path, directory=False, encode_path=True).split(
                "?token="
            )[1]
        )


def test_a_decoded_path_hash_from_the_go_sdk_verifies():
    """BunnyWay's Go SDK hashes the decoded path; veza hashes the wire form: both pass."""
    signer = BunnySigner("k")
    message = f"/música/a b.mp3{EXP}".encode()
    token = "HS256-" + _b64(hmac.new(b"k", message, hashlib.sha256).digest())
    result = signer.verify(f"{HOST}/m%C3%BAsica/a%20b.mp3?token={token}&expires={EXP}", now=NOW)
    assert result.valid and result.path == "/música/a b.mp3"


def test_an_encoded_token_path_is_refused_at_signing_time():
    signer = BunnySigner("k")
    with pytest.raises(SigningError, match="token_path"):
        signer.sign_url(f"{HOST}/a b/c.mp3", expires=EXP, token_path="/a%20b/")


def test_a_path_outside_token_path_is_refused_at_signing_time():
    signer = BunnySigner("k")
    with pytest.raises(SigningError, match="outside token_path"):
        signer.sign_url(f"{HOST}/hls/10/a.ts", expires=EXP, token_path="/hls/1")


# --------------------------------------------------------------------------- properties

anything = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
segments = st.lists(anything, min_size=1, max_size=4)


def _safe(segment: str) -> bool:
    if not segment or any(c in segment for c in "/%?#"):
        return False
    try:
        canonical_decoded_path(f"/{segment}")
    except UnsafePathError:
        return False
    return True


safe_segments = st.lists(anything.filter(_safe), min_size=1, max_size=4)
queries = st.lists(st.tuples(anything, anything), max_size=3)
plain = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="&=#"), max_size=8)
safe_queries = st.lists(st.tuples(plain, plain), max_size=3)


def _query_text(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


def _url(parts: list[str], query: str) -> str:
    return f"{HOST}/{'/'.join(parts)}" + (f"?{query}" if query else "")


def _expected_path(url: str) -> str:
    return canonical_path(split_url(normalize_url(url))[1]).decoded


Sign = Callable[[str, str | None], str]
Verify = Callable[[str], Verification]


def _providers(ec_key) -> dict[str, tuple[Sign, Verify]]:
    """name -> (sign(url, scope_path_or_None), verify(signed_url))."""
    bunny, legacy, basic = (BunnySigner("k", scheme=s) for s in ("hs256", "sha256", "md5"))  # type: ignore[arg-type]
    google = GoogleCDNSigner("g", GOOGLE_KEY)
    akamai = AkamaiSigner("0123456789abcdef")
    cloudfront = CloudFrontSigner("K1", ec_key)
    cloudflare = CloudflareHMACSigner("secret", max_age=EXP - NOW + 60)

    def scoped(signer, url: str, scope: str | None, **kw) -> str:
        if scope is None:
            return signer.sign_url(url, expires=EXP, **kw)
        return signer.scoped(f"{HOST}{scope}", expires=EXP)(url)

    return {
        "bunny-hs256": (
            lambda u, s: bunny.sign_url(u, expires=EXP, token_path=s),
            lambda u: bunny.verify(u, now=NOW),
        ),
        "bunny-hs256-directory": (
            lambda u, s: bunny.sign_url(u, expires=EXP, token_path=s, directory=True),
            lambda u: bunny.verify(u, now=NOW),
        ),
        "bunny-hs256-scoped": (
            lambda u, s: scoped(bunny, u, s),
            lambda u: bunny.verify(u, now=NOW),
        ),
        "bunny-sha256": (
            lambda u, s: legacy.sign_url(u, expires=EXP, token_path=s),
            lambda u: legacy.verify(u, now=NOW),
        ),
        "bunny-sha256-directory": (
            lambda u, s: legacy.sign_url(u, expires=EXP, token_path=s, directory=True),
            lambda u: legacy.verify(u, now=NOW),
        ),
        "bunny-md5": (
            lambda u, _s: basic.sign_url(u, expires=EXP),
            lambda u: basic.verify(u, now=NOW),
        ),
        "google": (lambda u, s: scoped(google, u, s), lambda u: google.verify(u, now=NOW)),
        "google-prefix": (
            lambda u, s: google.sign_url_prefix(u, prefix=f"{HOST}{s or '/'}", expires=EXP),
            lambda u: google.verify(u, now=NOW),
        ),
        "akamai": (lambda u, s: scoped(akamai, u, s), lambda u: akamai.verify(u, now=NOW)),
        "cloudfront": (
            lambda u, s: scoped(cloudfront, u, s),
            lambda u: cloudfront.verify(u, now=NOW),
        ),
        "cloudflare": (
            lambda u, _s: cloudflare.sign_url(u, expires=EXP),
            lambda u: cloudflare.verify(u, now=NOW),
        ),
    }


PROVIDERS = [
    "akamai",
    "bunny-hs256",
    "bunny-hs256-directory",
    "bunny-hs256-scoped",
    "bunny-md5",
    "bunny-sha256",
    "bunny-sha256-directory",
    "cloudflare",
    "cloudfront",
    "google",
    "google-prefix",
]
_BUNNY = {"token", "expires", "token_path", "token_ignore_params"}
RESERVED = {
    **{name: _BUNNY for name in PROVIDERS if name.startswith("bunny")},
    "google": {"Expires", "KeyName", "Signature", "URLPrefix"},
    "google-prefix": {"Expires", "KeyName", "Signature", "URLPrefix"},
    "cloudfront": {"Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm"},
    "akamai": {"__token__"},
    "cloudflare": {"verify"},
}
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _scope(parts: list[str], cut: int) -> str | None:
    if cut == 0:
        return None
    return "/" + "/".join(parts[: min(cut, len(parts))])


@pytest.mark.parametrize("name", PROVIDERS)
@SETTINGS
@given(parts=segments, pairs=queries, cut=st.integers(0, 4), token_path=st.none() | anything)
def test_whatever_is_signed_verifies(ec_key, name, parts, pairs, cut, token_path):
    """Arbitrary Unicode: signing refuses (SigningError) or the result verifies."""
    sign, verify = _providers(ec_key)[name]
    url = _url(parts, _query_text(pairs))
    scope = ("/" + token_path) if token_path is not None and cut == 0 else _scope(parts, cut)
    try:
        signed = sign(url, scope)
    except SigningError:
        return
    result = verify(signed)
    assert result.valid, (signed, result)
    assert result.path == _expected_path(url)


@pytest.mark.parametrize("name", PROVIDERS)
@SETTINGS
@given(parts=safe_segments, pairs=safe_queries, cut=st.integers(0, 4))
def test_safe_unicode_is_always_signed_and_verified(ec_key, name, parts, pairs, cut):
    """Safe segments (any Unicode but separators and dot look-alikes) always sign and verify.

    Query names reserved by the scheme are the only refusal allowed.
    """
    sign, verify = _providers(ec_key)[name]
    url = _url(parts, _query_text(pairs))
    names = [name for name, _ in pairs]
    # a scope strictly above the file (Akamai/CloudFront folders hold files only)
    scope = _scope(parts, min(cut, len(parts) - 1))
    repeated = name.startswith("bunny") and len(set(names)) != len(names)
    # '*' is a wildcard, '!' and '~' Akamai's delimiters: such a folder has no exact scope
    special = "*!~" if name == "akamai" else "*" if name == "cloudfront" else ""
    if scope and any(c in scope for c in special):
        with pytest.raises(SigningError, match=r"ACL|Resource"):
            sign(url, scope)
        return
    if repeated or set(names) & RESERVED[name]:
        with pytest.raises(SigningError, match=r"reserved|repeated|duplicate"):
            sign(url, scope)
        return
    signed = sign(url, scope)
    result = verify(signed)
    assert result.valid, (signed, result)
    assert result.path == "/" + "/".join(parts)


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("bunny-hs256", "token=x"),
        ("bunny-hs256", "expires=1"),
        ("bunny-hs256", "token_path=%2F"),
        ("bunny-hs256-directory", "a=1&a=2"),
        ("bunny-md5", "a=1&a=2"),
        ("google", "URLPrefix=x"),
        ("google", "Signature=x"),
        ("cloudfront", "Expires=1"),
        ("cloudfront", "Policy=x"),
        ("cloudfront", "Key-Pair-Id=K"),
        ("cloudfront", "Hash-Algorithm=SHA256"),
        ("akamai", "__token__=x"),
        ("cloudflare", "verify=1"),
    ],
)
def test_a_query_the_verifier_would_misread_is_refused_when_signing(ec_key, name, query):
    sign, _ = _providers(ec_key)[name]
    with pytest.raises(SigningError, match=r"reserved|repeated"):
        sign(f"{HOST}/a.ts?{query}", None)
