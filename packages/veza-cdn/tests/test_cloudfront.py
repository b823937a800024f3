"""CloudFront: byte-identical to botocore's signer, SHA-256, ECDSA, cookies, verification."""

import base64
import json
from datetime import UTC, datetime

import pytest
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_cdn import CDNConfigurationError, CloudFrontSigner, CloudFrontVerifier, FailureReason
from veza_cdn._paths import UnsafePathError, canonical_path

DIST = "https://d111111abcdef8.cloudfront.net"
EXP = 1_900_000_000

paths = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=127)
    | st.sampled_from("-._~/"),
    min_size=1,
    max_size=40,
).map(lambda s: "/" + s.lstrip("/"))
queries = st.lists(
    st.tuples(st.text("abcxyz", min_size=1, max_size=5), st.text("0123456789", max_size=4)),
    max_size=3,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


def _botocore(key_id: str, key: rsa.RSAPrivateKey) -> BotocoreSigner:
    return BotocoreSigner(
        key_id, lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    )


def _unsafe(path: str) -> bool:
    try:
        canonical_path(path)
    except UnsafePathError:
        return True
    return False


def _url(path: str, query: str) -> str:
    return f"{DIST}{path}" + (f"?{query}" if query else "")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, query=queries, expires=st.integers(1_000_000_000, 2_000_000_000))
def test_canned_url_is_byte_identical_to_botocore(rsa_key, path, query, expires):
    url = _url(path, query)
    if _unsafe(path):  # botocore signs anything; veza never issues what it would refuse
        with pytest.raises(UnsafePathError):
            CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key).sign_url(url, expires=expires)
        return
    theirs = _botocore("K2JCJMDEHXQW5F", rsa_key).generate_presigned_url(
        url, date_less_than=datetime.fromtimestamp(expires, tz=UTC)
    )
    ours = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key, cache_size=0).sign_url(url, expires=expires)
    assert ours == theirs


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=paths,
    expires=st.integers(1_500_000_000, 2_000_000_000),
    not_before=st.none() | st.integers(1_000_000_000, 1_400_000_000),
    ip=st.none() | st.sampled_from(["192.0.2.1", "198.51.100.0/24", "10.0.0.0/8"]),
    wildcard=st.booleans(),
)
def test_custom_policy_url_is_byte_identical_to_botocore(
    rsa_key, path, expires, not_before, ip, wildcard
):
    url = _url(path, "")
    if _unsafe(path):
        with pytest.raises(UnsafePathError):
            CloudFrontSigner("KEYID", rsa_key).sign_url(url, expires=expires)
        return
    resource = f"{DIST}/*" if wildcard else url
    botocore = _botocore("KEYID", rsa_key)
    policy = botocore.build_policy(
        resource,
        datetime.fromtimestamp(expires, tz=UTC),
        date_greater_than=None
        if not_before is None
        else datetime.fromtimestamp(not_before, tz=UTC),
        ip_address=ip,
    )
    theirs = botocore.generate_presigned_url(url, policy=policy)
    ours = CloudFrontSigner("KEYID", rsa_key, cache_size=0).sign_url(
        url, expires=expires, not_before=not_before, ip_address=ip, policy_resource=resource
    )
    assert ours == theirs


