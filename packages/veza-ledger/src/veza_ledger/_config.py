"""``LedgerConfig``: the ledger's few variables, read once, as every veza package does.

veza-ledger reads two variables (the database URL, the webhook log's retention).
``LedgerConfig.from_env().build()`` has the shape of ``CDNConfig``, ``PaymentsConfig``,
``StorageConfig`` and ``IceConfig``: environment, then a frozen value, then the object.
The boolean parser lives here so that a boolean setting, when one is added, is read
exactly as in veza-cdn, veza-payments, veza-storage and veza-webrtc.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs
import sqlalchemy as sa

from veza_ledger._engine import create_engine
from veza_ledger._errors import LedgerConfigurationError
from veza_ledger._ledger import Ledger
from veza_ledger._retention import DEFAULT_RETENTION_DAYS, retention_days_from_env
from veza_ledger._secret import Secret

DATABASE_VARIABLE = "VEZA_DATABASE_URL"

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
        LedgerConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise LedgerConfigurationError(msg)


def _secret(value: str | Secret[str]) -> Secret[str]:
    return value if isinstance(value, Secret) else Secret(value)


@attrs.frozen(kw_only=True)
class LedgerConfig:
    """Where the ledger lives and how long it keeps webhook deliveries.

    Attributes:
        database_url: ``VEZA_DATABASE_URL``: the SQLAlchemy URL, held as a
            :class:`Secret` because it usually carries the database password (a ``str``
            given is wrapped).
        webhook_log_retention_days: ``HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS``: what
            :func:`sweep_webhook_log` keeps (default 90).
    """

    database_url: Secret[str] = attrs.field(converter=_secret)
    webhook_log_retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LedgerConfig:
        """Read and validate the ledger's variables.

        Args:
            environ: The variables (default ``os.environ``); tests pass a dict.

        Raises:
            LedgerConfigurationError: ``VEZA_DATABASE_URL`` is unset, or the retention
                is not a whole number of days (the message names the variable, never
                the URL).
        """
        env = os.environ if environ is None else environ
        url = (env.get(DATABASE_VARIABLE) or "").strip()
        if not url:
            msg = f"{DATABASE_VARIABLE} is required (a SQLAlchemy URL)"
            raise LedgerConfigurationError(msg)
        return cls(database_url=url, webhook_log_retention_days=retention_days_from_env(env))

    def build(self) -> Ledger:
        """A :class:`Ledger` over a new engine for ``database_url``.

        The engine is configured as :func:`create_engine` does (SQLite pragmas); dispose
        of it with ``ledger.engine.dispose()`` when the process ends.

        Raises:
            LedgerConfigurationError: The URL is not a SQLAlchemy URL (the message does
                not repeat it).
        """
        try:
            engine = create_engine(self.database_url.reveal())
        except (sa.exc.ArgumentError, ImportError) as exc:  # a bad URL, a missing driver
            msg = f"{DATABASE_VARIABLE} is not a usable SQLAlchemy URL ({type(exc).__name__})"
            raise LedgerConfigurationError(msg) from None
        return Ledger(engine)
