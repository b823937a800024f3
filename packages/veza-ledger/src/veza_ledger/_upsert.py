"""``INSERT … ON CONFLICT DO NOTHING`` for PostgreSQL and SQLite, partial indexes included.

When the conflict target is a partial unique index, the statement must repeat the
index's predicate (``index_where``), or PostgreSQL refuses it ("there is no unique or
exclusion constraint matching the ON CONFLICT specification").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from veza_ledger._schema import Base


def insert_ignore(
    session: Session | sa.Connection,
    table: type[Base],  # the mapped class
    values: Mapping[str, Any],
    *,
    index_elements: Sequence[str],
    index_where: sa.ColumnElement[bool] | None = None,
) -> bool:
    """Insert one row unless it conflicts on ``index_elements``; whether it was inserted."""
    dialect = (
        session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    )
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).values(**values)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(**values)
    else:  # pragma: no cover - the ledger supports PostgreSQL and SQLite
        msg = f"unsupported database {dialect!r}"
        raise NotImplementedError(msg)
    statement = statement.on_conflict_do_nothing(
        index_elements=list(index_elements), index_where=index_where
    ).returning(sa.literal_column("1"))
    # RETURNING, not rowcount: drivers report -1 for some INSERT ... ON CONFLICT forms.
    return session.execute(statement).first() is not None
