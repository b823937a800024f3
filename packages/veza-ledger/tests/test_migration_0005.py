"""Migration 0005 (disputes, subscriptions) over existing data, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from veza_ledger import (
    Ledger,
    LedgerError,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    schema_drift,
    upgrade,
)

BEFORE = "0004b"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A database of its own, at revision 0004b (before this migration)."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        upgrade(engine, BEFORE)
        yield engine
        engine.dispose()
        return
    base = request.getfixturevalue("postgres_url")
    name = f"ledger_0005_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.make_url(base).set(database=name))
    upgrade(engine, BEFORE)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(engine: sa.Engine, *, shared: bool) -> None:
    """What the old schema allowed: an order activating two subscriptions."""
    now = "2026-11-26 12:00:00+00:00"
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO ledger_orders (id, buyer_id, seller_id, amount, currency, "
                "fee_amount, status, captured_amount, refunded_amount, fee_refunded, "
                "created_at, updated_at) VALUES ('o1', 'u1', 'p', 990, 'EUR', 990, 'paid', "
                f"990, 0, 0, '{now}', '{now}')"
            )
        )
        for sid, order in (("s1", "o1"), ("s2", "o1" if shared else None)):
            c.execute(
                sa.text(
                    "INSERT INTO ledger_subscriptions (id, user_id, plan, status, "
                    "payment_order_id, created_at, updated_at) VALUES (:i, 'u1', 'creator', "
                    f":s, :o, '{now}', '{now}')"
                ),
                {"i": sid, "s": "active" if order else "pending_payment", "o": order},
            )


def test_0005_refuses_an_order_shared_by_two_subscriptions(fresh: sa.Engine) -> None:
    _seed(fresh, shared=True)
    with pytest.raises(LedgerError, match="o1"):
        upgrade(fresh)
    assert current_revision(fresh) == BEFORE  # nothing changed


def test_0005_keeps_the_rows_and_frees_pending_subscriptions(fresh: sa.Engine) -> None:
    _seed(fresh, shared=False)
    upgrade(fresh)
    assert current_revision(fresh) == head_revision()
    assert schema_drift(fresh) == []
    ledger = Ledger(fresh)
    assert ledger.subscriptions.get("s1").status == "active"
    assert ledger.subscriptions.get("s1").price_amount == 0  # no price was ever recorded
    assert ledger.subscriptions.cancel("s2").status == "canceled"  # refused before 0005


def test_0005_downgrades_and_upgrades_again(fresh: sa.Engine) -> None:
    _seed(fresh, shared=False)
    upgrade(fresh)
    downgrade(fresh, BEFORE)
    assert current_revision(fresh) == BEFORE
    assert "ledger_disputes" not in sa.inspect(fresh).get_table_names()
    upgrade(fresh)
    assert schema_drift(fresh) == []
