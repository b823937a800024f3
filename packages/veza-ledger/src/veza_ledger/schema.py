"""The ledger's schema in your database: migrations shipped in the package, and drift checks."""

from veza_ledger._migrations import (
    VERSION_TABLE,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from veza_ledger._schema_check import SchemaDrift, schema_drift

__all__ = [
    "VERSION_TABLE",
    "SchemaDrift",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "schema_drift",
    "upgrade",
]
