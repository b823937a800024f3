"""The veza-cdn command line: flags exactly as documented, exit codes 0/1/2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from veza_cdn import AkamaiSigner, CloudFrontSigner, GoogleCDNSigner

VECTORS = json.loads((Path(__file__).parent / "vectors" / "cdn-published-vectors.json").read_text())

BUNNY = VECTORS["bunny_hs256"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veza_cdn", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("case", BUNNY["cases"], ids=lambda c: c["name"])
def test_sign_bunny_reproduces_the_vectors(case):
    args = [
        "sign",
        "bunny",
        BUNNY["host"] + case["path"],
        "--key",
        BUNNY["key"],
        "--expires",
        str(BUNNY["expires"]),
    ]
    if case["isDirectory"]:
        args.append("--directory")
    for flag, field in (
        ("--token-path", "pathAllowed"),
        ("--user-ip", "userIp"),
        ("--countries", "countriesAllowed"),
        ("--countries-blocked", "countriesBlocked"),
    ):
        if case[field]:
            args += [flag, case[field]]
    if case["speedLimit"]:
        args += ["--speed-limit", str(case["speedLimit"])]
    if case["ignoreParams"]:
        args.append("--ignore-params")
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == case["expectedSignedUrl"] + "\n"


def test_verify_exit_codes_and_reason():
    url = BUNNY["cases"][0]["expectedSignedUrl"]
    ok = run("verify", "bunny", url, "--key", BUNNY["key"], "--now", str(BUNNY["expires"] - 1))
    assert ok.returncode == 0
    late = run("verify", "bunny", url, "--key", BUNNY["key"], "--now", str(BUNNY["expires"]))
    assert late.returncode == 1
    assert "expired" in late.stderr
    wrong = run("verify", "bunny", url, "--key", "other", "--now", "0")
    assert wrong.returncode == 1
    assert "bad_signature" in wrong.stderr
    usage = run("verify", "bunny", url)
    assert usage.returncode == 2


def test_key_from_file_and_never_echoed(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(BUNNY["key"] + "\n")
    result = run(
        "sign",
        "bunny",
        BUNNY["host"] + "/300kb.jpg",
        "--key",
        f"@{key_file}",
        "--expires",
        str(BUNNY["expires"]),
    )
    assert result.stdout.strip() == BUNNY["cases"][0]["expectedSignedUrl"]
    bad = run("sign", "bunny", "not a url", "--key", "TopSecretValue", "--expires", "1")
    assert bad.returncode == 2
    assert "TopSecretValue" not in bad.stderr + bad.stdout


def test_cloudfront_sign_url_cookies_verify_and_explain(tmp_path, rsa_key):
    pem = tmp_path / "k.pem"
    pem.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "pub.pem"
    public.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    url = "https://d.cloudfront.net/a.mp4"
    signed = run(
        "sign",
        "cloudfront",
        url,
        "--key-pair-id",
        "K1",
        "--private-key",
        str(pem),
        "--expires",
        "2000000000",
    ).stdout.strip()
    assert signed == CloudFrontSigner("K1", rsa_key).sign_url(url, expires=2_000_000_000)
    custom = run(
        "sign",
        "cloudfront",
        url,
        "--key-pair-id",
        "K1",
        "--private-key",
        str(pem),
        "--expires",
        "2000000000",
        "--policy-resource",
        "https://d.cloudfront.net/*",
        "--ip-address",
        "10.0.0.0/8",
        "--not-before",
        "1000",
        "--hash-algorithm",
        "SHA256",
    ).stdout.strip()
    assert custom.endswith("Hash-Algorithm=SHA256")
    assert "Policy=" in custom
    verified = run(
        "verify",
        "cloudfront",
        custom,
        "--key-pair-id",
        "K1",
        "--public-key",
        str(public),
        "--now",
        "1500",
        "--user-ip",
        "10.1.2.3",
    )
    assert verified.returncode == 0, verified.stderr
    cookies = run(
        "sign",
        "cloudfront",
        url,
        "--key-pair-id",
        "K1",
        "--private-key",
        str(pem),
        "--expires",
        "2000000000",
        "--cookies",
    ).stdout.splitlines()
    assert [line.split("=", 1)[0] for line in cookies] == [
        "CloudFront-Expires",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    ]
    explained = run("explain", "cloudfront", signed).stdout.strip()
    assert explained == (
        '{"Statement":[{"Resource":"https://d.cloudfront.net/a.mp4","Condition":'
        '{"DateLessThan":{"AWS:EpochTime":2000000000}}}]}'
    )
    assert run("explain", "cloudfront", custom).stdout.startswith('{"Statement":[{"Resource":')


def test_google_and_akamai_and_cloudflare():
    key = VECTORS["google_cloud_cdn"]["base64url_key"]
    signed = run(
        "sign",
        "google",
        "https://c.example/a",
        "--key-name",
        "k",
        "--key",
        key,
        "--expires",
        "2000000000",
    ).stdout.strip()
    assert signed == GoogleCDNSigner("k", key).sign_url(
        "https://c.example/a", expires=2_000_000_000
    )
    prefixed = run(
        "sign",
        "google",
        "https://c.example/h/a.ts",
        "--key-name",
        "k",
        "--key",
        key,
        "--expires",
        "2000000000",
        "--url-prefix",
        "https://c.example/h/",
    ).stdout.strip()
    assert (
        run("verify", "google", prefixed, "--key-name", "k", "--key", key, "--now", "1").returncode
        == 0
    )
    assert run("explain", "google", signed).stdout.strip() == signed.rsplit("&Signature=", 1)[0]

    token = run(
        "sign",
        "akamai",
        "--acl",
        "/hls/*",
        "--key",
        "abcd",
        "--end-time",
        "2000",
        "--start-time",
        "1000",
        "--algorithm",
        "sha1",
    ).stdout.strip()
    assert token == AkamaiSigner("abcd", algorithm="sha1").acl_token(
        "/hls/*", end_time=2000, start_time=1000
    )
    assert (
        run(
            "explain", "akamai", "--acl", "/hls/*", "--end-time", "2000", "--start-time", "1000"
        ).stdout.strip()
        == "st=1000~exp=2000~acl=/hls/*"
    )
    url_token = run(
        "sign", "akamai", "--url", "/a.mp4", "--key", "abcd", "--end-time", "2000"
    ).stdout.strip()
    assert url_token.startswith("exp=2000~hmac=")

    cf = VECTORS["cloudflare_workers_hmac"][0]
    out = run(
        "sign",
        "cloudflare",
        "https://m.example" + cf["path"],
        "--key",
        cf["secret"],
        "--issued-at",
        str(cf["issued_at"]),
    ).stdout.strip()
    assert out == "https://m.example" + cf["signed_path_and_query"]
    assert run("explain", "cloudflare", out).stdout.strip() == cf["hmac_input"]
    check = run(
        "verify",
        "cloudflare",
        out,
        "--key",
        cf["secret"],
        "--now",
        str(cf["issued_at"] + 10),
        "--max-age",
        "60",
    )
    assert check.returncode == 0


def test_explain_bunny_shows_the_ip_bytes_and_the_signed_parameters():
    case = next(c for c in BUNNY["cases"] if c["name"] == "ip_v4_countries")
    out = run("explain", "bunny", case["expectedSignedUrl"], "--user-ip", "1.2.3.4").stdout.strip()
    assert out == "/abc/1598024587\\x01\\x02\\x03\\x04token_countries=CA,US"
    plain = run("explain", "bunny", BUNNY["host"] + "/a.jpg", "--expires", "5").stdout.strip()
    assert plain == "/a.jpg5"


def test_usage_errors_exit_2():
    assert run("sign").returncode == 2
    assert run("sign", "fastly", "https://x").returncode == 2
    assert run("explain", "bunny", "https://x/a").returncode == 2  # no --expires
