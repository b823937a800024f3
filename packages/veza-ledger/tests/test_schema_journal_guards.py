"""The journal's guards in the database (migration 0003): TRUNCATE, balance at COMMIT.

PostgreSQL only, and said so: SQLite has no ``TRUNCATE`` (emptying a table is a
``DELETE``, refused by the append-only trigger, see the last test) and no deferred
triggers, so a transaction's balance is checked there by the library alone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import Ledger, create_engine, credit as credit_leg, debit, upgrade

T0 = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def _rogue_transaction(
    connection: sa.Connection, txid: str, *amounts: int, currencies: tuple[str, ...] = ()
) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO ledger_journal_transactions (id, kind, content_hash, created_at) "
            "VALUES (:id, 'manual', 'x', :t)"
        ),
        {"id": txid, "t": T0},
    )
    for n, amount in enumerate(amounts):
        connection.execute(
            sa.text(
                "INSERT INTO ledger_journal_entries (transaction_id, account, currency, amount) "
                "VALUES (:id, :account, :currency, :amount)"
            ),
            {
                "id": txid,
                "account": f"acct{n}",
                "currency": currencies[n] if currencies else "EUR",
                "amount": amount,
            },
        )


@pytest.mark.parametrize("table", ["ledger_journal_entries", "ledger_journal_transactions CASCADE"])
def test_truncate_of_the_journal_is_refused(
    pg_ledger: Ledger, pg_only: sa.Engine, table: str
) -> None:
    """PostgreSQL only: a statement trigger, since TRUNCATE fires no row trigger."""
    order = pg_ledger.orders.create(buyer_id="b", seller_id="s", amount=500, currency="EUR")
    pg_ledger.orders.mark_paid(order.id)
    with (
        pytest.raises(sa.exc.DBAPIError, match="append-only: TRUNCATE of ledger_journal"),
        pg_only.begin() as connection,
    ):
        connection.execute(sa.text(f"TRUNCATE {table}"))
    assert pg_ledger.journal.trial_balance() == {"EUR": 0}
    with pg_only.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM ledger_journal_entries")).scalar()


def test_an_unbalancing_leg_fails_at_commit(pg_ledger: Ledger, pg_only: sa.Engine) -> None:
    """PostgreSQL only: the constraint trigger is deferred, so it fires at COMMIT."""
    order = pg_ledger.orders.create(buyer_id="b", seller_id="s", amount=500, currency="EUR")
    pg_ledger.orders.mark_paid(order.id)
    before = pg_ledger.journal.trial_balance()
    (txid,) = _transaction_ids(pg_only)
    connection = pg_only.connect()
    try:
        connection.execute(
            sa.text(
                "INSERT INTO ledger_journal_entries (transaction_id, account, currency, amount) "
                "VALUES (:id, 'cash', 'EUR', 1)"
            ),
            {"id": txid},
        )  # accepted now: the check is deferred to the end of the transaction
        with pytest.raises(sa.exc.IntegrityError, match=f"{txid} is unbalanced: its EUR legs"):
            connection.commit()
    finally:
        connection.close()
    assert pg_ledger.journal.trial_balance() == before == {"EUR": 0}


def test_a_hand_written_transaction_must_balance_too(pg_only: sa.Engine) -> None:
    """PostgreSQL only. Legs that balance only once all are in are fine (deferred)."""
    with pg_only.begin() as connection:
        _rogue_transaction(connection, "by-hand-ok", 250, -100, -150)
    with (
        pytest.raises(sa.exc.IntegrityError, match="by-hand-bad is unbalanced"),
        pg_only.begin() as connection,
    ):
        _rogue_transaction(connection, "by-hand-bad", 250, -100)
    with pg_only.connect() as connection:
        ids = connection.execute(sa.text("SELECT id FROM ledger_journal_transactions")).scalars()
        assert sorted(ids) == ["by-hand-ok"]


@st.composite
def hand_written_legs(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Legs in one or two currencies; about half of the draws are made to balance."""
    amount = st.integers(-(10**12), 10**12).filter(bool)
    legs = draw(
        st.lists(st.tuples(st.sampled_from(["EUR", "USD"]), amount), min_size=1, max_size=5)
    )
    if draw(st.booleans()):
        totals: Counter[str] = Counter()
        for currency, value in legs:
            totals[currency] += value
        legs += [(currency, -total) for currency, total in sorted(totals.items()) if total]
    return draw(st.permutations(legs))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(legs=hand_written_legs())
def test_commit_succeeds_exactly_when_every_currency_balances(
    pg_only: sa.Engine, legs: list[tuple[str, int]]
) -> None:
    """PostgreSQL only: the deferred trigger is the money rule, whatever the leg order."""
    totals: Counter[str] = Counter()
    for currency, value in legs:
        totals[currency] += value
    balanced = not any(totals.values())
    txid = f"prop-{uuid.uuid4().hex}"

    def write() -> None:
        with pg_only.begin() as connection:
            _rogue_transaction(
                connection,
                txid,
                *(value for _, value in legs),
                currencies=tuple(currency for currency, _ in legs),
            )

    if balanced:
        write()
    else:
        with pytest.raises(sa.exc.IntegrityError, match=f"{txid} is unbalanced"):
            write()
    with pg_only.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT count(*) FROM ledger_journal_entries WHERE transaction_id = :id"),
            {"id": txid},
        ).scalar()
    assert rows == (len(legs) if balanced else 0)


def test_the_ledger_still_posts_every_kind_of_transaction(pg_ledger: Ledger) -> None:
    """PostgreSQL only: the library's balanced, multi-currency posts pass the trigger."""
    order = pg_ledger.orders.create(buyer_id="b", seller_id="s", amount=1000, currency="EUR")
    pg_ledger.orders.mark_paid(order.id)
    refund = pg_ledger.refunds.create(order.id, amount=400)
    pg_ledger.refunds.succeeded(refund.id)
    pg_ledger.journal.post_correction(
        "fx-1",
        [
            debit("fx:usd", "USD", 110),
            credit_leg("cash:usd", "USD", 110),
            debit("cash:eur", "EUR", 100),
            credit_leg("fx:eur", "EUR", 100),
        ],
        description="multi-currency",
    )
    assert set(pg_ledger.journal.trial_balance().values()) == {0}


def test_sqlite_refuses_emptying_the_journal(tmp_path: Path) -> None:
    """SQLite has no TRUNCATE: ``DELETE FROM`` without WHERE is refused by 0001's trigger."""
    engine = create_engine(f"sqlite:///{tmp_path / 'guards.db'}")
    upgrade(engine)
    ledger = Ledger(engine)
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=10, currency="EUR")
    ledger.orders.mark_paid(order.id)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM ledger_journal_entries"))
    assert ledger.journal.trial_balance() == {"EUR": 0}
    engine.dispose()


def _transaction_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.text("SELECT id FROM ledger_journal_transactions")).scalars()
        )
