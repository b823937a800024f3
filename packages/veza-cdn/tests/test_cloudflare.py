"""Cloudflare's HMAC form: expiry semantics through max_age, verification reasons."""

from veza_cdn import CloudflareHMACSigner, FailureReason


def test_expires_maps_to_issued_at_through_max_age():
    signer = CloudflareHMACSigner("s3cret", max_age=600)
    url = signer.sign_url("https://m.example/a.mp3", expires=10_600)
    assert "verify=10000-" in url
    assert signer.verify(url, now=10_599).valid
    assert signer.verify(url, now=10_600).reason is FailureReason.EXPIRED
    assert signer.verify(url, now=9_000).reason is FailureReason.NOT_YET_VALID


def test_signature_covers_path_not_host():
    signer = CloudflareHMACSigner("s3cret")
    url = signer.sign_url_issued_at("https://m.example/a.mp3", issued_at=100)
    assert signer.verify(url.replace("/a.mp3", "/b.mp3"), now=101).reason is (
        FailureReason.BAD_SIGNATURE
    )
    assert signer.verify(url.replace("m.example", "n.example"), now=101).valid


def test_rotation_and_malformed():
    url = CloudflareHMACSigner("old").sign_url_issued_at("https://m.example/a", issued_at=100)
    assert CloudflareHMACSigner("new", verify_keys=["old"]).verify(url, now=101).valid
    assert CloudflareHMACSigner("new").verify("https://m.example/a?verify=zzz", now=1).reason is (
        FailureReason.MALFORMED
    )
