"""Provider intents, recorded transfer reversals, transfer leases and netting.

Revision ID: 0002a
Revises: 0002
Create Date: 2026-12-02

Existing reversals are carried over: a transfer with ``reversed_amount > 0`` gets one
recorded reversal of that amount, keyed by its last ``stripe_reversal_id`` (or
``legacy:<transfer id>``), so that ``reversed_amount`` stays the sum of its reversals.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002a"
down_revision = "0002"
branch_labels = None
depends_on = None

PRESENT = "provider_object_id IS NOT NULL AND provider_object_id <> ''"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ledger_provider_intents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_object_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("error_class", sa.String(length=16), nullable=True),
        sa.Column("netted_into", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('transfer', 'reversal', 'payout')",
            name=op.f("ck_ledger_provider_intents_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('netted', 'parked', 'pending', 'succeeded', 'written_off')",
            name=op.f("ck_ledger_provider_intents_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_provider_intents_amount_positive")),
        sa.CheckConstraint(
            "length(currency) = 3", name=op.f("ck_ledger_provider_intents_currency_code")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_provider_intents")),
        sa.UniqueConstraint(
            "kind", "object_id", "seq", name=op.f("uq_ledger_provider_intents_kind_object_id_seq")
        ),
    )
    op.create_index(
        op.f("ix_ledger_provider_intents_object_id"),
        "ledger_provider_intents",
        ["object_id"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_provider_intents_seller_id_status",
        "ledger_provider_intents",
        ["seller_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_provider_intents_status_kind",
        "ledger_provider_intents",
        ["status", "kind"],
        unique=False,
    )
    op.create_index(
        "uq_ledger_provider_intents_provider_object_id",
        "ledger_provider_intents",
        ["provider_object_id"],
        unique=True,
        postgresql_where=sa.text(PRESENT),
        sqlite_where=sa.text(PRESENT),
    )
    op.create_table(
        "ledger_transfer_reversals",
        sa.Column("provider_reversal_id", sa.String(length=64), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("intent_id", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_transfer_reversals_amount_positive")),
        sa.CheckConstraint(
            "length(currency) = 3", name=op.f("ck_ledger_transfer_reversals_currency_code")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_seller_transfers.id"],
            name=op.f("fk_ledger_transfer_reversals_transfer_id_ledger_seller_transfers"),
        ),
        sa.PrimaryKeyConstraint("provider_reversal_id", name=op.f("pk_ledger_transfer_reversals")),
    )
    op.create_index(
        op.f("ix_ledger_transfer_reversals_transfer_id"),
        "ledger_transfer_reversals",
        ["transfer_id"],
        unique=False,
    )
    with op.batch_alter_table("ledger_seller_transfers") as batch:
        batch.add_column(
            sa.Column("netted_amount", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "INSERT INTO ledger_transfer_reversals "
        "(provider_reversal_id, transfer_id, intent_id, amount, currency, created_at) "
        "SELECT COALESCE(NULLIF(stripe_reversal_id, ''), 'legacy:' || id), id, NULL, "
        "reversed_amount, currency, updated_at "
        "FROM ledger_seller_transfers WHERE reversed_amount > 0"
    )


def downgrade() -> None:
    """Revert this revision (recorded reversals and intents are dropped)."""
    with op.batch_alter_table("ledger_seller_transfers") as batch:
        batch.drop_column("leased_until")
        batch.drop_column("netted_amount")
    op.drop_index(
        op.f("ix_ledger_transfer_reversals_transfer_id"), table_name="ledger_transfer_reversals"
    )
    op.drop_table("ledger_transfer_reversals")
    op.drop_index(
        "uq_ledger_provider_intents_provider_object_id", table_name="ledger_provider_intents"
    )
    op.drop_index("ix_ledger_provider_intents_status_kind", table_name="ledger_provider_intents")
    op.drop_index(
        "ix_ledger_provider_intents_seller_id_status", table_name="ledger_provider_intents"
    )
    op.drop_index(
        op.f("ix_ledger_provider_intents_object_id"), table_name="ledger_provider_intents"
    )
    op.drop_table("ledger_provider_intents")
