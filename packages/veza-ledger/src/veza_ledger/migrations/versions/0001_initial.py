"""Initial ledger schema: orders, refunds, transfers, payouts, subscriptions, journal, logs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The journal is append-only in the database too: triggers refuse UPDATE and DELETE on
its tables (corrections are new transactions).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ledger_journal_transactions",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_journal_transactions")),
    )
    op.create_table(
        "ledger_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("psp_payment_id", sa.String(length=64), nullable=True),
        sa.Column("captured_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("fee_refunded", sa.BigInteger(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('cancelled', 'expired', 'failed', 'paid', 'partially_refunded', 'pending_payment', 'refunded')",
            name=op.f("ck_ledger_orders_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_orders_amount_positive")),
        sa.CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= amount",
            name=op.f("ck_ledger_orders_captured"),
        ),
        sa.CheckConstraint(
            "fee_amount >= 0 AND fee_amount <= amount", name=op.f("ck_ledger_orders_fee_range")
        ),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_ledger_orders_currency_code")),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount",
            name=op.f("ck_ledger_orders_refunded"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_orders")),
    )
    op.create_index(
        op.f("ix_ledger_orders_seller_id"), "ledger_orders", ["seller_id"], unique=False
    )
    op.create_index(
        "ix_ledger_orders_status_updated_at",
        "ledger_orders",
        ["status", "updated_at"],
        unique=False,
    )
    op.create_index(
        "uq_ledger_orders_psp_payment_id",
        "ledger_orders",
        ["psp_payment_id"],
        unique=True,
        postgresql_where=sa.text("psp_payment_id IS NOT NULL AND psp_payment_id <> ''"),
        sqlite_where=sa.text("psp_payment_id IS NOT NULL AND psp_payment_id <> ''"),
    )
    op.create_table(
        "ledger_overrides",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("machine", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_overrides")),
    )
    op.create_index(
        op.f("ix_ledger_overrides_object_id"), "ledger_overrides", ["object_id"], unique=False
    )
    op.create_table(
        "ledger_processed_events",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_ledger_processed_events")),
    )
    op.create_table(
        "ledger_seller_payouts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("stripe_account", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("external_payout_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('canceled', 'failed', 'in_transit', 'paid', 'pending')",
            name=op.f("ck_ledger_seller_payouts_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_seller_payouts_amount_positive")),
        sa.CheckConstraint(
            "length(currency) = 3", name=op.f("ck_ledger_seller_payouts_currency_code")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_seller_payouts")),
    )
    op.create_index(
        op.f("ix_ledger_seller_payouts_seller_id"),
        "ledger_seller_payouts",
        ["seller_id"],
        unique=False,
    )
    op.create_index(
        "uq_ledger_seller_payouts_external_payout_id",
        "ledger_seller_payouts",
        ["external_payout_id"],
        unique=True,
        postgresql_where=sa.text("external_payout_id IS NOT NULL AND external_payout_id <> ''"),
        sqlite_where=sa.text("external_payout_id IS NOT NULL AND external_payout_id <> ''"),
    )
    op.create_table(
        "ledger_webhook_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("signature_valid", sa.Boolean(), nullable=False),
        sa.Column("processing_result", sa.String(length=1024), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=128), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_webhook_log")),
    )
    op.create_index(
        op.f("ix_ledger_webhook_log_event_id"), "ledger_webhook_log", ["event_id"], unique=False
    )
    op.create_index(
        "ix_ledger_webhook_log_invalid_signature",
        "ledger_webhook_log",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("signature_valid = false"),
        sqlite_where=sa.text("signature_valid = 0"),
    )
    op.create_index(
        op.f("ix_ledger_webhook_log_received_at"),
        "ledger_webhook_log",
        ["received_at"],
        unique=False,
    )
    op.create_table(
        "ledger_journal_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transaction_id", sa.String(length=160), nullable=False),
        sa.Column("account", sa.String(length=160), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_journal_entries_amount_nonzero")),
        sa.CheckConstraint(
            "length(currency) = 3", name=op.f("ck_ledger_journal_entries_currency_code")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_journal_transactions.id"],
            name=op.f("fk_ledger_journal_entries_transaction_id_ledger_journal_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_journal_entries")),
    )
    op.create_index(
        "ix_ledger_journal_entries_account_currency",
        "ledger_journal_entries",
        ["account", "currency"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_journal_entries_transaction_id"),
        "ledger_journal_entries",
        ["transaction_id"],
        unique=False,
    )
    op.create_table(
        "ledger_refunds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("hyperswitch_refund_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('failed', 'pending', 'succeeded')", name=op.f("ck_ledger_refunds_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_refunds_amount_positive")),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_ledger_refunds_currency_code")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["ledger_orders.id"],
            name=op.f("fk_ledger_refunds_order_id_ledger_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_refunds")),
    )
    op.create_index(
        op.f("ix_ledger_refunds_order_id"), "ledger_refunds", ["order_id"], unique=False
    )
    op.create_index(
        "ix_ledger_refunds_status_updated_at",
        "ledger_refunds",
        ["status", "updated_at"],
        unique=False,
    )
    op.create_index(
        "uq_ledger_refunds_hyperswitch_refund_id",
        "ledger_refunds",
        ["hyperswitch_refund_id"],
        unique=True,
        postgresql_where=sa.text(
            "hyperswitch_refund_id IS NOT NULL AND hyperswitch_refund_id <> ''"
        ),
        sqlite_where=sa.text("hyperswitch_refund_id IS NOT NULL AND hyperswitch_refund_id <> ''"),
    )
    op.create_table(
        "ledger_seller_transfers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("stripe_transfer_id", sa.String(length=64), nullable=True),
        sa.Column("stripe_reversal_id", sa.String(length=64), nullable=True),
        sa.Column("reversal_due", sa.BigInteger(), nullable=False),
        sa.Column("reversed_amount", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('completed', 'failed', 'partially_reversed', 'pending', 'reversal_pending', 'reversed')",
            name=op.f("ck_ledger_seller_transfers_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_seller_transfers_amount_positive")),
        sa.CheckConstraint(
            "length(currency) = 3", name=op.f("ck_ledger_seller_transfers_currency_code")
        ),
        sa.CheckConstraint(
            "reversal_due >= 0 AND reversal_due <= amount",
            name=op.f("ck_ledger_seller_transfers_due_range"),
        ),
        sa.CheckConstraint(
            "reversed_amount >= 0 AND reversed_amount <= amount",
            name=op.f("ck_ledger_seller_transfers_reversed_range"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["ledger_orders.id"],
            name=op.f("fk_ledger_seller_transfers_order_id_ledger_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_seller_transfers")),
    )
    op.create_index(
        op.f("ix_ledger_seller_transfers_order_id"),
        "ledger_seller_transfers",
        ["order_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_seller_transfers_seller_id"),
        "ledger_seller_transfers",
        ["seller_id"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_seller_transfers_status_next_attempt_at",
        "ledger_seller_transfers",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "uq_ledger_seller_transfers_stripe_reversal_id",
        "ledger_seller_transfers",
        ["stripe_reversal_id"],
        unique=True,
        postgresql_where=sa.text("stripe_reversal_id IS NOT NULL AND stripe_reversal_id <> ''"),
        sqlite_where=sa.text("stripe_reversal_id IS NOT NULL AND stripe_reversal_id <> ''"),
    )
    op.create_index(
        "uq_ledger_seller_transfers_stripe_transfer_id",
        "ledger_seller_transfers",
        ["stripe_transfer_id"],
        unique=True,
        postgresql_where=sa.text("stripe_transfer_id IS NOT NULL AND stripe_transfer_id <> ''"),
        sqlite_where=sa.text("stripe_transfer_id IS NOT NULL AND stripe_transfer_id <> ''"),
    )
    op.create_table(
        "ledger_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payment_order_id", sa.String(length=64), nullable=True),
        sa.Column("pending_order_id", sa.String(length=64), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status = 'pending_payment' OR payment_order_id IS NOT NULL",
            name=op.f("ck_ledger_subscriptions_paid_to_activate"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'canceled', 'expired', 'past_due', 'pending_payment')",
            name=op.f("ck_ledger_subscriptions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_order_id"],
            ["ledger_orders.id"],
            name=op.f("fk_ledger_subscriptions_payment_order_id_ledger_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_order_id"],
            ["ledger_orders.id"],
            name=op.f("fk_ledger_subscriptions_pending_order_id_ledger_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_subscriptions")),
    )
    op.create_index(
        op.f("ix_ledger_subscriptions_payment_order_id"),
        "ledger_subscriptions",
        ["payment_order_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_subscriptions_pending_order_id"),
        "ledger_subscriptions",
        ["pending_order_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_subscriptions_user_id"), "ledger_subscriptions", ["user_id"], unique=False
    )

    _append_only_journal()


def downgrade() -> None:
    """Revert this revision."""
    _drop_append_only_journal()
    op.drop_index(op.f("ix_ledger_subscriptions_user_id"), table_name="ledger_subscriptions")
    op.drop_index(
        op.f("ix_ledger_subscriptions_pending_order_id"), table_name="ledger_subscriptions"
    )
    op.drop_index(
        op.f("ix_ledger_subscriptions_payment_order_id"), table_name="ledger_subscriptions"
    )
    op.drop_table("ledger_subscriptions")
    op.drop_index(
        "uq_ledger_seller_transfers_stripe_transfer_id",
        table_name="ledger_seller_transfers",
        postgresql_where=sa.text("stripe_transfer_id IS NOT NULL AND stripe_transfer_id <> ''"),
        sqlite_where=sa.text("stripe_transfer_id IS NOT NULL AND stripe_transfer_id <> ''"),
    )
    op.drop_index(
        "uq_ledger_seller_transfers_stripe_reversal_id",
        table_name="ledger_seller_transfers",
        postgresql_where=sa.text("stripe_reversal_id IS NOT NULL AND stripe_reversal_id <> ''"),
        sqlite_where=sa.text("stripe_reversal_id IS NOT NULL AND stripe_reversal_id <> ''"),
    )
    op.drop_index(
        "ix_ledger_seller_transfers_status_next_attempt_at", table_name="ledger_seller_transfers"
    )
    op.drop_index(
        op.f("ix_ledger_seller_transfers_seller_id"), table_name="ledger_seller_transfers"
    )
    op.drop_index(op.f("ix_ledger_seller_transfers_order_id"), table_name="ledger_seller_transfers")
    op.drop_table("ledger_seller_transfers")
    op.drop_index(
        "uq_ledger_refunds_hyperswitch_refund_id",
        table_name="ledger_refunds",
        postgresql_where=sa.text(
            "hyperswitch_refund_id IS NOT NULL AND hyperswitch_refund_id <> ''"
        ),
        sqlite_where=sa.text("hyperswitch_refund_id IS NOT NULL AND hyperswitch_refund_id <> ''"),
    )
    op.drop_index("ix_ledger_refunds_status_updated_at", table_name="ledger_refunds")
    op.drop_index(op.f("ix_ledger_refunds_order_id"), table_name="ledger_refunds")
    op.drop_table("ledger_refunds")
    op.drop_index(
        op.f("ix_ledger_journal_entries_transaction_id"), table_name="ledger_journal_entries"
    )
    op.drop_index("ix_ledger_journal_entries_account_currency", table_name="ledger_journal_entries")
    op.drop_table("ledger_journal_entries")
    op.drop_index(op.f("ix_ledger_webhook_log_received_at"), table_name="ledger_webhook_log")
    op.drop_index(
        "ix_ledger_webhook_log_invalid_signature",
        table_name="ledger_webhook_log",
        postgresql_where=sa.text("signature_valid = false"),
        sqlite_where=sa.text("signature_valid = 0"),
    )
    op.drop_index(op.f("ix_ledger_webhook_log_event_id"), table_name="ledger_webhook_log")
    op.drop_table("ledger_webhook_log")
    op.drop_index(
        "uq_ledger_seller_payouts_external_payout_id",
        table_name="ledger_seller_payouts",
        postgresql_where=sa.text("external_payout_id IS NOT NULL AND external_payout_id <> ''"),
        sqlite_where=sa.text("external_payout_id IS NOT NULL AND external_payout_id <> ''"),
    )
    op.drop_index(op.f("ix_ledger_seller_payouts_seller_id"), table_name="ledger_seller_payouts")
    op.drop_table("ledger_seller_payouts")
    op.drop_table("ledger_processed_events")
    op.drop_index(op.f("ix_ledger_overrides_object_id"), table_name="ledger_overrides")
    op.drop_table("ledger_overrides")
    op.drop_index(
        "uq_ledger_orders_psp_payment_id",
        table_name="ledger_orders",
        postgresql_where=sa.text("psp_payment_id IS NOT NULL AND psp_payment_id <> ''"),
        sqlite_where=sa.text("psp_payment_id IS NOT NULL AND psp_payment_id <> ''"),
    )
    op.drop_index("ix_ledger_orders_status_updated_at", table_name="ledger_orders")
    op.drop_index(op.f("ix_ledger_orders_seller_id"), table_name="ledger_orders")
    op.drop_table("ledger_orders")
    op.drop_table("ledger_journal_transactions")


JOURNAL_TABLES = ("ledger_journal_transactions", "ledger_journal_entries")


def _append_only_journal() -> None:
    """Refuse UPDATE and DELETE on the journal, whoever connects."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the ledger journal is append-only: post a correcting "
            "transaction instead'; END $$"
        )
        for table in JOURNAL_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_journal_append_only()"
            )
    elif dialect == "sqlite":
        for table in JOURNAL_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the ledger journal is append-only: post a "
                    "correcting transaction instead'); END"
                )


def _drop_append_only_journal() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in JOURNAL_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_journal_append_only()")
    elif dialect == "sqlite":
        for table in JOURNAL_TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
