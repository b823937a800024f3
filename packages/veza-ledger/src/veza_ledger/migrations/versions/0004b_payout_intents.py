"""Payouts through intents: payout leases and backoff, intents for pending payouts.

Revision ID: 0004b
Revises: 0003
Create Date: 2026-12-02

``run_payout_worker`` leases a payout row while its Stripe call is under way
(``leased_until``) and backs off after a transient failure (``next_attempt_at``). Every
``pending`` payout without an intent gets its first one (id = the row id: the key the
row always had, so a call the application made already is replayed by Stripe, never
repeated).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004b"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ledger_seller_payouts") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "INSERT INTO ledger_provider_intents "
        "(id, kind, object_id, seq, seller_id, amount, currency, status, attempts, "
        "created_at, updated_at) "
        "SELECT p.id, 'payout', p.id, 1, p.seller_id, p.amount, p.currency, 'pending', 0, "
        "p.created_at, p.updated_at "
        "FROM ledger_seller_payouts p WHERE p.status = 'pending' AND NOT EXISTS "
        "(SELECT 1 FROM ledger_provider_intents i WHERE i.id = p.id)"
    )


def downgrade() -> None:
    """Revert this revision (payout intents stay: 0002a's table accepts them)."""
    with op.batch_alter_table("ledger_seller_payouts") as batch:
        batch.drop_column("leased_until")
        batch.drop_column("next_attempt_at")
