"""Reconciliation: durable findings, per-rule check marks, indexes for keyset claims.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ledger_findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("proposed_action", sa.String(length=64), nullable=True),
        sa.Column("applied_action", sa.String(length=64), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suppressed_reason", sa.String(length=500), nullable=True),
        sa.Column("suppressed_by", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_ledger_findings_severity")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'suppressed')", name=op.f("ck_ledger_findings_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_findings")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_ledger_findings_fingerprint")),
    )
    op.create_index(
        "ix_ledger_findings_status_rule", "ledger_findings", ["status", "rule"], unique=False
    )
    op.create_table(
        "ledger_rule_checks",
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule", "object_id", name=op.f("pk_ledger_rule_checks")),
    )
    op.create_index("ix_ledger_orders_status_id", "ledger_orders", ["status", "id"], unique=False)
    op.create_index("ix_ledger_refunds_status_id", "ledger_refunds", ["status", "id"], unique=False)
    op.create_index(
        "ix_ledger_seller_transfers_status_id",
        "ledger_seller_transfers",
        ["status", "id"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_subscriptions_status", "ledger_subscriptions", ["status"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_ledger_subscriptions_status", table_name="ledger_subscriptions")
    op.drop_index("ix_ledger_seller_transfers_status_id", table_name="ledger_seller_transfers")
    op.drop_index("ix_ledger_refunds_status_id", table_name="ledger_refunds")
    op.drop_index("ix_ledger_orders_status_id", table_name="ledger_orders")
    op.drop_table("ledger_rule_checks")
    op.drop_index("ix_ledger_findings_status_rule", table_name="ledger_findings")
    op.drop_table("ledger_findings")
