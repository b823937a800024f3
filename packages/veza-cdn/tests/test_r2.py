"""R2 presigned URLs against a real S3 endpoint (moto's server over HTTP)."""

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest

from veza_cdn import FailureReason, R2Presigner, SigningError, verify_presigned_url


@pytest.fixture
def bucket(moto_s3_endpoint, s3_credentials):
    name = f"r2-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_s3_endpoint, **s3_credentials)
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="tracks/a b/song.mp3", Body=b"0123456789" * 100)
    return name


@pytest.fixture
def presigner(moto_s3_endpoint, s3_credentials, bucket):
    return R2Presigner(
        account_id="acct",
        access_key_id=s3_credentials["aws_access_key_id"],
        secret_access_key=s3_credentials["aws_secret_access_key"],
        bucket=bucket,
        endpoint_url=moto_s3_endpoint,
    )


def test_presigned_get_downloads_over_http(presigner):
    url = presigner.presign_get("tracks/a b/song.mp3", expires_in=300)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].split("/")[2] == "auto"
    assert query["X-Amz-Expires"] == ["300"]
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"0123456789" * 100
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == b"0123456789"


def test_sign_url_from_object_url_and_verify(presigner):
    now = time.time()
    url = presigner.sign_url(presigner.base_url + "/tracks/a%20b/song.mp3", expires=int(now) + 120)
    assert httpx.get(url).status_code == 200
    assert presigner.verify(url, now=now).valid
    assert presigner.verify(url, now=now + 3600).reason is FailureReason.EXPIRED


def test_our_sigv4_verifier_rejects_tampering(presigner, s3_credentials):
    url = presigner.presign_get("tracks/a b/song.mp3", expires_in=300)
    tampered = url.replace("song.mp3", "song.mp4")
    assert presigner.verify(tampered).reason is FailureReason.BAD_SIGNATURE
    wrong_key = verify_presigned_url(
        url, access_key_id=s3_credentials["aws_access_key_id"], secret_key="not-the-secret"
    )
    assert wrong_key.reason is FailureReason.BAD_SIGNATURE
    other_id = verify_presigned_url(url, access_key_id="someone-else", secret_key="x")
    assert other_id.reason is FailureReason.UNKNOWN_KEY


def test_expiry_is_capped_at_seven_days(presigner):
    with pytest.raises(SigningError, match="7 days"):
        presigner.presign_get("k", expires_in=7 * 24 * 3600 + 1)


def test_repr_hides_the_secret(presigner, s3_credentials):
    assert s3_credentials["aws_secret_access_key"] not in repr(presigner)
