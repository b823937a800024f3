"""Fixtures: every behaviour runs on local disk and on a real S3 endpoint (moto's server)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from veza_storage import LocalStorage, LocalURLSigner, S3Storage

SIGNING_KEY = "test-signing-key-0123456789abcdef"
MiB = 1024 * 1024


@pytest.fixture
def local_storage(tmp_path):
    return LocalStorage(
        tmp_path / "root", signer=LocalURLSigner(SIGNING_KEY, "http://app.test/files")
    )


@pytest.fixture
def s3_client(moto_s3_endpoint, s3_credentials):
    return boto3.client("s3", endpoint_url=moto_s3_endpoint, **s3_credentials)


@pytest.fixture
def bucket(s3_client):
    name = f"veza-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(moto_s3_endpoint, s3_credentials, bucket):
    return S3Storage(
        bucket,
        endpoint_url=moto_s3_endpoint,
        access_key_id=s3_credentials["aws_access_key_id"],
        secret_access_key=s3_credentials["aws_secret_access_key"],
        profile="minio",
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
    )


@pytest.fixture(params=["local", "s3"])
def storage(request):
    return request.getfixturevalue(f"{request.param}_storage")
