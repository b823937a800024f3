"""The live schema compared with the models: what a revision id cannot tell.

A database can be "at head" and still not be the schema the library was written for:
someone ran ``ALTER TABLE`` by hand, restored a dump made with other options, dropped
a trigger to "fix" a failing job. Every such difference silently removes a guarantee
(an ``INTEGER`` money column overflows, a dropped ``CHECK`` lets a negative amount in,
a dropped trigger lets the journal be rewritten), so :func:`schema_drift` reflects the
live database and names each one.

Columns, types, nullability, indexes, unique and foreign-key constraints are compared
by Alembic's autogenerate machinery (the same comparison that proves the migrations
match the models), plus whether a partial index is still partial; ``CHECK``
constraints are compared by name (their text is normalised differently by each
database); triggers are compared by name and, on PostgreSQL, a disabled trigger counts
as a difference.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from veza_ledger._alembic_filter import TABLE_PREFIX
from veza_ledger._guards import expected_triggers
from veza_ledger._schema import metadata

DRIFT_KINDS = (
    "table",
    "column",
    "type",
    "nullability",
    "constraint",
    "index",
    "foreign_key",
    "trigger",
)


@attrs.frozen
class SchemaDrift:
    """One difference between the live schema and the models.

    Attributes:
        kind: One of ``table``, ``column``, ``type``, ``nullability``, ``constraint``,
            ``index``, ``foreign_key``, ``trigger``.
        table: The table it concerns.
        name: The column, index, constraint or trigger (the table for ``table``).
        expected: What the models expect (``None`` when they expect nothing there).
        found: What the database has (``None`` when it is missing).
    """

    kind: str
    table: str
    name: str
    expected: str | None
    found: str | None

    def __str__(self) -> str:
        if self.kind == "table":
            subject = f"table {self.table}"
        elif self.kind in ("column", "type", "nullability"):
            subject = f"{self.table}.{self.name} ({self.kind})"
        else:
            subject = f"{self.table}: {self.kind} {self.name}"
        if self.found is None:
            return f"{subject} is missing: the models expect {self.expected}"
        if self.expected is None:
            return f"{subject} is not in the models: the database has {self.found}"
        return f"{subject}: the database has {self.found}, the models expect {self.expected}"

    def as_dict(self) -> dict[str, str | None]:
        """A JSON-ready view (``veza-ledger db check --json``)."""
        return attrs.asdict(self)


def _models_table(name: str) -> bool:
    """A table of the ledger's models (its version table is Alembic's business)."""
    return name.startswith(TABLE_PREFIX)


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or _models_table(name or "")


def _describe_index(index: sa.Index) -> str:
    columns = ", ".join(str(getattr(c, "name", c)) for c in index.expressions)
    return f"{'UNIQUE ' if index.unique else ''}INDEX ({columns})"


def _describe_constraint(constraint: sa.Constraint) -> str:
    columns = ", ".join(c.name for c in getattr(constraint, "columns", ()))
    if isinstance(constraint, sa.ForeignKeyConstraint):
        target = ", ".join(e.target_fullname for e in constraint.elements)
        return f"FOREIGN KEY ({columns}) REFERENCES {target}"
    return f"{type(constraint).__name__} ({columns})"


def _from_alembic(diff: tuple[Any, ...] | list[Any]) -> list[SchemaDrift]:  # untyped tuples
    if isinstance(diff, list):
        return [d for item in diff for d in _from_alembic(item)]
    op = diff[0]
    if op in ("add_table", "remove_table"):
        table = diff[1]
        there = f"table with {len(table.columns)} columns"
        return [
            SchemaDrift(
                "table",
                table.name,
                table.name,
                there if op == "add_table" else None,
                there if op == "remove_table" else None,
            )
        ]
    if op in ("add_column", "remove_column"):
        column = diff[3]
        text = f"{column.type} {'NULL' if column.nullable else 'NOT NULL'}"
        return [
            SchemaDrift(
                "column",
                diff[2],
                column.name,
                text if op == "add_column" else None,
                text if op == "remove_column" else None,
            )
        ]
    if op in ("add_index", "remove_index"):
        index = diff[1]
        text = _describe_index(index)
        return [
            SchemaDrift(
                "index",
                index.table.name,
                str(index.name),
                text if op == "add_index" else None,
                text if op == "remove_index" else None,
            )
        ]
    if op in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        text = _describe_constraint(constraint)
        added = op.startswith("add")
        return [
            SchemaDrift(
                "foreign_key" if op.endswith("fk") else "constraint",
                constraint.table.name,
                str(constraint.name),
                text if added else None,
                None if added else text,
            )
        ]
    if op == "modify_type":
        _, _, table, column, _info, found, expected = diff
        return [SchemaDrift("type", table, column, str(expected), str(found))]
    if op == "modify_nullable":
        _, _, table, column, _info, found, expected = diff
        words = {True: "NULL", False: "NOT NULL"}
        return [SchemaDrift("nullability", table, column, words[expected], words[found])]
    # modify_default, modify_comment and anything a newer Alembic reports
    table, column = (diff[2], diff[3]) if len(diff) > 3 else ("?", "?")
    return [SchemaDrift("column", str(table), str(column), str(diff[-1]), str(diff[-2]))]


def _check_constraints(connection: sa.Connection, live_tables: set[str]) -> list[SchemaDrift]:
    inspector = sa.inspect(connection)
    drifts: list[SchemaDrift] = []
    for table in metadata.sorted_tables:
        if table.name not in live_tables:
            continue  # reported as a missing table
        expected = {
            str(c.name): str(c.sqltext)
            for c in table.constraints
            if isinstance(c, sa.CheckConstraint) and c.name is not None
        }
        found = {
            str(c["name"]): str(c["sqltext"])
            for c in inspector.get_check_constraints(table.name)
            if c.get("name")
        }
        drifts.extend(
            SchemaDrift("constraint", table.name, name, f"CHECK ({text})", None)
            for name, text in sorted(expected.items())
            if name not in found
        )
        drifts.extend(
            SchemaDrift("constraint", table.name, name, None, f"CHECK ({text})")
            for name, text in sorted(found.items())
            if name not in expected
        )
    return drifts


def _partial_indexes(connection: sa.Connection, live_tables: set[str]) -> list[SchemaDrift]:
    """A partial index rebuilt as a full one (or the reverse) keeps its name and columns.

    Alembic compares neither ``WHERE`` clause, yet the difference matters: a full unique
    index on a provider id refuses the second row that has no id yet. Whether there is
    a ``WHERE`` is compared (its text is normalised differently by each database).
    """
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return []
    inspector = sa.inspect(connection)
    drifts: list[SchemaDrift] = []
    for table in metadata.sorted_tables:
        if table.name not in live_tables:
            continue
        live = {ix["name"]: ix for ix in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            found = live.get(str(index.name))
            if found is None:
                continue  # reported by the Alembic comparison
            expected_where = index.dialect_options[dialect].get("where")
            found_where = found.get("dialect_options", {}).get(f"{dialect}_where")
            if (expected_where is None) != (found_where is None):
                text = _describe_index(index)
                drifts.append(
                    SchemaDrift(
                        "index",
                        table.name,
                        str(index.name),
                        f"{text} WHERE {expected_where}" if expected_where is not None else text,
                        f"{text} WHERE {found_where}" if found_where is not None else text,
                    )
                )
    return drifts


def _live_triggers(connection: sa.Connection) -> dict[tuple[str, str], bool]:
    """``{(table, trigger): enabled}`` for the triggers on the ledger's tables."""
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            sa.text(
                "SELECT c.relname, t.tgname, t.tgenabled <> 'D' FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
            )
        )
    elif connection.dialect.name == "sqlite":
        rows = connection.execute(
            sa.text("SELECT tbl_name, name, 1 FROM sqlite_master WHERE type = 'trigger'")
        )
    else:
        return {}
    return {(t, n): bool(on) for t, n, on in rows if _models_table(t)}


