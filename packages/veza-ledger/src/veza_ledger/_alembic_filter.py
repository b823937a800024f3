"""Keep the ledger's objects out of a host application's Alembic autogenerate.

The ledger ships its own migrations and version table. A host application that runs
``alembic revision --autogenerate`` against the same database sees the ledger's tables
in the database but not in its own models, and proposes to drop them all, the journal
included. Passing these filters to the host's ``context.configure`` makes its
autogenerate propose nothing for the ledger's tables, their indexes and constraints,
and the ledger's version table.

The ledger owns every table whose name starts with ``ledger_`` (its models say so),
including tables a newer ledger revision adds that this version of the library does
not know: a host running an older library must not propose to drop them either.
"""

from __future__ import annotations

from collections.abc import Mapping

VERSION_TABLE = "veza_ledger_alembic_version"
TABLE_PREFIX = "ledger_"


def is_ledger_table(name: str) -> bool:
    """Whether the table ``name`` belongs to veza-ledger (its tables or version table)."""
    return name.startswith(TABLE_PREFIX) or name == VERSION_TABLE


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """Alembic's ``include_name`` hook: ``False`` for the ledger's reflected objects.

    Args:
        name: The object's name in the database.
        type_: ``schema``, ``table``, ``column``, ``index``, ``unique_constraint`` or
            ``foreign_key_constraint``.
        parent_names: Alembic's names of the enclosing schema and table.
    """
    if type_ == "table":
        return not is_ledger_table(name or "")
    table = parent_names.get("table_name")
    return table is None or not is_ledger_table(table)


def include_object(
    obj: object,  # any schema item
    name: str | None,
    type_: str,
    _reflected: bool,  # Alembic passes the hook's five arguments by position
    _compare_to: object,
) -> bool:
    """Alembic's ``include_object`` hook: ``False`` for every ledger table and its parts.

    ``include_name`` already keeps reflected ledger tables out; this hook also covers
    objects that reach the comparison another way (a host's ``MetaData`` that imports
    the ledger's models, for instance).
    """
    if type_ == "table":
        return not is_ledger_table(name or "")
    table = getattr(obj, "table", None)
    table_name = getattr(table, "name", None)
    return not (isinstance(table_name, str) and is_ledger_table(table_name))
