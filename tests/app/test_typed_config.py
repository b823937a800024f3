"""The app hands typed config objects to the packages; it never re-encodes them as strings.

Before, the embedded defaults (the local edge's Bunny key, the storage directory and
signing key, the sandbox's provider keys, the TURN TTL) were written into a copy of the
environment as strings for each package's ``from_env`` to parse again. Now each default
is a typed value in the package's own config object, and ``services.env`` is exactly what
the operator set.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import boto3
import pytest

from veza_cdn import CDNConfig
from veza_payments import PaymentsConfig
from veza_reference._services import TURN_TTL, services_from
from veza_storage import StorageConfig
from veza_webrtc import IceServers


def test_development_defaults_are_typed_values_not_environment_strings(tmp_path: Path) -> None:
    environ = {
        "VEZA_DATA_DIR": str(tmp_path),
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_FAST_PASSWORD_HASHING": "1",
        "WEBRTC_TURN_URLS": "turn:127.0.0.1:3478",
        "WEBRTC_TURN_SECRET": "a-turn-rest-secret-for-this-test",
        "PATH": os.environ.get("PATH", ""),
    }
    with services_from(environ) as services:
        assert dict(services.env) == environ  # nothing written back as a string
        assert isinstance(services.cdn_config, CDNConfig)
        assert services.cdn_config.enabled and services.cdn_config.provider == "bunny"
        assert services.cdn_config.base_url == services.edge_url
        assert services.cdn.is_enabled
        assert isinstance(services.storage_config, StorageConfig)
        assert services.storage_config.local_root == tmp_path / "storage"
        assert services.storage_config.public_url == f"{services.public_url}/files"
        assert isinstance(services.payments, PaymentsConfig)
        assert services.sandbox is not None
        assert services.payments.hyperswitch_base_url == services.sandbox.hyperswitch.url
        assert [k.reveal() for k in services.payments.webhook_keys] == [
            services.sandbox.webhook_key
        ]
        assert services.payments.stripe_api_base == services.sandbox.stripe.url
        assert isinstance(services.ice, IceServers)
        assert services.ice.config.turn_ttl == TURN_TTL and services.ice.ephemeral


def test_the_operators_variables_win_over_the_typed_defaults(tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    environ = {
        "VEZA_DATA_DIR": str(tmp_path),
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_LOCAL_EDGE": "0",
        "VEZA_STORAGE_LOCAL_ROOT": str(root),
        "VEZA_STORAGE_SIGNING_KEY": "an-operator-chosen-signing-key-0123456789",
        "WEBRTC_TURN_URLS": "turn:127.0.0.1:3478",
        "WEBRTC_TURN_SECRET": "a-turn-rest-secret-for-this-test",
        "WEBRTC_TURN_TTL": "1200",
    }
    with services_from(environ) as services:
        assert services.storage_config.local_root == root
        signing_key = services.storage_config.signing_key
        assert signing_key is not None
        assert signing_key.reveal() == environ["VEZA_STORAGE_SIGNING_KEY"]
        assert services.ice.config.turn_ttl == 1200
        assert not services.cdn_config.enabled and services.edge_url is None


@pytest.mark.parametrize("spelling", ["1", "yes", "ON"])
def test_aws_s3_enabled_1_selects_s3_in_the_app(
    moto_s3_endpoint: str, tmp_path: Path, spelling: str
) -> None:
    """``AWS_S3_ENABLED=1`` works like ``CDN_ENABLED=1`` (it fell back to local before)."""
    bucket = f"typed-{uuid.uuid4().hex[:8]}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client(
        "s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1", **creds
    ).create_bucket(Bucket=bucket)
    environ = {
        "VEZA_DATA_DIR": str(tmp_path),
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_LOCAL_EDGE": "false",
        "VEZA_STORAGE_BACKEND": "s3",
        "AWS_S3_ENABLED": spelling,
        "AWS_S3_BUCKET": bucket,
        "AWS_S3_ENDPOINT": moto_s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_S3_PROFILE": "minio",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with services_from(environ) as services:
        assert services.storage_config.backend == "s3"
        assert services.storage_config.warnings == ()
        services.storage.put(
            "tracks/typed.bin", io.BytesIO(b"typed bytes"), content_type="application/octet-stream"
        )
        with services.storage.open("tracks/typed.bin") as stream:
            assert stream.read() == b"typed bytes"