def _triggers(connection: sa.Connection, live_tables: set[str]) -> list[SchemaDrift]:
    if connection.dialect.name not in ("postgresql", "sqlite"):
        return []  # no trigger guards are defined for other databases
    live = _live_triggers(connection)
    expected = {(s.table, s.name) for s in expected_triggers(metadata, connection.dialect.name)}
    drifts: list[SchemaDrift] = []
    for table, name in sorted(expected):
        if table not in live_tables:
            continue
        if (table, name) not in live:
            drifts.append(SchemaDrift("trigger", table, name, "TRIGGER", None))
        elif not live[(table, name)]:
            drifts.append(SchemaDrift("trigger", table, name, "TRIGGER", "TRIGGER (disabled)"))
    drifts.extend(
        SchemaDrift("trigger", table, name, None, "TRIGGER")
        for table, name in sorted(set(live) - expected)
    )
    return drifts


def schema_drift(engine: sa.Engine) -> list[SchemaDrift]:
    """Every difference between the live ledger schema and this library's models.

    Only the ledger's tables are looked at (the host's tables and version tables are
    none of its business). An empty list means the schema is exactly what the library
    expects; :func:`veza_ledger.check_schema` also checks the revision first.
    """
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _include_name}
        )
        drifts = [d for diff in compare_metadata(context, metadata) for d in _from_alembic(diff)]
        live_tables = {t for t in sa.inspect(connection).get_table_names() if _models_table(t)}
        drifts += _partial_indexes(connection, live_tables)
        drifts += _check_constraints(connection, live_tables)
        drifts += _triggers(connection, live_tables)
    return drifts
