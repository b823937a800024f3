"""``check_schema`` compares the live schema with the models, one test per kind of drift.

Each drift is made the way it happens in real life, by hand against a migrated
database: ``ALTER TABLE`` on PostgreSQL, the documented twelve-step table rebuild on
SQLite (which has no ``ALTER COLUMN``). Every test asserts the *exact* list of
differences, so a drift that goes unseen and a false alarm both fail.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from veza_ledger import (
    SchemaDrift,
    check_schema,
    create_engine,
    metadata,
    schema_drift,
    upgrade,
)

Mutation = Callable[[sa.Engine], None]


@pytest.fixture(scope="module")
def pg_template(postgres_url: str) -> Iterator[str]:
    """A database migrated to the head once, copied (``TEMPLATE``) for every test."""
    name = f"ledger_drift_tpl_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.make_url(postgres_url).set(database=name))
    upgrade(engine)
    engine.dispose()  # a template must have no connections
    yield name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@contextlib.contextmanager
def _pg_copy(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    template = request.getfixturevalue("pg_template")
    base = request.getfixturevalue("postgres_url")
    name = f"ledger_drift_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine = create_engine(sa.make_url(base).set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A database of its own, at the head, for one test to damage."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'drift.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    with _pg_copy(request) as engine:
        yield engine


@pytest.fixture
def pg_migrated(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A PostgreSQL database of its own, at the head (PostgreSQL-only behaviour)."""
    with _pg_copy(request) as engine:
        yield engine


def _sqlite_rebuild(engine: sa.Engine, table: str, old: str, new: str) -> None:
    """SQLite's documented way to change a table: create, copy, drop, rename, re-index."""
    path = engine.url.database
    assert path
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)  # foreign keys off, as the docs say
    try:
        ddl = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        assert old in ddl, ddl
        indexes = [
            row[0]
            for row in con.execute(
                "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                "AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            )
        ]
        rebuilt = ddl.replace(old, new).replace(f"CREATE TABLE {table}", "CREATE TABLE _rebuilt", 1)
        con.executescript(
            f"BEGIN; {rebuilt}; INSERT INTO _rebuilt SELECT * FROM {table}; DROP TABLE {table}; "
            f"ALTER TABLE _rebuilt RENAME TO {table}; {'; '.join(indexes)}; COMMIT;"
        )
    finally:
        con.close()


def _pg(*statements: str) -> Mutation:
    def mutate(engine: sa.Engine) -> None:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))

    return mutate


DRIFTS: dict[str, tuple[Mutation, Mutation, SchemaDrift]] = {
    "type": (
        _pg("ALTER TABLE ledger_orders ALTER COLUMN amount TYPE INTEGER"),
        lambda e: _sqlite_rebuild(
            e, "ledger_orders", "\tamount BIGINT NOT NULL", "\tamount INTEGER NOT NULL"
        ),
        SchemaDrift("type", "ledger_orders", "amount", "BIGINT", "INTEGER"),
    ),
    "nullability": (
        _pg("ALTER TABLE ledger_refunds ALTER COLUMN currency DROP NOT NULL"),
        lambda e: _sqlite_rebuild(
            e, "ledger_refunds", "currency VARCHAR(3) NOT NULL", "currency VARCHAR(3)"
        ),
        SchemaDrift("nullability", "ledger_refunds", "currency", "NOT NULL", "NULL"),
    ),
    "constraint": (
        _pg("ALTER TABLE ledger_orders DROP CONSTRAINT ck_ledger_orders_amount_positive"),
        lambda e: _sqlite_rebuild(
            e,
            "ledger_orders",
            "CONSTRAINT ck_ledger_orders_amount_positive CHECK (amount > 0), ",
            "",
        ),
        SchemaDrift(
            "constraint",
            "ledger_orders",
            "ck_ledger_orders_amount_positive",
            "CHECK (amount > 0)",
            None,
        ),
    ),
    "index": (
        _pg("DROP INDEX uq_ledger_refunds_hyperswitch_refund_id"),
        _pg("DROP INDEX uq_ledger_refunds_hyperswitch_refund_id"),
        SchemaDrift(
            "index",
            "ledger_refunds",
            "uq_ledger_refunds_hyperswitch_refund_id",
            "UNIQUE INDEX (hyperswitch_refund_id)",
            None,
        ),
    ),
    "partial index": (
        _pg(
            "DROP INDEX uq_ledger_refunds_hyperswitch_refund_id",
            "CREATE UNIQUE INDEX uq_ledger_refunds_hyperswitch_refund_id "
            "ON ledger_refunds (hyperswitch_refund_id)",
        ),
        _pg(
            "DROP INDEX uq_ledger_refunds_hyperswitch_refund_id",
            "CREATE UNIQUE INDEX uq_ledger_refunds_hyperswitch_refund_id "
            "ON ledger_refunds (hyperswitch_refund_id)",
        ),
        SchemaDrift(
            "index",
            "ledger_refunds",
            "uq_ledger_refunds_hyperswitch_refund_id",
            "UNIQUE INDEX (hyperswitch_refund_id) WHERE hyperswitch_refund_id IS NOT NULL "
            "AND hyperswitch_refund_id <> ''",
            "UNIQUE INDEX (hyperswitch_refund_id)",
        ),
    ),
}


