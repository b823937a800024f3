"""Filters for a host application's Alembic ``env.py`` (see ``docs/ledger/migrations.md``).

Example::

    from veza_ledger.migrations_filter import include_name, include_object

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        include_object=include_object,
    )
"""

from veza_ledger._alembic_filter import include_name, include_object, is_ledger_table

__all__ = ["include_name", "include_object", "is_ledger_table"]
