"""Storage configuration from the environment, validated at start-up.

``TRACK_STORAGE_BACKEND`` must be exactly ``local`` or ``s3``: ``S3``, ``minio`` and
other near misses are refused, with the variable and the allowed values in the message.
``s3`` also needs ``AWS_S3_ENABLED=true``, a bucket and credentials. When any of that is
wrong, ``APP_ENV=production`` stops start-up; any other environment logs a warning and
falls back to ``local`` (a developer's laptop keeps working, a production deploy never
silently writes tracks to the wrong place).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

import attrs

from veza_storage._errors import StorageConfigurationError
from veza_storage._local import LocalStorage
from veza_storage._s3 import PROFILES, Profile, S3Storage
from veza_storage._signing import LocalURLSigner

_log = logging.getLogger("veza_storage")
Backend = Literal["local", "s3"]


@attrs.frozen
class StorageConfig:
    """Where tracks are stored.

    Attributes:
        backend: ``TRACK_STORAGE_BACKEND``: ``local`` (default) or ``s3``.
        local_root: ``TRACK_STORAGE_LOCAL_ROOT``: the local backend's directory.
        signing_key: ``TRACK_STORAGE_SIGNING_KEY``: HMAC key for local signed URLs.
        public_url: ``TRACK_STORAGE_PUBLIC_URL``: where the app serves local files.
        bucket: ``AWS_S3_BUCKET``.
        endpoint_url: ``AWS_S3_ENDPOINT`` (MinIO, R2, ...).
        region: ``AWS_REGION``.
        profile: ``AWS_S3_PROFILE``: ``aws``, ``minio`` or ``r2``.
        prefix: ``AWS_S3_PREFIX``: key prefix inside the bucket.
        access_key_id: ``AWS_ACCESS_KEY_ID``.
        secret_access_key: ``AWS_SECRET_ACCESS_KEY`` (never shown).
        production: ``APP_ENV=production``: configuration errors are fatal.
        warnings: Problems that did not stop start-up.
    """

    backend: Backend = "local"
    local_root: Path = Path("storage")
    signing_key: str | None = attrs.field(default=None, repr=False)
    public_url: str = "/files"
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: Profile = "aws"
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: str | None = attrs.field(default=None, repr=False)
    production: bool = False
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """Read and validate the storage variables.

        Raises:
            StorageConfigurationError: In production, any invalid value (named); in
                other environments only values that cannot fall back.
        """
        env = os.environ if environ is None else environ
        production = (env.get("APP_ENV") or "").strip().lower() == "production"
        warnings: list[str] = []

        def problem(message: str) -> None:
            if production:
                raise StorageConfigurationError(message)
            warnings.append(
                f"{message}; falling back to the local backend (APP_ENV is not production)"
            )

        raw = env.get("TRACK_STORAGE_BACKEND")
        backend: Backend = "local"
        if raw is not None and raw != "":
            if raw in ("local", "s3"):
                backend = cast("Backend", raw)
            else:
                problem(f"TRACK_STORAGE_BACKEND must be exactly 'local' or 's3', got {raw!r}")
        profile = (env.get("AWS_S3_PROFILE") or "aws").strip()
        if profile not in PROFILES:
            msg = f"AWS_S3_PROFILE must be one of {', '.join(PROFILES)}, got {profile!r}"
            raise StorageConfigurationError(msg)
        if backend == "s3":
            missing = []
            if (env.get("AWS_S3_ENABLED") or "").strip().lower() != "true":
                missing.append("AWS_S3_ENABLED=true")
            missing += [
                name
                for name in ("AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if not (env.get(name) or "").strip()
            ]
            if missing:
                problem(f"TRACK_STORAGE_BACKEND=s3 requires {', '.join(missing)}")
                backend = "local"
        signing_key = env.get("TRACK_STORAGE_SIGNING_KEY") or None
        if backend == "local" and signing_key is None:
            if production:
                msg = "TRACK_STORAGE_SIGNING_KEY is required for the local backend in production"
                raise StorageConfigurationError(msg)
            warnings.append(
                "TRACK_STORAGE_SIGNING_KEY is not set: local signed URLs use a random key "
                "and stop working when the process restarts"
            )
            signing_key = secrets.token_hex(32)
        prefix = (env.get("AWS_S3_PREFIX") or "").strip()
        config = cls(
            backend=backend,
            local_root=Path(env.get("TRACK_STORAGE_LOCAL_ROOT") or "storage"),
            signing_key=signing_key,
            public_url=env.get("TRACK_STORAGE_PUBLIC_URL") or "/files",
            bucket=(env.get("AWS_S3_BUCKET") or "").strip() or None,
            endpoint_url=(env.get("AWS_S3_ENDPOINT") or "").strip() or None,
            region=(env.get("AWS_REGION") or "").strip() or None,
            profile=cast("Profile", profile),
            prefix=prefix + "/" if prefix and not prefix.endswith("/") else prefix,
            access_key_id=(env.get("AWS_ACCESS_KEY_ID") or "").strip() or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            production=production,
            warnings=tuple(warnings),
        )
        for warning in warnings:
            _log.warning("veza-storage: %s", warning)
        return config


def build_storage(config: StorageConfig) -> LocalStorage | S3Storage:
    """The backend ``config`` describes."""
    if config.backend == "s3":
        assert config.bucket is not None  # noqa: S101 - from_env checked it
        return S3Storage(
            config.bucket,
            endpoint_url=config.endpoint_url,
            region=config.region,
            access_key_id=config.access_key_id,
            secret_access_key=config.secret_access_key,
            profile=config.profile,
            prefix=config.prefix,
        )
    signer = LocalURLSigner(config.signing_key, config.public_url) if config.signing_key else None
    return LocalStorage(config.local_root, signer=signer)
