"""StorageConfig.from_env: exact values, production is strict, development falls back."""

import logging

import pytest

from veza_storage import (
    LocalStorage,
    S3Storage,
    Secret,
    StorageConfig,
    StorageConfigurationError,
    build_storage,
)

S3_ENV = {
    "VEZA_STORAGE_BACKEND": "s3",
    "AWS_S3_ENABLED": "true",
    "AWS_S3_BUCKET": "tracks",
    "AWS_ACCESS_KEY_ID": "AKID",
    "AWS_SECRET_ACCESS_KEY": "very-secret-value",
}


@pytest.mark.parametrize("value", ["S3", "minio", "Local", "s3 ", "gcs"])
def test_near_misses_are_fatal_in_production(value):
    with pytest.raises(StorageConfigurationError) as info:
        StorageConfig.from_env(
            {"VEZA_STORAGE_BACKEND": value, "VEZA_STORAGE_SIGNING_KEY": "k" * 32},
            production=True,
        )
    assert "VEZA_STORAGE_BACKEND" in str(info.value)
    assert "'local' or 's3'" in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["S3", "minio"])
def test_near_misses_warn_and_fall_back_in_development(value, caplog):
    with caplog.at_level(logging.WARNING, logger="veza_storage"):
        config = StorageConfig.from_env({"VEZA_STORAGE_BACKEND": value})
    assert config.backend == "local"
    assert any("VEZA_STORAGE_BACKEND" in w for w in config.warnings)
    assert "VEZA_STORAGE_BACKEND" in caplog.text


@pytest.mark.parametrize(
    "missing", ["AWS_S3_ENABLED", "AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
)
def test_s3_requirements(missing):
    env = {k: v for k, v in S3_ENV.items() if k != missing}
    with pytest.raises(StorageConfigurationError, match=missing):
        StorageConfig.from_env(env, production=True)
    assert StorageConfig.from_env(env).backend == "local"


def test_s3_enabled_false_is_not_enabled():
    with pytest.raises(StorageConfigurationError, match="AWS_S3_ENABLED"):
        StorageConfig.from_env(S3_ENV | {"AWS_S3_ENABLED": "false"}, production=True)


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
    storage = config.build()
    assert isinstance(storage, S3Storage)
    assert storage.client.meta.region_name == "auto"
    assert storage.client.meta.config.request_checksum_calculation == "when_required"
    assert "very-secret-value" not in repr(config)


def test_local_defaults_and_signing(tmp_path):
    config = StorageConfig.from_env(
        {
            "VEZA_STORAGE_LOCAL_ROOT": str(tmp_path / "t"),
            "VEZA_STORAGE_SIGNING_KEY": "s" * 32,
            "VEZA_STORAGE_PUBLIC_URL": "/media",
        }
    )
    storage = config.build()
    assert isinstance(storage, LocalStorage)
    assert storage.presign_get("a", expires_in=60).startswith("/media/a?")
    assert "s" * 32 not in repr(config)


def test_local_in_production_needs_a_signing_key():
    with pytest.raises(StorageConfigurationError, match="VEZA_STORAGE_SIGNING_KEY"):
        StorageConfig.from_env({}, production=True)


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


def test_application_variables_are_not_read():
    """APP_ENV and TRACK_* belong to the application; production is its argument."""
    with pytest.warns(DeprecationWarning, match="APP_ENV"):
        legacy = StorageConfig.from_env(
            {"APP_ENV": "production", "VEZA_STORAGE_SIGNING_KEY": "k" * 32}
        )
    assert legacy.production
    explicit = StorageConfig.from_env(
        {"APP_ENV": "production", "VEZA_STORAGE_SIGNING_KEY": "k" * 32}, production=False
    )
    assert not explicit.production
    assert not StorageConfig.from_env({"VEZA_STORAGE_SIGNING_KEY": "k" * 32}).production


@pytest.mark.parametrize(
    ("old", "new", "value", "field"),
    [
        ("TRACK_STORAGE_BACKEND", "VEZA_STORAGE_BACKEND", "local", "backend"),
        ("TRACK_STORAGE_LOCAL_ROOT", "VEZA_STORAGE_LOCAL_ROOT", "/srv/t", "local_root"),
        ("TRACK_STORAGE_SIGNING_KEY", "VEZA_STORAGE_SIGNING_KEY", "s" * 32, "signing_key"),
        ("TRACK_STORAGE_PUBLIC_URL", "VEZA_STORAGE_PUBLIC_URL", "/media", "public_url"),
    ],
)
def test_the_old_track_names_still_work_with_a_deprecation_warning(old, new, value, field):
    base = {"VEZA_STORAGE_SIGNING_KEY": "k" * 32} if field != "signing_key" else {}
    with pytest.warns(DeprecationWarning, match=new):
        config = StorageConfig.from_env(base | {old: value})
    read = getattr(config, field)
    assert str(read.reveal() if isinstance(read, Secret) else read) == value
    current = StorageConfig.from_env(base | {new: value, old: "ignored"})  # no warning
    read = getattr(current, field)
    assert str(read.reveal() if isinstance(read, Secret) else read) == value


def test_build_is_the_factory_and_build_storage_its_deprecated_alias(tmp_path):
    config = StorageConfig(backend="local", local_root=tmp_path, signing_key="k" * 32)
    assert isinstance(config.signing_key, Secret)
    assert "k" * 32 not in repr(config)
    storage = config.build()
    assert isinstance(storage, LocalStorage)
    with pytest.warns(DeprecationWarning, match=r"config\.build\(\)"):
        legacy = build_storage(config)
    assert isinstance(legacy, LocalStorage)
    assert legacy.root == storage.root
