"""Disputes; subscriptions that only their own payment activates.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02

* ``ledger_disputes``: one row per PSP dispute (chargeback), with its status, the held
  amount, the chargeback fee and the refund row a loss was booked through.
* ``ledger_subscriptions``: the ``paid_to_activate`` CHECK now binds only ``active`` and
  ``past_due`` (a ``pending_payment`` subscription may be canceled or expire, as the
  state machine allows); the plan's price is kept on the row (``price_amount``,
  ``price_currency``); ``payment_order_id`` becomes unique where present (one order
  activates one subscription); on PostgreSQL a trigger refuses an ``active`` row whose
  order is not the subscriber's own, paid, of at least the price and undisputed.

Upgrading refuses (and changes nothing) when two subscriptions already share an
activating order: which one the payment belongs to is a human decision. Downgrading
drops the disputes with their table, and fails while a subscription is ``canceled`` or
``expired`` without an order (the old CHECK refuses that row): cancel nothing pending
before going back, or go forward.

The trigger DDL is a frozen copy, as a migration's must be; ``veza_ledger.
_subscription_guards`` holds the same definition for ``create_all`` and the check.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from veza_ledger._errors import LedgerError

revision = "0005"
down_revision = "0004b"
branch_labels = None
depends_on = None

PRESENT = "payment_order_id IS NOT NULL AND payment_order_id <> ''"

_FUNCTION = (
    "CREATE OR REPLACE FUNCTION ledger_subscription_activation() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ DECLARE o record; BEGIN "
    "SELECT buyer_id, status, currency, captured_amount, refunded_amount INTO o "
    "FROM ledger_orders WHERE id = NEW.payment_order_id; "
    "IF NOT FOUND THEN RAISE EXCEPTION "
    "'subscription % cannot be active without its order', NEW.id "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF o.buyer_id <> NEW.user_id THEN RAISE EXCEPTION "
    "'subscription %: order % was paid by another user', NEW.id, NEW.payment_order_id "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF o.status NOT IN ('paid', 'partially_refunded') THEN RAISE EXCEPTION "
    "'subscription %: order % is %, not paid', NEW.id, NEW.payment_order_id, o.status "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF NEW.price_currency IS NOT NULL AND o.currency <> NEW.price_currency THEN "
    "RAISE EXCEPTION 'subscription %: order % is in %, the plan in %', NEW.id, "
    "NEW.payment_order_id, o.currency, NEW.price_currency "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF o.captured_amount - o.refunded_amount < NEW.price_amount THEN RAISE EXCEPTION "
    "'subscription %: order % holds % of the plan''s price %', NEW.id, "
    "NEW.payment_order_id, o.captured_amount - o.refunded_amount, NEW.price_amount "
    "USING ERRCODE = 'check_violation'; END IF; "
    "IF EXISTS (SELECT 1 FROM ledger_disputes d WHERE d.order_id = NEW.payment_order_id "
    "AND d.status IN ('opened', 'challenged', 'lost', 'accepted', 'expired')) THEN "
    "RAISE EXCEPTION 'subscription %: order % is disputed', NEW.id, NEW.payment_order_id "
    "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$"
)
_TRIGGER = (
    "CREATE TRIGGER ledger_subscriptions_activation BEFORE INSERT OR UPDATE OF "
    "status, payment_order_id ON ledger_subscriptions FOR EACH ROW "
    "WHEN (NEW.status = 'active') EXECUTE FUNCTION ledger_subscription_activation()"
)


def _refuse_shared_orders() -> None:
    shared = op.get_bind().execute(
        sa.text(
            "SELECT payment_order_id FROM ledger_subscriptions "
            "WHERE payment_order_id IS NOT NULL AND payment_order_id <> '' "
            "GROUP BY payment_order_id HAVING count(*) > 1 ORDER BY payment_order_id"
        )
    )
    orders = [row[0] for row in shared]
    if orders:
        msg = (
            "veza-ledger 0005: these orders activate more than one subscription: "
            f"{', '.join(orders[:20])}. Decide which subscription each payment belongs to "
            "(cancel the others with force_transition) and upgrade again."
        )
        raise LedgerError(msg)


def upgrade() -> None:
    """Apply this revision."""
    _refuse_shared_orders()  # first: nothing changes when it refuses
    op.create_table(
        "ledger_disputes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("psp_dispute_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("unrefundable_amount", sa.BigInteger(), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_disputes_amount_positive")),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_ledger_disputes_currency_code")),
        sa.CheckConstraint(
            "status IN ('accepted', 'cancelled', 'challenged', 'expired', 'lost', 'opened', 'won')",
            name=op.f("ck_ledger_disputes_status"),
        ),
        sa.CheckConstraint("fee_amount >= 0", name=op.f("ck_ledger_disputes_fee_range")),
        sa.CheckConstraint(
            "unrefundable_amount >= 0 AND unrefundable_amount <= amount",
            name=op.f("ck_ledger_disputes_unrefundable"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["ledger_orders.id"],
            name=op.f("fk_ledger_disputes_order_id_ledger_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_disputes")),
        sa.UniqueConstraint("psp_dispute_id", name=op.f("uq_ledger_disputes_psp_dispute_id")),
    )
    op.create_index(
        op.f("ix_ledger_disputes_order_id"), "ledger_disputes", ["order_id"], unique=False
    )
    op.create_index(
        "ix_ledger_disputes_status_opened_at",
        "ledger_disputes",
        ["status", "opened_at"],
        unique=False,
    )

    op.drop_index(
        op.f("ix_ledger_subscriptions_payment_order_id"), table_name="ledger_subscriptions"
    )
    with op.batch_alter_table("ledger_subscriptions") as batch:
        batch.add_column(
            sa.Column("price_amount", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("price_currency", sa.String(length=3), nullable=True))
        batch.drop_constraint(op.f("ck_ledger_subscriptions_paid_to_activate"), type_="check")
        batch.create_check_constraint(
            op.f("ck_ledger_subscriptions_paid_to_activate"),
            "status NOT IN ('active', 'past_due') OR payment_order_id IS NOT NULL",
        )
        batch.create_check_constraint(
            op.f("ck_ledger_subscriptions_price_range"), "price_amount >= 0"
        )
    op.create_index(
        "uq_ledger_subscriptions_payment_order_id",
        "ledger_subscriptions",
        ["payment_order_id"],
        unique=True,
        postgresql_where=sa.text(PRESENT),
        sqlite_where=sa.text(PRESENT),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    """Revert this revision (disputes are dropped with their table)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_subscriptions_activation ON ledger_subscriptions")
        op.execute("DROP FUNCTION IF EXISTS ledger_subscription_activation()")
    op.drop_index("uq_ledger_subscriptions_payment_order_id", table_name="ledger_subscriptions")
    with op.batch_alter_table("ledger_subscriptions") as batch:
        batch.drop_constraint(op.f("ck_ledger_subscriptions_price_range"), type_="check")
        batch.drop_constraint(op.f("ck_ledger_subscriptions_paid_to_activate"), type_="check")
        batch.create_check_constraint(
            op.f("ck_ledger_subscriptions_paid_to_activate"),
            "status = 'pending_payment' OR payment_order_id IS NOT NULL",
        )
        batch.drop_column("price_currency")
        batch.drop_column("price_amount")
    op.create_index(
        op.f("ix_ledger_subscriptions_payment_order_id"),
        "ledger_subscriptions",
        ["payment_order_id"],
        unique=False,
    )
    op.drop_index("ix_ledger_disputes_status_opened_at", table_name="ledger_disputes")
    op.drop_index(op.f("ix_ledger_disputes_order_id"), table_name="ledger_disputes")
    op.drop_table("ledger_disputes")