def test_sha256_adds_hash_algorithm_last_and_signs_with_sha256(rsa_key):
    signer = CloudFrontSigner("KID", rsa_key, hash_algorithm="SHA256")
    url = signer.sign_url(f"{DIST}/a.mp4?x=1", expires=EXP)
    assert url.endswith("&Key-Pair-Id=KID&Hash-Algorithm=SHA256")
    signature = url.split("Signature=")[1].split("&")[0]
    raw = base64.b64decode(signature.replace("-", "+").replace("_", "=").replace("~", "/"))
    policy = (
        f'{{"Statement":[{{"Resource":"{DIST}/a.mp4?x=1",'
        f'"Condition":{{"DateLessThan":{{"AWS:EpochTime":{EXP}}}}}}}]}}'
    )
    rsa_key.public_key().verify(raw, policy.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert signer.verify(url, now=EXP - 1).valid


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256"])
def test_ecdsa_p256_signs_and_verifies(ec_key, algorithm):
    signer = CloudFrontSigner("KEC", ec_key, hash_algorithm=algorithm)
    url = signer.sign_url(f"{DIST}/v/a.mp4", expires=EXP)
    assert signer.verify(url, now=EXP - 1).valid
    verifier = CloudFrontVerifier({"KEC": ec_key.public_key()})
    assert verifier.verify(url, now=EXP - 1).valid


def test_cloudfront_base64_alphabet(rsa_key):
    url = CloudFrontSigner("K", rsa_key).sign_url(
        f"{DIST}/a", expires=EXP, policy_resource=f"{DIST}/*"
    )
    encoded = url.split("Policy=")[1].split("&")[0] + url.split("Signature=")[1].split("&")[0]
    assert not set("+=/") & set(encoded)


def test_canned_and_custom_cookies(rsa_key):
    signer = CloudFrontSigner("K1", rsa_key, hash_algorithm="SHA256")
    canned = signer.sign_cookies(f"{DIST}/a.mp4", expires=EXP)
    assert set(canned) == {
        "CloudFront-Expires",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
        "CloudFront-Hash-Algorithm",
    }
    assert signer.verifier.verify_cookies(f"{DIST}/a.mp4", canned, now=EXP - 1).valid
    custom = signer.sign_cookies(f"{DIST}/hls/x.m3u8", expires=EXP, policy_resource=f"{DIST}/hls/*")
    assert "CloudFront-Policy" in custom
    policy = json.loads(
        base64.b64decode(custom["CloudFront-Policy"].translate(str.maketrans("-_~", "+=/")))
    )
    assert policy["Statement"][0]["Resource"] == f"{DIST}/hls/*"
    assert signer.verifier.verify_cookies(f"{DIST}/hls/seg9.ts", custom, now=EXP - 1).valid
    outside = signer.verifier.verify_cookies(f"{DIST}/other/seg9.ts", custom, now=EXP - 1)
    assert outside.reason is FailureReason.PATH_OUT_OF_SCOPE


def test_verifier_reasons(rsa_key):
    signer = CloudFrontSigner("K1", rsa_key)
    url = signer.sign_url(
        f"{DIST}/a.mp4", expires=EXP, not_before=EXP - 100, ip_address="203.0.113.0/24"
    )
    ip = "203.0.113.7"
    assert signer.verify(url, now=EXP - 50, user_ip=ip).valid
    assert signer.verify(url, now=EXP, user_ip=ip).reason is FailureReason.EXPIRED
    assert signer.verify(url, now=EXP - 101, user_ip=ip).reason is FailureReason.NOT_YET_VALID
    assert (
        signer.verify(url, now=EXP - 50, user_ip="198.51.100.1").reason is FailureReason.IP_MISMATCH
    )
    assert signer.verify(url, now=EXP - 50).reason is FailureReason.IP_MISMATCH
    stranger = CloudFrontVerifier({"K2": rsa_key.public_key()})
    assert stranger.verify(url, now=EXP - 50, user_ip=ip).reason is FailureReason.UNKNOWN_KEY
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = CloudFrontVerifier({"K1": other_key.public_key()})
    assert impostor.verify(url, now=EXP - 50, user_ip=ip).reason is FailureReason.BAD_SIGNATURE


def test_canned_signature_does_not_transfer_to_another_url(rsa_key):
    signer = CloudFrontSigner("K1", rsa_key)
    url = signer.sign_url(f"{DIST}/a.mp4", expires=EXP)
    moved = url.replace("/a.mp4", "/b.mp4")
    assert signer.verify(moved, now=0).reason is FailureReason.BAD_SIGNATURE


def test_signing_parameters_must_come_last(rsa_key):
    signer = CloudFrontSigner("K1", rsa_key)
    url = signer.sign_url(f"{DIST}/a.mp4", expires=EXP) + "&extra=1"
    assert signer.verify(url, now=0).reason is FailureReason.MALFORMED


def test_memoised_signature_is_reused_within_a_window(ec_key):
    # ECDSA signatures are randomised: identical output proves the memo served it
    signer = CloudFrontSigner("KEC", ec_key)
    first = signer.sign_url(f"{DIST}/a.mp4", expires=EXP)
    assert signer.sign_url(f"{DIST}/a.mp4", expires=EXP) == first
    uncached = CloudFrontSigner("KEC", ec_key, cache_size=0)
    assert uncached.sign_url(f"{DIST}/a.mp4", expires=EXP) != uncached.sign_url(
        f"{DIST}/a.mp4", expires=EXP
    )


def test_memo_is_bounded(ec_key):
    signer = CloudFrontSigner("KEC", ec_key, cache_size=2)
    first = signer.sign_url(f"{DIST}/0", expires=EXP)
    for i in range(1, 4):
        signer.sign_url(f"{DIST}/{i}", expires=EXP)
    assert signer.sign_url(f"{DIST}/0", expires=EXP) != first  # evicted, re-signed


def test_only_cloudfront_key_types_are_accepted():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CDNConfigurationError, match="RSA-2048"):
        CloudFrontSigner("K", small)
    with pytest.raises(CDNConfigurationError, match="P-256"):
        CloudFrontSigner("K", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(CDNConfigurationError, match="private key"):
        CloudFrontSigner(
            "K", b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
        )


def test_ip_without_prefix_length_is_widened(rsa_key):
    signer = CloudFrontSigner("K", rsa_key)
    v6 = signer.string_to_sign(f"{DIST}/a", expires=EXP, ip_address="2001:db8::1")
    assert b'"AWS:SourceIp":"2001:db8::1/128"' in v6


def test_repr_names_the_key_type_not_the_key(rsa_key, rsa_pem):
    text = repr(CloudFrontSigner("K", rsa_pem))
    assert "RSA" in text
    assert "PRIVATE" not in text
