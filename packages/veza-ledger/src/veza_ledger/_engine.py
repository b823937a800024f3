"""Engines the ledger can rely on: SQLite made to lock like a database should.

On PostgreSQL nothing is changed. On SQLite, pysqlite's default transaction handling
starts transactions lazily and never for reads, so a check-then-write (is the refund
within the captured amount?) could interleave with another writer. The documented
SQLAlchemy recipe fixes that: the driver is put in autocommit mode and every
transaction starts with ``BEGIN IMMEDIATE``, taking SQLite's write lock up front.
Writers are serialised (SQLite has one writer anyway); ``busy_timeout`` makes them
wait instead of failing; foreign keys are enforced; file databases use WAL so readers
do not wait for the writer.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection

_MARK = "_veza_ledger_configured"


def configure_engine(engine: sa.Engine, *, busy_timeout_ms: int = 30_000) -> sa.Engine:
    """Prepare ``engine`` for the ledger (idempotent; a no-op except on SQLite).

    This adds event listeners to the engine you pass (and nothing global). Call it
    before the engine opens its first connection, or use :func:`create_engine`.
    """
    if engine.dialect.name != "sqlite" or getattr(engine, _MARK, False):
        return engine
    on_disk = engine.url.database not in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: DBAPIConnection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if on_disk:  # readers do not wait for the writer
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    setattr(engine, _MARK, True)
    return engine


def create_engine(url: str | sa.URL, **kwargs: object) -> sa.Engine:
    """``sqlalchemy.create_engine`` plus :func:`configure_engine`."""
    return configure_engine(sa.create_engine(url, **kwargs))


def is_postgresql(bind: sa.Engine | sa.Connection) -> bool:
    """Whether ``bind`` talks to PostgreSQL."""
    return bind.dialect.name == "postgresql"
