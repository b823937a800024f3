"""What the services return are frozen snapshots of committed rows (issue 18).

A returned row is detached from its session: a write to it would change nothing in the
database while the object disagreed with the books. The invariant, in access terms: no
write through a returned object reaches the database or the object, and the services
are the only way to change a row.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import Ledger
from veza_ledger.errors import FrozenRowError, LedgerError
from veza_ledger.models import Order, Refund


def _order(ledger: Ledger, order_id: str = "o-1") -> Order:
    return ledger.orders.create(
        order_id=order_id, buyer_id="buyer", seller_id="seller", amount=1000, currency="EUR"
    )


def _status_in_db(ledger: Ledger, model: type[Order | Refund], row_id: str) -> str:
    with ledger.engine.connect() as connection:
        status = connection.execute(
            sa.select(model.__table__.c.status).where(model.__table__.c.id == row_id)
        ).scalar_one()
    assert isinstance(status, str)
    return status


def test_a_returned_row_refuses_writes_and_the_database_keeps_its_state(ledger: Ledger) -> None:
    order = _order(ledger)
    with pytest.raises(FrozenRowError, match=r"Order\.status: rows the ledger returns"):
        order.status = "paid"
    with pytest.raises(AttributeError):  # code that knows nothing of veza still catches it
        order.amount = 1
    with pytest.raises(FrozenRowError):
        del order.seller_id
    assert isinstance(FrozenRowError("x"), LedgerError)
    assert (order.status, order.amount, order.seller_id) == ("pending_payment", 1000, "seller")
    assert _status_in_db(ledger, Order, order.id) == "pending_payment"
    assert ledger.orders.get(order.id).status == "pending_payment"


def test_every_service_result_is_frozen_and_a_snapshot_of_its_commit(ledger: Ledger) -> None:
    created = _order(ledger)
    paid = ledger.orders.mark_paid(created.id)
    refund = ledger.refunds.create(paid.id, 300, refund_id="rf-1")
    settled = ledger.refunds.succeeded(refund.id)
    rows = [
        created,
        paid,
        refund,
        settled,
        ledger.orders.get(created.id),
        *ledger.refunds.of_order(created.id),
    ]
    for row in rows:
        with pytest.raises(FrozenRowError):
            row.status = "failed"
    # each snapshot keeps the state its own transaction committed
    assert (created.status, paid.status, ledger.orders.get(created.id).status) == (
        "pending_payment",
        "paid",
        "partially_refunded",
    )
    assert (refund.status, settled.status) == ("pending", "succeeded")
    assert _status_in_db(ledger, Refund, refund.id) == "succeeded"


def test_rows_are_writable_inside_the_transaction_and_frozen_after_it(ledger: Ledger) -> None:
    order = _order(ledger)
    with ledger.transaction() as session:
        row = session.get(Order, order.id)
        assert row is not None
        row.psp_payment_id = "pay_inside"  # a step's own write
    assert ledger.orders.get(order.id).psp_payment_id == "pay_inside"
    with pytest.raises(FrozenRowError):
        row.psp_payment_id = "pay_after"


def test_a_failed_transaction_freezes_nothing_it_rolled_back(ledger: Ledger) -> None:
    order = _order(ledger)
    loaded: list[Order] = []

    def fail_inside() -> None:
        with ledger.transaction() as session:
            row = session.get(Order, order.id)
            assert row is not None
            row.psp_payment_id = "pay_rolled_back"
            loaded.append(row)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    (row,) = loaded
    row.psp_payment_id = "pay_local"  # never committed, so never frozen: a plain object
    assert ledger.orders.get(order.id).psp_payment_id is None


_COLUMNS = [c.key for c in Order.__mapper__.column_attrs]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(_COLUMNS), value=st.one_of(st.none(), st.integers(), st.text()))
def test_no_write_to_any_column_of_a_returned_row_takes(
    ledger: Ledger, name: str, value: object
) -> None:
    order = ledger.orders.get("o-h") if _exists(ledger, "o-h") else _order(ledger, "o-h")
    before = {column: getattr(order, column) for column in _COLUMNS}
    with pytest.raises(FrozenRowError):
        setattr(order, name, value)
    assert {column: getattr(order, column) for column in _COLUMNS} == before
    again = ledger.orders.get("o-h")
    assert {column: getattr(again, column) for column in _COLUMNS} == before


def _exists(ledger: Ledger, order_id: str) -> bool:
    with ledger.engine.connect() as connection:
        found = connection.execute(
            sa.select(sa.func.count()).where(Order.__table__.c.id == order_id)
        ).scalar_one()
    return bool(found)
