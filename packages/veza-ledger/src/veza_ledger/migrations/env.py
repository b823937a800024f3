"""Alembic environment of veza-ledger's own migrations (run through veza_ledger's API).

The connection comes from ``config.attributes["connection"]``; the version table is
``veza_ledger_alembic_version`` so the host application's own Alembic history is never
touched.
"""

from __future__ import annotations

from alembic import context

from veza_ledger._migrations import VERSION_TABLE
from veza_ledger._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    # SQLite runs DDL in transactions too: one transaction (BEGIN IMMEDIATE, the write
    # lock) for the whole upgrade, so concurrent starters are serialised for all of it,
    # not migration by migration (Alembic commits after each one when this is False).
    transactional_ddl=True,
    compare_type=True,
    include_name=lambda name, type_, _parent: (
        type_ != "table" or (name or "").startswith("ledger_")
    ),
)
with context.begin_transaction():
    context.run_migrations()
