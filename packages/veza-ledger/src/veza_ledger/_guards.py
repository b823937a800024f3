"""The journal's guards in the database: the triggers the models cannot express.

Application code is not the only writer a ledger has: a console, a script or a careless
``TRUNCATE`` can touch the journal too. The database therefore refuses, whoever
connects:

* ``UPDATE`` and ``DELETE`` of journal rows (row triggers, PostgreSQL and SQLite);
* ``TRUNCATE`` of the journal tables (statement triggers, PostgreSQL; SQLite has no
  ``TRUNCATE`` at all and its "truncate optimisation" of ``DELETE FROM t`` is disabled
  by the row triggers, so the delete trigger covers it);
* a journal transaction whose legs do not sum to zero per currency, checked **at
  COMMIT** by a ``DEFERRABLE INITIALLY DEFERRED`` constraint trigger (PostgreSQL only:
  SQLite has no deferred triggers, the library's own check is all there is).

The same definitions serve three readers: the ``after_create`` hooks of the models
(``metadata.create_all``), :func:`veza_ledger.check_schema` (which triggers must exist)
and the tests. Migrations keep their own frozen copy of the DDL, as migrations must.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs
import sqlalchemy as sa

APPEND_ONLY_MESSAGE = "the ledger journal is append-only: post a correcting transaction instead"
JOURNAL_TABLES = ("ledger_journal_transactions", "ledger_journal_entries")
_GUARDS_KEY = "veza_ledger_triggers"
_FUNCTIONS_KEY = "veza_ledger_trigger_functions_dropped"


@attrs.frozen
class TriggerSpec:
    """One trigger the ledger's schema must have.

    Attributes:
        name: The trigger's name (unique per table on PostgreSQL, per schema on SQLite).
        table: The table it is defined on.
        dialect: ``postgresql`` or ``sqlite``.
        create: The statements that create it (functions first, ``OR REPLACE``).
        drop: The statements that drop it.
    """

    name: str
    table: str
    dialect: str
    create: tuple[str, ...]
    drop: tuple[str, ...] = ()


_PG_APPEND_ONLY_FUNCTION = (
    "CREATE OR REPLACE FUNCTION ledger_journal_append_only() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
)
_PG_NO_TRUNCATE_FUNCTION = (
    "CREATE OR REPLACE FUNCTION ledger_journal_no_truncate() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
    "'the ledger journal is append-only: TRUNCATE of % is refused', TG_TABLE_NAME "
    "USING ERRCODE = 'restrict_violation'; END $$"
)
_PG_BALANCED_FUNCTION = (
    "CREATE OR REPLACE FUNCTION ledger_journal_balanced() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ DECLARE unbalanced record; BEGIN "
    "SELECT currency, sum(amount) AS total INTO unbalanced FROM ledger_journal_entries "
    "WHERE transaction_id = NEW.transaction_id GROUP BY currency "
    "HAVING sum(amount) <> 0 ORDER BY currency LIMIT 1; "
    "IF FOUND THEN RAISE EXCEPTION "
    "'ledger journal transaction % is unbalanced: its % legs sum to %', "
    "NEW.transaction_id, unbalanced.currency, unbalanced.total "
    "USING ERRCODE = 'check_violation'; END IF; RETURN NULL; END $$"
)


def _postgresql_guards() -> tuple[TriggerSpec, ...]:
    specs: list[TriggerSpec] = []
    for table in JOURNAL_TABLES:
        specs.append(
            TriggerSpec(
                f"{table}_append_only",
                table,
                "postgresql",
                (
                    _PG_APPEND_ONLY_FUNCTION,
                    (
                        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION ledger_journal_append_only()"
                    ),
                ),
                (f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",),
            )
        )
        specs.append(
            TriggerSpec(
                f"{table}_no_truncate",
                table,
                "postgresql",
                (
                    _PG_NO_TRUNCATE_FUNCTION,
                    (
                        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_journal_no_truncate()"
                    ),
                ),
                (f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",),
            )
        )
    specs.append(
        TriggerSpec(
            "ledger_journal_entries_balanced",
            "ledger_journal_entries",
            "postgresql",
            (
                _PG_BALANCED_FUNCTION,
                (
                    "CREATE CONSTRAINT TRIGGER ledger_journal_entries_balanced "
                    "AFTER INSERT ON ledger_journal_entries DEFERRABLE INITIALLY DEFERRED "
                    "FOR EACH ROW EXECUTE FUNCTION ledger_journal_balanced()"
                ),
            ),
            ("DROP TRIGGER IF EXISTS ledger_journal_entries_balanced ON ledger_journal_entries",),
        )
    )
    return tuple(specs)


def _sqlite_guards() -> tuple[TriggerSpec, ...]:
    return tuple(
        TriggerSpec(
            f"{table}_no_{action.lower()}",
            table,
            "sqlite",
            (
                (
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} "
                    f"ON {table} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                ),
            ),
            (f"DROP TRIGGER IF EXISTS {table}_no_{action.lower()}",),
        )
        for table in JOURNAL_TABLES
        for action in ("UPDATE", "DELETE")
    )


JOURNAL_GUARDS: tuple[TriggerSpec, ...] = (*_postgresql_guards(), *_sqlite_guards())
"""Every journal trigger, for both dialects."""

PG_FUNCTIONS = (
    "ledger_journal_append_only",
    "ledger_journal_no_truncate",
    "ledger_journal_balanced",
)


def attach_triggers(metadata: sa.MetaData, specs: Iterable[TriggerSpec]) -> None:
    """Create ``specs`` whenever ``metadata.create_all`` creates their tables.

    The hooks are per table (``after_create`` fires only for a table that was really
    created, so a second ``create_all`` does not fail on an existing trigger) and per
    dialect. The specs are also recorded in ``metadata.info`` so that the schema check
    knows which triggers to expect.
    """
    recorded: list[TriggerSpec] = metadata.info.setdefault(_GUARDS_KEY, [])
    for spec in specs:
        recorded.append(spec)
        sa.event.listen(metadata.tables[spec.table], "after_create", _creator(spec))
    if not metadata.info.get(_FUNCTIONS_KEY):
        metadata.info[_FUNCTIONS_KEY] = True
        sa.event.listen(metadata, "after_drop", _drop_unused_functions)


def _drop_unused_functions(
    _metadata: sa.MetaData, connection: sa.Connection, **_kw: object
) -> None:
    """After ``drop_all``: drop the trigger functions no trigger uses any more.

    Tables take their triggers with them, not the functions; a function left behind
    would make migration 0001's ``CREATE FUNCTION`` fail on the same database later.
    """
    if connection.dialect.name != "postgresql":
        return
    for function in PG_FUNCTIONS:
        used = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE p.proname = :name"
            ),
            {"name": function},
        ).scalar()
        if not used:
            connection.execute(sa.text(f"DROP FUNCTION IF EXISTS {function}()"))


def _creator(spec: TriggerSpec) -> Callable[..., None]:
    def create(_table: sa.Table, connection: sa.Connection, **_kw: object) -> None:
        if connection.dialect.name == spec.dialect:
            for statement in spec.create:
                connection.execute(sa.text(statement))  # text() escapes the '%'

    return create


def expected_triggers(metadata: sa.MetaData, dialect: str) -> tuple[TriggerSpec, ...]:
    """The triggers ``metadata``'s tables must have on ``dialect``."""
    recorded: list[TriggerSpec] = metadata.info.get(_GUARDS_KEY, [])
    return tuple(spec for spec in recorded if spec.dialect == dialect)