def test_a_migrated_database_has_no_drift(migrated: sa.Engine) -> None:
    assert check_schema(migrated) == []


@pytest.mark.parametrize("kind", sorted(DRIFTS))
def test_each_kind_of_drift_is_named(migrated: sa.Engine, kind: str) -> None:
    on_pg, on_sqlite, expected = DRIFTS[kind]
    (on_pg if migrated.dialect.name == "postgresql" else on_sqlite)(migrated)
    assert check_schema(migrated) == [expected]
    assert expected.table in str(expected) and expected.name in str(expected)


def test_a_dropped_append_only_trigger_is_named(migrated: sa.Engine) -> None:
    """On PostgreSQL one trigger per journal table; on SQLite one per table and action."""
    if migrated.dialect.name == "postgresql":
        name = "ledger_journal_entries_append_only"
        _pg(f"DROP TRIGGER {name} ON ledger_journal_entries")(migrated)
    else:
        name = "ledger_journal_entries_no_delete"
        _pg(f"DROP TRIGGER {name}")(migrated)
    assert check_schema(migrated) == [
        SchemaDrift("trigger", "ledger_journal_entries", name, "TRIGGER", None)
    ]


def test_a_disabled_trigger_is_drift(pg_migrated: sa.Engine) -> None:
    """PostgreSQL only: SQLite cannot disable a trigger."""
    _pg("ALTER TABLE ledger_journal_entries DISABLE TRIGGER ledger_journal_entries_balanced")(
        pg_migrated
    )
    assert check_schema(pg_migrated) == [
        SchemaDrift(
            "trigger",
            "ledger_journal_entries",
            "ledger_journal_entries_balanced",
            "TRIGGER",
            "TRIGGER (disabled)",
        )
    ]


def test_every_difference_is_named_at_once(migrated: sa.Engine) -> None:
    if migrated.dialect.name == "postgresql":
        for kind in ("type", "constraint", "index"):
            DRIFTS[kind][0](migrated)
        _pg("CREATE INDEX ix_host_added ON ledger_orders (buyer_id)")(migrated)
    else:
        for kind in ("type", "index"):
            DRIFTS[kind][1](migrated)
        _pg("CREATE INDEX ix_host_added ON ledger_orders (buyer_id)")(migrated)
    drifts = check_schema(migrated)
    assert {(d.kind, d.name) for d in drifts} >= {
        ("type", "amount"),
        ("index", "uq_ledger_refunds_hyperswitch_refund_id"),
        ("index", "ix_host_added"),
    }
    assert (
        SchemaDrift("index", "ledger_orders", "ix_host_added", None, "INDEX (buyer_id)") in drifts
    )


def test_create_all_builds_the_same_schema_as_the_migrations(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The models' path (``metadata.create_all``) gets the journal's triggers too."""
    for dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            engine = create_engine(f"sqlite:///{tmp_path / 'create_all.db'}")
        else:
            base = request.getfixturevalue("postgres_url")
            name = f"ledger_create_all_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            engine = create_engine(sa.make_url(base).set(database=name))
        try:
            metadata.create_all(engine)
            metadata.create_all(engine)  # idempotent: no "trigger already exists"
            assert schema_drift(engine) == [], dialect
            metadata.drop_all(engine)  # takes the trigger functions along: 0001 can run
            upgrade(engine)
            assert check_schema(engine) == [], dialect
        finally:
            engine.dispose()
            if dialect == "postgresql":
                with admin.connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                admin.dispose()
