"""SQLAlchemy helpers (``veza-storage[sqlalchemy]``): track columns and a SQL session store.

``StorageColumnsMixin`` adds to a mapped track table what the SPEC asks for:
``storage_backend`` VARCHAR(16) NOT NULL DEFAULT 'local' with a CHECK in (local, s3),
``storage_key`` VARCHAR(512) NULL, and a partial index on ``storage_backend = 's3'``
(declared for PostgreSQL and SQLite both) so "how far is the migration" is an index scan.

``SQLUploadSessionStore`` keeps upload sessions in a table with compare-and-set on a
version column: several app instances share uploads through the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from veza_storage._sessions import UploadSession

STORAGE_BACKENDS = ("local", "s3")


class StorageColumnsMixin:
    """Mix into a declarative model to get ``storage_backend`` and ``storage_key``."""

    storage_backend: Mapped[str] = mapped_column(
        String(16), nullable=False, default="local", server_default="local"
    )
    storage_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    __tablename__: str  # the model's own; names the constraints below

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        table = cls.__tablename__
        condition = text("storage_backend = 's3'")
        return (
            CheckConstraint(
                "storage_backend IN ('local', 's3')", name=f"ck_{table}_storage_backend"
            ),
            Index(
                f"ix_{table}_storage_backend_s3",
                "storage_backend",
                postgresql_where=condition,
                sqlite_where=condition,
            ),
        )


def upload_sessions_table(metadata: MetaData, name: str = "veza_upload_sessions") -> Table:
    """The table ``SQLUploadSessionStore`` uses, in your ``MetaData`` (for migrations)."""
    return Table(
        name,
        metadata,
        Column("id", String(64), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("state", String(16), nullable=False),
        Column("expires_at", Float, nullable=False, index=True),
        Column("data", Text, nullable=False),
    )


class SQLUploadSessionStore:
    """Upload sessions in a SQL table, compare-and-set on ``version``.

    Args:
        engine: A SQLAlchemy engine (PostgreSQL or SQLite tested).
        table: The table (``upload_sessions_table``); created by :meth:`create_table`
            or by your migrations.
    """

    def __init__(self, engine: Engine, table: Table | None = None) -> None:
        self._engine = engine
        self._table = table if table is not None else upload_sessions_table(MetaData())

    def create_table(self) -> None:
        """Create the table if it does not exist (for apps without migrations)."""
        self._table.create(self._engine, checkfirst=True)

    def create(self, session: UploadSession) -> None:
        """Insert a new session."""
        with self._engine.begin() as connection:
            connection.execute(
                insert(self._table).values(
                    id=session.id,
                    version=session.version,
                    state=session.state,
                    expires_at=session.expires_at,
                    data=session.to_json(),
                )
            )

    def get(self, session_id: str) -> UploadSession | None:
        """The session, or ``None``."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(self._table.c.data).where(self._table.c.id == session_id)
            ).first()
        return UploadSession.from_json(row[0]) if row else None

    def replace(self, session: UploadSession, *, expected_version: int) -> bool:
        """``UPDATE … WHERE id = :id AND version = :expected``; true when one row changed."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(self._table)
                .where(self._table.c.id == session.id, self._table.c.version == expected_version)
                .values(
                    version=session.version,
                    state=session.state,
                    expires_at=session.expires_at,
                    data=session.to_json(),
                )
            )
        return result.rowcount == 1

    def delete(self, session_id: str) -> None:
        """Forget the session."""
        with self._engine.begin() as connection:
            connection.execute(delete(self._table).where(self._table.c.id == session_id))

    def expired(self, now: float) -> list[UploadSession]:
        """Sessions past their expiry."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(self._table.c.data).where(self._table.c.expires_at < now)
            ).all()
        return [UploadSession.from_json(row[0]) for row in rows]
