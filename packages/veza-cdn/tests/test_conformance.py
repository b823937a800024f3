"""The vendors' published vectors, byte for byte: signing and our own verification."""

import json
from pathlib import Path

import pytest

from veza_cdn import BunnySigner, CloudflareHMACSigner, GoogleCDNSigner

VECTORS = json.loads((Path(__file__).parent / "vectors" / "cdn-published-vectors.json").read_text())

BUNNY = VECTORS["bunny_hs256"]
GOOGLE = VECTORS["google_cloud_cdn"]


@pytest.mark.parametrize("case", BUNNY["cases"], ids=lambda c: c["name"])
def test_bunny_hs256_vector(case):
    signer = BunnySigner(BUNNY["key"])
    signed = signer.sign_url(
        BUNNY["host"] + case["path"],
        expires=BUNNY["expires"],
        user_ip=case["userIp"] or None,
        directory=case["isDirectory"],
        token_path=case["pathAllowed"] or None,
        countries=case["countriesAllowed"] or None,
        countries_blocked=case["countriesBlocked"] or None,
        speed_limit=case["speedLimit"] or None,
        ignore_params=case["ignoreParams"],
    )
    assert signed == case["expectedSignedUrl"]


@pytest.mark.parametrize("case", BUNNY["cases"], ids=lambda c: c["name"])
def test_bunny_hs256_vector_verifies_and_expires(case):
    signer = BunnySigner(BUNNY["key"])
    url = case["expectedSignedUrl"]
    ip = case["userIp"] or None
    country = case["countryCode"]
    assert signer.verify(url, now=BUNNY["expires"] - 1, user_ip=ip, country=country).valid
    late = signer.verify(url, now=BUNNY["expires"], user_ip=ip, country=country)
    assert late.reason is not None
    assert late.reason.value == "expired"


@pytest.mark.parametrize("case", GOOGLE["cases"], ids=lambda c: f"{c['kind']}-{c['args'][0][-20:]}")
def test_google_cloud_cdn_vector(case):
    signer = GoogleCDNSigner(GOOGLE["key_name"], GOOGLE["base64url_key"])
    now = GOOGLE["expires"] - 5
    if case["kind"] == "url":
        signed = signer.sign_url(case["args"][0], expires=GOOGLE["expires"])
        assert signed == case["expected"]
        assert signer.verify(signed, now=now).valid
    elif case["kind"] == "prefix":
        url, prefix = case["args"]
        signed = signer.sign_url_prefix(url, prefix=prefix, expires=GOOGLE["expires"])
        assert signed == case["expected"]
        assert signer.verify(signed, now=now).valid
    else:
        cookie = "Cloud-CDN-Cookie=" + signer.signed_cookie(
            case["args"][0], expires=GOOGLE["expires"]
        )
        assert cookie == case["expected"]
        assert signer.verify_cookie(case["args"][0], cookie, now=now).valid


@pytest.mark.parametrize("case", VECTORS["cloudflare_workers_hmac"])
def test_cloudflare_workers_hmac_vector(case):
    signer = CloudflareHMACSigner(case["secret"])
    url = "https://media.example" + case["path"]
    assert signer.string_to_sign(url, issued_at=case["issued_at"]) == case["hmac_input"].encode()
    signed = signer.sign_url_issued_at(url, issued_at=case["issued_at"])
    assert signed == "https://media.example" + case["signed_path_and_query"]
    assert signer.verify(signed, now=case["issued_at"] + 1).valid
