"""Journal guards: TRUNCATE refused, every transaction balanced at COMMIT (PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

PostgreSQL only. A statement trigger refuses ``TRUNCATE`` on both journal tables (row
triggers never fire for it). A ``DEFERRABLE INITIALLY DEFERRED`` constraint trigger
checks, when the transaction commits, that the legs of every journal transaction that
received a leg sum to zero per currency: a leg inserted by hand cannot unbalance the
books. SQLite has no ``TRUNCATE`` (its ``DELETE`` trigger from 0001 covers emptying a
table) and no deferred triggers, so this revision changes nothing there.

The DDL is a frozen copy, as a migration's must be; ``veza_ledger._guards`` holds the
same definitions for ``metadata.create_all`` and the schema check.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002a"
branch_labels = None
depends_on = None

JOURNAL_TABLES = ("ledger_journal_transactions", "ledger_journal_entries")


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION ledger_journal_no_truncate() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
        "'the ledger journal is append-only: TRUNCATE of % is refused', TG_TABLE_NAME "
        "USING ERRCODE = 'restrict_violation'; END $$"
    )
    for table in JOURNAL_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_journal_no_truncate()"
        )
    op.execute(
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
    op.execute(
        "CREATE CONSTRAINT TRIGGER ledger_journal_entries_balanced "
        "AFTER INSERT ON ledger_journal_entries DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION ledger_journal_balanced()"
    )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS ledger_journal_entries_balanced ON ledger_journal_entries")
    op.execute("DROP FUNCTION IF EXISTS ledger_journal_balanced()")
    for table in JOURNAL_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS ledger_journal_no_truncate()")
