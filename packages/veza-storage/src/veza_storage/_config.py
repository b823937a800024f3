"""Storage configuration from the environment, validated at start-up.

``VEZA_STORAGE_BACKEND`` must be exactly ``local`` or ``s3``: ``S3``, ``minio`` and
other near misses are refused, with the variable and the allowed values in the message.
``s3`` also needs ``AWS_S3_ENABLED=true``, a bucket and credentials. When any of that is
wrong, ``production=True`` stops start-up; otherwise a warning is logged and the
backend falls back to ``local`` (a developer's laptop keeps working, a production
deploy never silently writes tracks to the wrong place).

Whether this is production is the application's decision, passed in as ``production``:
a library does not read the application's own variables. The names used up to 0.1
(``TRACK_STORAGE_*`` and ``APP_ENV``) still work for now, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import logging
import os
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

import attrs

from veza_storage._errors import StorageConfigurationError
from veza_storage._local import LocalStorage
from veza_storage._s3 import PROFILES, Profile, S3Storage
from veza_storage._secret import Secret
from veza_storage._signing import LocalURLSigner

_log = logging.getLogger("veza_storage")
Backend = Literal["local", "s3"]

# variable -> the name it had up to 0.1 (read, with a DeprecationWarning, when unset)
_LEGACY = {
    "VEZA_STORAGE_BACKEND": "TRACK_STORAGE_BACKEND",
    "VEZA_STORAGE_LOCAL_ROOT": "TRACK_STORAGE_LOCAL_ROOT",
    "VEZA_STORAGE_SIGNING_KEY": "TRACK_STORAGE_SIGNING_KEY",
    "VEZA_STORAGE_PUBLIC_URL": "TRACK_STORAGE_PUBLIC_URL",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(name: str, value: str | None, *, default: bool = False) -> bool:
    """Read a boolean variable the way every veza package does.

    Accepted, in any case and with surrounding blanks ignored: ``1``/``0``,
    ``true``/``false``, ``yes``/``no``, ``on``/``off``; unset or blank gives ``default``.
    Anything else is refused instead of being read as false, because a typo such as
    ``ENABLED=ture`` must stop start-up rather than quietly switch a feature off. The
    packages share no dependency, so each keeps this same function in its config
    module; ``tests/test_parse_bool.py`` runs one table through all of them so they
    cannot drift apart.

    Args:
        name: The variable's name, for the error message.
        value: Its raw value (``None`` when unset).
        default: The answer for an unset or blank variable.

    Raises:
        StorageConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise StorageConfigurationError(msg)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"veza-storage reads {old} for now; set {new} instead ({old} is the application's)",
        DeprecationWarning,
        stacklevel=4,
    )


def _variable(env: Mapping[str, str], name: str) -> tuple[str, str | None]:
    """(the name actually read, its value): the current name, else its deprecated one."""
    if name not in env and _LEGACY.get(name, name) in env:
        _deprecated(_LEGACY[name], name)
        return _LEGACY[name], env[_LEGACY[name]]
    return name, env.get(name)


def _production(env: Mapping[str, str], production: bool | None) -> bool:
    if production is not None:
        return production
    if "APP_ENV" in env:
        warnings.warn(
            "veza-storage reads APP_ENV for now; pass StorageConfig.from_env(production=...) "
            "instead (APP_ENV is the application's)",
            DeprecationWarning,
            stacklevel=3,
        )
        return (env.get("APP_ENV") or "").strip().lower() == "production"
    return False


def _secret(value: str | Secret[str] | None) -> Secret[str] | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


