"""Nothing escapes a token's scope: the hostile-path corpus against every verifier.

Each verifier gets a token for the folder ``/hls/1`` (given without a trailing slash,
the case that used to admit ``/hls/10/...``), or, for the exact-path schemes, a token
computed over the hostile path itself (what a careless or malicious signer could issue).
Every one of the corpus's paths must be refused; the ones that break the path rule must
be refused as ``unsafe_path``, the rest as ``path_out_of_scope``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from veza_cdn import (
    AkamaiSigner,
    BunnySigner,
    CloudflareHMACSigner,
    CloudFrontSigner,
    FailureReason,
    GoogleCDNSigner,
    SigningError,
    Verification,
    normalize_url,
)
from veza_cdn._encoding import split_url
from veza_cdn._paths import UnsafePathError, canonical_path
from veza_cdn.testing import hostile_paths

HOST = "https://cdn.example"
EXP = 2_000_000_000
NOW = 1_900_000_000
SCOPE = "/hls/1"
CORPUS = hostile_paths(SCOPE)
LEGIT = ("/hls/1/a.ts", "/hls/1/sub/b%20c.ts", "/hls/1/m%C3%BAsica.m4s")
GOOGLE_KEY = "nZtRohdNF9m3cKM24IcK4w=="

Check = Callable[[str], Verification]


def _after(url: str, marker: str) -> str:
    return url[url.index(marker) + 1 :]


def _bunny_query(scheme: str) -> Check:
    signer = BunnySigner("k", scheme=scheme)  # type: ignore[arg-type]
    query = _after(signer.sign_url(f"{HOST}{SCOPE}/a.ts", expires=EXP, token_path=SCOPE), "?")
    return lambda path: signer.verify(f"{HOST}{path}?{query}", now=NOW)


def _bunny_directory(scheme: str) -> Check:
    signer = BunnySigner("k", scheme=scheme)  # type: ignore[arg-type]
    signed = signer.sign_url(f"{HOST}{SCOPE}/a.ts", expires=EXP, token_path=SCOPE, directory=True)
    segment = signed[len(HOST) : signed.index(f"{SCOPE}/a.ts")]
    return lambda path: signer.verify(f"{HOST}{segment}{path}", now=NOW)


def _bunny_exact(scheme: str) -> Check:
    """A token over the raw hostile path itself: the path rule alone must refuse it."""
    signer = BunnySigner("k", scheme=scheme)  # type: ignore[arg-type]

    def check(path: str) -> Verification:
        token = signer._token(signer._key_bytes, path, str(EXP), "", [])
        return signer.verify(f"{HOST}{path}?token={token}&expires={EXP}", now=NOW)

    return check


def _google_prefix() -> Check:
    signer = GoogleCDNSigner("k", GOOGLE_KEY)
    signed = signer.sign_url_prefix(f"{HOST}{SCOPE}/a.ts", prefix=f"{HOST}{SCOPE}", expires=EXP)
    query = _after(signed, "?")
    return lambda path: signer.verify(f"{HOST}{path}?{query}", now=NOW)


def _google_scoped() -> Check:
    signer = GoogleCDNSigner("k", GOOGLE_KEY)
    query = _after(signer.scoped(f"{HOST}{SCOPE}", expires=EXP)(f"{HOST}{SCOPE}/a.ts"), "?")
    return lambda path: signer.verify(f"{HOST}{path}?{query}", now=NOW)


def _google_cookie() -> Check:
    signer = GoogleCDNSigner("k", GOOGLE_KEY)
    cookie = signer.signed_cookie(f"{HOST}{SCOPE}", expires=EXP)
    return lambda path: signer.verify_cookie(f"{HOST}{path}", cookie, now=NOW)


def _google_exact() -> Check:
    signer = GoogleCDNSigner("k", GOOGLE_KEY)

    def check(path: str) -> Verification:
        to_sign = f"{HOST}{path}?Expires={EXP}&KeyName=k"
        return signer.verify(f"{to_sign}&Signature={signer._signature(to_sign)}", now=NOW)

    return check


def _akamai_scoped() -> Check:
    signer = AkamaiSigner("a1b2c3d4")
    query = _after(signer.scoped(f"{HOST}{SCOPE}", expires=EXP)(f"{HOST}{SCOPE}/a.ts"), "?")
    return lambda path: signer.verify(f"{HOST}{path}?{query}", now=NOW)


def _akamai_acl(acl: str) -> Check:
    signer = AkamaiSigner("a1b2c3d4")
    token = signer.acl_token(acl, end_time=EXP)
    return lambda path: signer.verify_token(token, path=path, now=NOW)


def _akamai_exact() -> Check:
    signer = AkamaiSigner("a1b2c3d4")

    def check(path: str) -> Verification:
        fields = signer._fields(
            end_time=EXP, start_time=None, ip=None, session_id=None, payload=None, acl=None
        )
        token = "~".join([*fields, f"hmac={signer._hmac(signer._key, fields, path)}"])
        return signer.verify_token(token, path=path, now=NOW)

    return check


def _cloudfront_scoped(key) -> Check:
    signer = CloudFrontSigner("K1", key)
    query = _after(signer.scoped(f"{HOST}{SCOPE}", expires=EXP)(f"{HOST}{SCOPE}/a.ts"), "?")
    return lambda path: signer.verify(f"{HOST}{path}?{query}", now=NOW)


def _cloudfront_resource(key, resource: str) -> Check:
    signer = CloudFrontSigner("K1", key)
    signed = signer.sign_url(f"{HOST}{SCOPE}/a.ts", expires=EXP, policy_resource=resource)
    query = _after(signed, "?")
    return lambda path: signer.verify(f"{HOST}{path}?{query}", now=NOW)


def _cloudfront_cookies(key) -> Check:
    signer = CloudFrontSigner("K1", key)
    cookies = signer.sign_cookies(
        f"{HOST}{SCOPE}/a.ts", expires=EXP, policy_resource=f"{HOST}{SCOPE}/*"
    )
    return lambda path: signer.verifier.verify_cookies(f"{HOST}{path}", cookies, now=NOW)


def _cloudfront_exact(key) -> Check:
    signer = CloudFrontSigner("K1", key)

    def check(path: str) -> Verification:
        _, _, signature = signer._policy_and_signature(f"{HOST}{path}", EXP, None, None, None)
        url = f"{HOST}{path}?Expires={EXP}&Signature={signature}&Key-Pair-Id=K1"
        return signer.verify(url, now=NOW)

    return check


def _cloudflare_exact() -> Check:
    signer = CloudflareHMACSigner("s", max_age=EXP - NOW + 10)

    def check(path: str) -> Verification:
        issued = NOW - 5
        mac = signer._mac(signer._macs[0], path, issued)
        encoded = mac.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        return signer.verify(f"{HOST}{path}?verify={issued}-{encoded}", now=NOW)

    return check


VERIFIERS: dict[str, Callable[..., Check]] = {
    "bunny-hs256-query-token_path": lambda _k: _bunny_query("hs256"),
    "bunny-hs256-directory-token_path": lambda _k: _bunny_directory("hs256"),
    "bunny-sha256-query-token_path": lambda _k: _bunny_query("sha256"),
    "bunny-sha256-directory-token_path": lambda _k: _bunny_directory("sha256"),
    "bunny-hs256-exact": lambda _k: _bunny_exact("hs256"),
    "bunny-sha256-exact": lambda _k: _bunny_exact("sha256"),
    "bunny-md5-exact": lambda _k: _bunny_exact("md5"),
    "google-url-prefix": lambda _k: _google_prefix(),
    "google-scoped": lambda _k: _google_scoped(),
    "google-cookie": lambda _k: _google_cookie(),
    "google-exact": lambda _k: _google_exact(),
    "akamai-scoped": lambda _k: _akamai_scoped(),
    "akamai-acl-folder": lambda _k: _akamai_acl(f"{SCOPE}/*"),
    "akamai-exact": lambda _k: _akamai_exact(),
    "cloudfront-scoped": _cloudfront_scoped,
    "cloudfront-wildcard-folder": lambda k: _cloudfront_resource(k, f"{HOST}{SCOPE}/*"),
    "cloudfront-cookies": _cloudfront_cookies,
    "cloudfront-exact": _cloudfront_exact,
    "cloudflare-exact": lambda _k: _cloudflare_exact(),
}
SCOPED = {name for name in VERIFIERS if "exact" not in name}


def _is_unsafe(path: str) -> bool:
    try:
        canonical_path(path)
    except UnsafePathError:
        return True
    return False


def test_the_corpus_is_large_and_every_path_is_unsafe_or_outside_the_scope():
    assert len(CORPUS) >= 100
    scope = canonical_path(SCOPE)
    for path in CORPUS:
        assert _is_unsafe(path) or not canonical_path(path).within(scope), path


def _hostile_for(name: str) -> list[str]:
    """Scoped tokens face the whole corpus; exact-path tokens its unsafe paths (a safe
    path outside the folder, signed exactly, is a legitimate token for that path)."""
    return CORPUS if name in SCOPED else [p for p in CORPUS if _is_unsafe(p)]


@pytest.mark.parametrize("name", sorted(VERIFIERS))
def test_no_hostile_path_is_accepted(name, ec_key):
    check = VERIFIERS[name](ec_key)
    accepted = []
    wrong_reason = []
    corpus = _hostile_for(name)
    assert len(corpus) >= 100
    for path in corpus:
        result = check(path)
        expected = (
            FailureReason.UNSAFE_PATH if _is_unsafe(path) else FailureReason.PATH_OUT_OF_SCOPE
        )
        if result.valid:
            accepted.append(path)
        elif result.reason is not expected:
            wrong_reason.append((path, result.reason))
    assert accepted == [], f"{len(accepted)}/{len(corpus)} hostile paths accepted"
    assert wrong_reason == []


@pytest.mark.parametrize("name", sorted(SCOPED))
def test_paths_inside_the_scope_are_accepted(name, ec_key):
    check = VERIFIERS[name](ec_key)
    for path in LEGIT:
        result = check(path)
        assert result.valid, (path, result)
        assert result.path == canonical_path(path).decoded


@pytest.mark.parametrize("name", sorted(set(VERIFIERS) - SCOPED))
def test_exact_tokens_for_safe_paths_are_accepted(name, ec_key):
    check = VERIFIERS[name](ec_key)
    for path in LEGIT:
        result = check(path)
        assert result.valid, (path, result)
        assert result.path == canonical_path(path).decoded


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        ("/hls/1", ("hls", "1")),
        ("/hls/1/", ("hls", "1", "")),
        ("/a%20b/%C3%A9", ("a b", "é")),
        ("/", ("",)),
        ("/a;b=1/c", ("a;b=1", "c")),
    ],
)
def test_safe_paths_decode_once(raw, segments):
    assert canonical_path(raw).segments == segments


def test_scopes_match_whole_segments():
    folder, slashed = canonical_path("/hls/1"), canonical_path("/hls/1/")
    for path in ("/hls/1/a.ts", "/hls/1/x/y.ts", "/hls/1", "/hls/1/"):
        assert canonical_path(path).within(folder)
        assert canonical_path(path).within(slashed)
    for path in ("/hls/10/a.ts", "/hls/1.ts", "/hls/", "/hls1/a"):
        assert not canonical_path(path).within(folder)
        assert not canonical_path(path).within(slashed)
    assert canonical_path("/anything/x").within(canonical_path("/"))


@pytest.mark.parametrize("name", ["bunny", "google", "akamai", "cloudfront"])
def test_scoped_signers_refuse_to_sign_any_hostile_path(name, ec_key):
    signer = {
        "bunny": BunnySigner("k"),
        "google": GoogleCDNSigner("k", GOOGLE_KEY),
        "akamai": AkamaiSigner("a1b2c3d4"),
        "cloudfront": CloudFrontSigner("K1", ec_key),
    }[name]
    sign = signer.scoped(f"{HOST}{SCOPE}", expires=EXP)
    scope = canonical_path(SCOPE)
    escapes = []
    for path in CORPUS:
        try:
            sign(f"{HOST}{path}")
        except SigningError:
            continue
        # signed: only a broken escape that the documented normalisation turned into
        # a literal '%' (``/a%.ts`` -> ``/a%25.ts``), a safe file inside the folder
        normalized = split_url(normalize_url(f"{HOST}{path}"))[1]
        if _is_unsafe(normalized) or not canonical_path(normalized).within(scope):
            escapes.append(path)
    assert escapes == []
    assert sign(f"{HOST}{SCOPE}/sub/a.ts")  # the fast path still signs plain names
