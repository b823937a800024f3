"""Late captures and provider amounts: where a closed order's capture came from.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Nullable columns only (``ADD COLUMN`` on both PostgreSQL and SQLite, no table rebuild):

* ``ledger_orders.late_capture_from`` / ``late_capture_at`` / ``late_capture_decision``:
  a capture that landed on a ``failed``, ``cancelled`` or ``expired`` order is booked,
  and these say from which closed status, when, and what the operator decided
  (``fulfil`` or ``refund``).
* ``ledger_refunds.requested_amount``: what veza asked the PSP to refund, kept when the
  PSP refunded another amount (``amount`` then holds what the PSP refunded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("ledger_orders", sa.Column("late_capture_from", sa.String(32), nullable=True))
    op.add_column(
        "ledger_orders", sa.Column("late_capture_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("ledger_orders", sa.Column("late_capture_decision", sa.String(16), nullable=True))
    op.add_column("ledger_refunds", sa.Column("requested_amount", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ledger_refunds") as batch:
        batch.drop_column("requested_amount")
    with op.batch_alter_table("ledger_orders") as batch:
        batch.drop_column("late_capture_decision")
        batch.drop_column("late_capture_at")
        batch.drop_column("late_capture_from")
