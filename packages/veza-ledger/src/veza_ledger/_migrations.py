"""Migrations that ship inside the package, with their own version table.

``upgrade(engine)`` brings the ledger's tables to this version's head. On PostgreSQL
concurrent starters are serialised by an advisory lock held for the whole upgrade; on
SQLite every transaction begins ``IMMEDIATE`` (see :func:`configure_engine`), which
serialises them the same way. ``check_schema(engine)`` is the start-up check: it raises
:class:`SchemaOutOfDateError` with the command to run when the database is behind (or ahead
of) the installed library, and returns every difference between the live schema and
the models (:class:`SchemaDrift`) when it is at the head.
"""

from __future__ import annotations

import threading
from importlib.resources import files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from veza_ledger import _alembic_filter
from veza_ledger._engine import configure_engine
from veza_ledger._errors import SchemaOutOfDateError
from veza_ledger._schema_check import SchemaDrift, schema_drift

VERSION_TABLE = _alembic_filter.VERSION_TABLE
ADVISORY_LOCK = 0x7665_7A61_6C65  # "vezale": one lock id for every ledger upgrade

# Alembic installs its migration context as a module-level proxy, so two threads of one
# process must not run migrations at the same time; processes are serialised by the
# database (advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
_IN_PROCESS = threading.Lock()


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("veza_ledger") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of veza-ledger ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # only a broken installation ships no revision
        msg = "veza-ledger's migrations are missing from this installation; reinstall it"
        raise SchemaOutOfDateError(msg)
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The database's revision (``None`` when the ledger's tables were never created)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _run(engine: sa.Engine, action: str, revision: str) -> None:
    configure_engine(engine)
    with _IN_PROCESS, engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK})
            connection.commit()
        try:
            getattr(command, action)(_config(connection), revision)
            connection.commit()
        finally:
            if postgres:
                connection.rollback()
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK})
                connection.commit()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the ledger's tables (serialised across concurrent starters)."""
    _run(engine, "upgrade", revision)


def downgrade(engine: sa.Engine, revision: str = "base") -> None:
    """Downgrade the ledger's tables (``base`` drops them all)."""
    _run(engine, "downgrade", revision)


def check_schema(engine: sa.Engine) -> list[SchemaDrift]:
    """Check the revision, then compare the live schema with the models.

    Returns:
        Every difference (column types, nullability, ``CHECK`` and other constraints,
        indexes, triggers) between the live ledger tables and this library's models;
        empty when the schema is exactly what the library expects. Callers that only
        need "at the head" may ignore it, as before.

    Raises:
        SchemaOutOfDateError: The database is not at this library's head revision (the
            message names the command to run).
    """
    current, head = current_revision(engine), head_revision()
    if current == head:
        return schema_drift(engine)
    url = engine.url.render_as_string(hide_password=True)
    if current is None:
        msg = (
            f"the veza-ledger tables do not exist in {url}: run "
            f"`veza-ledger db upgrade --database-url {url}`"
        )
    else:
        known = {r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions()}
        if current in known:
            msg = (
                f"the database schema is at veza-ledger revision {current}, the installed "
                f"library needs {head}: run `veza-ledger db upgrade --database-url {url}`"
            )
        else:
            msg = (
                f"the database schema is at revision {current}, unknown to this veza-ledger "
                f"(head {head}): the database is newer than the library; upgrade veza-ledger"
            )
    raise SchemaOutOfDateError(msg)


def revision_chain(revision: str) -> list[str]:
    """``revision`` and every revision below it, newest first (its way down to base)."""
    script = ScriptDirectory.from_config(_config())
    return [r.revision for r in script.iterate_revisions(revision, "base")]
