"""StorageConfig.from_env: exact values, production is strict, development falls back."""

import logging

import pytest

from veza_storage import (
    LocalStorage,
    S3Storage,
    StorageConfig,
    StorageConfigurationError,
    build_storage,
)

S3_ENV = {
    "TRACK_STORAGE_BACKEND": "s3",
    "AWS_S3_ENABLED": "true",
    "AWS_S3_BUCKET": "tracks",
    "AWS_ACCESS_KEY_ID": "AKID",
    "AWS_SECRET_ACCESS_KEY": "very-secret-value",
}


@pytest.mark.parametrize("value", ["S3", "minio", "Local", "s3 ", "gcs"])
def test_near_misses_are_fatal_in_production(value):
    with pytest.raises(StorageConfigurationError) as info:
        StorageConfig.from_env(
            {
                "TRACK_STORAGE_BACKEND": value,
                "APP_ENV": "production",
                "TRACK_STORAGE_SIGNING_KEY": "k" * 32,
            }
        )
    assert "TRACK_STORAGE_BACKEND" in str(info.value)
    assert "'local' or 's3'" in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["S3", "minio"])
def test_near_misses_warn_and_fall_back_in_development(value, caplog):
    with caplog.at_level(logging.WARNING, logger="veza_storage"):
        config = StorageConfig.from_env({"TRACK_STORAGE_BACKEND": value})
    assert config.backend == "local"
    assert any("TRACK_STORAGE_BACKEND" in w for w in config.warnings)
    assert "TRACK_STORAGE_BACKEND" in caplog.text


@pytest.mark.parametrize(
    "missing", ["AWS_S3_ENABLED", "AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
)
def test_s3_requirements(missing):
    env = {k: v for k, v in S3_ENV.items() if k != missing}
    with pytest.raises(StorageConfigurationError, match=missing):
        StorageConfig.from_env(env | {"APP_ENV": "production"})
    assert StorageConfig.from_env(env).backend == "local"


def test_s3_enabled_false_is_not_enabled():
    with pytest.raises(StorageConfigurationError, match="AWS_S3_ENABLED"):
        StorageConfig.from_env(S3_ENV | {"AWS_S3_ENABLED": "false", "APP_ENV": "production"})


def test_valid_s3_configuration_builds_the_backend():
    config = StorageConfig.from_env(
        S3_ENV
        | {
            "AWS_S3_PROFILE": "r2",
            "AWS_S3_PREFIX": "music",
            "AWS_S3_ENDPOINT": "https://x.r2.example",
        }
    )
    assert (config.backend, config.profile, config.prefix) == ("s3", "r2", "music/")
    storage = build_storage(config)
    assert isinstance(storage, S3Storage)
    assert storage.client.meta.region_name == "auto"
    assert storage.client.meta.config.request_checksum_calculation == "when_required"
    assert "very-secret-value" not in repr(config)


def test_local_defaults_and_signing(tmp_path):
    config = StorageConfig.from_env(
        {
            "TRACK_STORAGE_LOCAL_ROOT": str(tmp_path / "t"),
            "TRACK_STORAGE_SIGNING_KEY": "s" * 32,
            "TRACK_STORAGE_PUBLIC_URL": "/media",
        }
    )
    storage = build_storage(config)
    assert isinstance(storage, LocalStorage)
    assert storage.presign_get("a", expires_in=60).startswith("/media/a?")
    assert "s" * 32 not in repr(config)


def test_local_in_production_needs_a_signing_key():
    with pytest.raises(StorageConfigurationError, match="TRACK_STORAGE_SIGNING_KEY"):
        StorageConfig.from_env({"APP_ENV": "production"})


def test_unknown_profile():
    with pytest.raises(StorageConfigurationError, match="AWS_S3_PROFILE"):
        StorageConfig.from_env({"AWS_S3_PROFILE": "gcs"})


def test_profiles_preset_checksums_and_addressing():
    from veza_storage._s3 import make_client

    aws = make_client(profile="aws", region="eu-west-1")
    minio = make_client(profile="minio", endpoint_url="http://127.0.0.1:9000")
    assert aws.meta.config.request_checksum_calculation == "when_supported"
    assert minio.meta.config.request_checksum_calculation == "when_required"
    assert minio.meta.config.response_checksum_validation == "when_required"
    assert minio.meta.config.s3["addressing_style"] == "path"
    assert minio.meta.config.retries["mode"] == "standard"
