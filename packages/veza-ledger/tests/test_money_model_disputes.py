"""The stateful money model, extended with disputes and subscriptions (issue 15).

:class:`MoneyModel` (``test_money_model.py``, loaded by path: the tests are not a
package) drives orders, transfers, refunds, the workers, crashes and the sweep; this
subclass adds disputes opened on any paid order and closed any way Hyperswitch can
close them (with chargeback fees), and subscriptions: subscribe, pay (with the right
order, another user's or too small an one), refund and dispute the paying order. After
every step, besides the base model's per-seller money invariants (which must survive
lost disputes, whose seller share is clawed back through reversal intents):

* no ``active`` subscription without its own paid, unrefunded, undisputed order of at
  least its price, used by no other subscription;
* ``psp_disputed`` holds exactly the amounts of the disputes still open;
* the journal balances.

``VEZA_LEDGER_MODEL_EXAMPLES`` raises the example count, as for the base model.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, invariant, multiple, rule

from veza_ledger import (
    DisputeAccounts,
    IllegalTransitionError,
    Ledger,
    LedgerError,
    create_engine,
    upgrade,
)
from veza_ledger._disputes import HELD
from veza_ledger._schema import Dispute, Order, Subscription
from veza_ledger._subscription_guards import DISPUTED_STATUSES


def _load_base() -> Any:
    name = "veza_ledger_money_model_base"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).with_name("test_money_model.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


base = _load_base()
EXAMPLES: int = base.EXAMPLES
PRICE = 990


class DisputesAndSubscriptionsModel(base.MoneyModel):  # type: ignore[misc,name-defined]
    disputes = Bundle("disputes")
    subscriptions = Bundle("subscriptions")
    sub_orders = Bundle("sub_orders")
    ledger: Ledger  # set by the base model

    def __init__(self) -> None:
        super().__init__()
        self.ledger.subscriptions.plan_prices = {"creator": (PRICE, "EUR")}
        self.users = [f"u{self.run}{i}" for i in range(2)]
        self.platform = f"p{self.run}"

    # ------------------------------------------------------------------ disputes

    @rule(target=disputes, order=base.MoneyModel.orders, fraction=st.integers(1, 100))
    def open_dispute(self, order: str, fraction: int) -> str:
        row = self.ledger.orders.get(order)
        psp_id = str(self._next("dp_"))
        amount = max(1, row.captured_amount * fraction // 100)
        return self.ledger.disputes.open(order, psp_id, amount=amount).id

    @rule(
        dispute=disputes,
        status=st.sampled_from(["challenged", "won", "cancelled", "lost", "accepted", "expired"]),
        fee=st.sampled_from([0, 0, 1500]),
    )
    def close_dispute(self, dispute: str, status: str, fee: int) -> None:
        try:
            self.ledger.disputes.update(dispute, status, chargeback_fee=fee)
        except IllegalTransitionError:
            assert self.ledger.disputes.get(dispute).status not in ("opened",)

    # ------------------------------------------------------------------ subscriptions

    @rule(target=sub_orders, user=st.integers(0, 1), amount=st.sampled_from([1, PRICE, 1200]))
    def order_for_a_plan(self, user: int, amount: int) -> str:
        return self._plan_order(user, amount)

    def _plan_order(self, user: int, amount: int) -> str:
        oid = str(self._next("so"))
        self.ledger.orders.create(
            order_id=oid,
            buyer_id=self.users[user],
            seller_id=self.platform,
            amount=amount,
            currency="EUR",
            fee_amount=amount,
            psp_payment_id=f"pay_{oid}",
        )
        return oid

    @rule(target=sub_orders, user=st.integers(0, 1), extra=st.sampled_from([0, 0, 500]))
    def subscribe_and_pay(self, user: int, extra: int) -> str:
        """The common path, in one step so that refunds and disputes often meet it."""
        oid = self._plan_order(user, PRICE + extra)
        sid = self._subscribe(user, oid)
        self.ledger.orders.mark_paid(oid)
        assert self.ledger.subscriptions.get(sid).status == "active"
        return oid

    @rule(target=subscriptions, user=st.integers(0, 1), order=st.none() | sub_orders)
    def subscribe(self, user: int, order: str | None) -> str:
        return self._subscribe(user, order)

    def _subscribe(self, user: int, order: str | None) -> str:
        sid = str(self._next("sub"))
        try:
            self.ledger.subscriptions.create(
                user_id=self.users[user], plan="creator", order_id=order, subscription_id=sid
            )
        except LedgerError:  # a paid order that does not fit: refused, nothing created
            return sid
        return sid

    @rule(order=sub_orders)
    def pay(self, order: str) -> None:
        if self.ledger.orders.get(order).status == "pending_payment":
            self.ledger.orders.mark_paid(order)  # booked even when it activates nothing

    @rule(subscription=subscriptions, order=sub_orders)
    def activate_with_any_order(self, subscription: str, order: str) -> None:
        try:
            self.ledger.subscriptions.activate(subscription, order_id=order)
        except LedgerError:
            return

    @rule(order=sub_orders, fraction=st.integers(1, 100))
    def refund_plan_order(self, order: str, fraction: int) -> None:
        if self.ledger.orders.get(order).status in ("paid", "partially_refunded"):
            self._refund(order, fraction)

    @rule(target=disputes, order=sub_orders)
    def dispute_plan_order(self, order: str) -> Any:
        row = self.ledger.orders.get(order)
        if row.captured_amount == 0:
            return multiple()
        return self.ledger.disputes.open(order, self._next("dp_"), amount=row.captured_amount).id

    @rule(subscription=subscriptions, end=st.sampled_from(["cancel", "expire"]))
    def end_subscription(self, subscription: str, end: str) -> None:
        try:
            if end == "cancel":
                self.ledger.subscriptions.cancel(subscription)
            else:
                self.ledger.subscriptions.expire(subscription)
        except LedgerError:
            return

    # ------------------------------------------------------------------ invariants

    @invariant()
    def no_active_subscription_without_its_own_payment(self) -> None:
        with self.engine.connect() as c:
            subs = c.execute(
                sa.select(Subscription).where(Subscription.user_id.in_(self.users))
            ).all()
            for sub in subs:
                if sub.status != "active":
                    continue
                order = c.execute(sa.select(Order).where(Order.id == sub.payment_order_id)).one()
                disputed = c.execute(
                    sa.select(sa.func.count()).where(
                        Dispute.order_id == order.id, Dispute.status.in_(DISPUTED_STATUSES)
                    )
                ).scalar()
                sharing = c.execute(
                    sa.select(sa.func.count()).where(Subscription.payment_order_id == order.id)
                ).scalar()
                assert order.buyer_id == sub.user_id, sub.id
                assert order.status in ("paid", "partially_refunded"), sub.id
                assert order.captured_amount - order.refunded_amount >= PRICE, sub.id
                assert disputed == 0, sub.id
                assert sharing == 1, sub.id

    @invariant()
    def held_funds_are_the_open_disputes(self) -> None:
        with self.engine.connect() as c:
            open_amounts = c.execute(
                sa.select(sa.func.coalesce(sa.func.sum(Dispute.amount), 0)).where(
                    Dispute.status.in_(HELD)
                )
            ).scalar()
        assert self.ledger.journal.balance(DisputeAccounts.PSP_DISPUTED, "EUR") == open_amounts
        assert all(v == 0 for v in self.ledger.journal.trial_balance().values())


def _run(engine: sa.Engine, examples: int, steps: int) -> None:
    DisputesAndSubscriptionsModel.engine = engine
    runner = DisputesAndSubscriptionsModel.TestCase
    runner.settings = settings(
        max_examples=EXAMPLES or examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    runner().runTest()


def test_disputes_and_subscriptions_model_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'model.db'}")
    upgrade(engine)
    _run(engine, examples=10, steps=30)
    engine.dispose()


def test_disputes_and_subscriptions_model_postgresql(pg_only: sa.Engine) -> None:
    """PostgreSQL: the activation trigger and the unique index are live under the model."""
    _run(pg_only, examples=10, steps=30)


@pytest.fixture(autouse=True)
def _quiet_workers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="veza_ledger.workers")