@attrs.frozen(kw_only=True)
class StorageConfig:
    """Where tracks are stored.

    Attributes:
        backend: ``VEZA_STORAGE_BACKEND``: ``local`` (default) or ``s3``.
        local_root: ``VEZA_STORAGE_LOCAL_ROOT``: the local backend's directory.
        signing_key: ``VEZA_STORAGE_SIGNING_KEY``: HMAC key for local signed URLs, held
            as a :class:`Secret` (a ``str`` given is wrapped).
        public_url: ``VEZA_STORAGE_PUBLIC_URL``: where the app serves local files.
        bucket: ``AWS_S3_BUCKET``.
        endpoint_url: ``AWS_S3_ENDPOINT`` (MinIO, R2, ...).
        region: ``AWS_REGION``.
        profile: ``AWS_S3_PROFILE``: ``aws``, ``minio`` or ``r2``.
        prefix: ``AWS_S3_PREFIX``: key prefix inside the bucket.
        access_key_id: ``AWS_ACCESS_KEY_ID``.
        secret_access_key: ``AWS_SECRET_ACCESS_KEY``, a :class:`Secret`.
        production: Configuration errors are fatal (the ``production`` argument).
        warnings: Problems that did not stop start-up.
    """

    backend: Backend = "local"
    local_root: Path = Path("storage")
    signing_key: Secret[str] | None = attrs.field(default=None, converter=_secret)
    public_url: str = "/files"
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: Profile = "aws"
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: Secret[str] | None = attrs.field(default=None, converter=_secret)
    production: bool = False
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, production: bool | None = None
    ) -> StorageConfig:
        """Read and validate the storage variables.

        Args:
            environ: The variables (default ``os.environ``).
            production: Whether configuration errors are fatal; the application decides
                (``None``: the deprecated ``APP_ENV=production``, else ``False``).

        Raises:
            StorageConfigurationError: In production, any invalid value (named); in
                other environments only values that cannot fall back.
        """
        env = os.environ if environ is None else environ
        production = _production(env, production)
        notes: list[str] = []

        def problem(message: str) -> None:
            if production:
                raise StorageConfigurationError(message)
            notes.append(f"{message}; falling back to the local backend (not production)")

        backend_name, raw = _variable(env, "VEZA_STORAGE_BACKEND")
        backend: Backend = "local"
        if raw is not None and raw != "":
            if raw in ("local", "s3"):
                backend = cast("Backend", raw)
            else:
                problem(f"{backend_name} must be exactly 'local' or 's3', got {raw!r}")
        profile = (env.get("AWS_S3_PROFILE") or "aws").strip()
        if profile not in PROFILES:
            msg = f"AWS_S3_PROFILE must be one of {', '.join(PROFILES)}, got {profile!r}"
            raise StorageConfigurationError(msg)
        if backend == "s3":
            missing = []
            try:
                s3_enabled = parse_bool("AWS_S3_ENABLED", env.get("AWS_S3_ENABLED"))
            except StorageConfigurationError as exc:  # like any other problem: fatal in production
                problem(str(exc))
                s3_enabled = False
            if not s3_enabled:
                missing.append("AWS_S3_ENABLED=true")
            missing += [
                name
                for name in ("AWS_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if not (env.get(name) or "").strip()
            ]
            if missing:
                problem(f"{backend_name}=s3 requires {', '.join(missing)}")
                backend = "local"
        key_name, signing_key = _variable(env, "VEZA_STORAGE_SIGNING_KEY")
        signing_key = signing_key or None
        if backend == "local" and signing_key is None:
            if production:
                msg = f"{key_name} is required for the local backend in production"
                raise StorageConfigurationError(msg)
            notes.append(
                f"{key_name} is not set: local signed URLs use a random key "
                "and stop working when the process restarts"
            )
            signing_key = secrets.token_hex(32)
        prefix = (env.get("AWS_S3_PREFIX") or "").strip()
        config = cls(
            backend=backend,
            local_root=Path(_variable(env, "VEZA_STORAGE_LOCAL_ROOT")[1] or "storage"),
            signing_key=signing_key,
            public_url=_variable(env, "VEZA_STORAGE_PUBLIC_URL")[1] or "/files",
            bucket=(env.get("AWS_S3_BUCKET") or "").strip() or None,
            endpoint_url=(env.get("AWS_S3_ENDPOINT") or "").strip() or None,
            region=(env.get("AWS_REGION") or "").strip() or None,
            profile=cast("Profile", profile),
            prefix=prefix + "/" if prefix and not prefix.endswith("/") else prefix,
            access_key_id=(env.get("AWS_ACCESS_KEY_ID") or "").strip() or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            production=production,
            warnings=tuple(notes),
        )
        for note in notes:
            _log.warning("veza-storage: %s", note)
        return config

    def build(self) -> LocalStorage | S3Storage:
        """The backend these settings describe.

        ``StorageConfig.from_env(production=...).build()`` is the shape every veza
        package shares: environment, then a frozen value, then the object.
        """
        if self.backend == "s3":
            if self.bucket is None:
                msg = "backend 's3' needs a bucket (AWS_S3_BUCKET)"
                raise StorageConfigurationError(msg)
            return S3Storage(
                self.bucket,
                endpoint_url=self.endpoint_url,
                region=self.region,
                access_key_id=self.access_key_id,
                secret_access_key=(
                    self.secret_access_key.reveal() if self.secret_access_key else None
                ),
                profile=self.profile,
                prefix=self.prefix,
            )
        signer = (
            LocalURLSigner(self.signing_key.reveal(), self.public_url) if self.signing_key else None
        )
        return LocalStorage(self.local_root, signer=signer)


def build_storage(config: StorageConfig) -> LocalStorage | S3Storage:
    """Deprecated alias of :meth:`StorageConfig.build` (the 0.1.0 function).

    .. deprecated:: 0.2.0
        Use ``config.build()``; this function goes in 0.3.0.
    """
    warnings.warn(
        "build_storage(config) is deprecated; use config.build()",
        DeprecationWarning,
        stacklevel=2,
    )
    return config.build()
