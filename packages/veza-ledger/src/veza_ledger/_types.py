"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and returns naive
    values, which this type marks as UTC again. Naive input is refused: a naive time
    in a money ledger is a bug waiting for a DST change.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: object, dialect: Dialect) -> dt.datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            msg = f"expected a timezone-aware datetime, got {value!r}"
            raise ValueError(msg)
        utc: dt.datetime = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self,
        value: dt.datetime | None,
        _dialect: Dialect,
    ) -> dt.datetime | None:
        """Return aware UTC datetimes on every backend."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Now, in UTC, aware."""
    return dt.datetime.now(dt.UTC)


BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""An auto-incrementing 64-bit key (SQLite only auto-increments ``INTEGER``)."""
