"""veza_ledger.strategies: orders the ledger accepts, refund plans it can book, balanced legs."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings, strategies as st

from veza_ledger import Ledger, Leg, create_engine, upgrade
from veza_ledger.strategies import captures, legs, orders, refund_plans


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=orders(), data=st.data())
def test_drawn_orders_are_accepted_and_refund_plans_fit(tmp_path, spec, data):
    engine = create_engine(f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db")
    upgrade(engine)
    ledger = Ledger(engine)
    order = ledger.orders.create(**spec)
    assert (order.amount, order.fee_amount) == (spec["amount"], spec["fee_amount"])
    captured = data.draw(captures(order.amount))
    plan = data.draw(refund_plans(captured))
    assert len(plan) >= 1 and all(part >= 1 for part in plan)
    assert sum(plan) <= captured
    engine.dispose()


@given(posting=legs())
def test_legs_balance_per_currency(posting):
    assert sum(leg.amount for leg in posting) == 0
    assert len({leg.currency for leg in posting}) == 1


def test_leg_resolves_through_the_entry_point_hook():
    @given(st.from_type(Leg))
    def check(leg):
        assert leg.amount > 0

    check()
