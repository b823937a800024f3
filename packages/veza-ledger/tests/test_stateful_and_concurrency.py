"""Random interleavings keep every invariant; PostgreSQL races let exactly the allowed through."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from veza_ledger import (
    MACHINES,
    EventOutcome,
    IllegalTransitionError,
    Ledger,
    LedgerError,
    PayoutExceedsBalanceError,
    ProviderEvent,
    RefundExceedsCapturedError,
    TransferExceedsShareError,
    TransitionConflictError,
    create_engine,
    seller_share,
    upgrade,
)
from veza_ledger._schema import Order, Refund, SellerPayout, SellerTransfer, Subscription

T0 = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
CURRENCIES = ["EUR", "JPY", "KWD"]


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    with engine.connect() as connection:
        for model in (Order, Refund, SellerTransfer, SellerPayout, Subscription):
            table = model.__table__
            cols = [c for c in table.c if c.name not in ("updated_at", "last_event_at")]
            out[table.name] = sorted(tuple(r) for r in connection.execute(sa.select(*cols)))
        out["journal"] = sorted(
            tuple(r)
            for r in connection.execute(
                sa.text(
                    "SELECT transaction_id, account, currency, amount FROM ledger_journal_entries"
                )
            )
        )
    return out


class LedgerMachine(RuleBasedStateMachine):
    """Payments, captures, partial refunds, transfers, reversals, payouts, events."""

    orders = Bundle("orders")
    refunds = Bundle("refunds")
    transfers = Bundle("transfers")

    engine: sa.Engine  # set by the test function

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(self.engine, clock=lambda: T0)
        self.counter = itertools.count()
        self.run = uuid.uuid4().hex[:8]  # rows of earlier examples stay; ids never collide
        self.applied: list[ProviderEvent] = []
        self.seen_statuses: dict[tuple[str, str], str] = {}

    def _next(self, prefix: str) -> str:
        return f"{prefix}{self.run}_{next(self.counter)}"

    def _try(self, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except (IllegalTransitionError, RefundExceedsCapturedError, TransitionConflictError):
            return None

    @rule(
        target=orders,
        amount=st.integers(1, 10**7),
        fee_pct=st.integers(0, 100),
        currency=st.sampled_from(CURRENCIES),
    )
    def create_order(self, amount: int, fee_pct: int, currency: str) -> str:
        oid = self._next("o")
        self.ledger.orders.create(
            order_id=oid,
            buyer_id="b",
            seller_id=f"s{amount % 3}",
            amount=amount,
            currency=currency,
            fee_amount=amount * fee_pct // 100,
            psp_payment_id=f"pay_{oid}",
        )
        return oid

    @rule(
        order=orders,
        kind=st.sampled_from(["payment_succeeded", "payment_failed", "payment_cancelled"]),
        minutes=st.integers(0, 60),
        duplicate=st.booleans(),
    )
    def payment_event(self, order: str, kind: str, minutes: int, duplicate: bool) -> None:
        event = ProviderEvent(
            self._next("evt"), kind, f"pay_{order}", T0 + dt.timedelta(minutes=minutes)
        )
        assert self.ledger.events.apply(event) != EventOutcome.DUPLICATE
        self.applied.append(event)
        if duplicate:
            assert self.ledger.events.apply(event) == EventOutcome.DUPLICATE

    @rule(target=refunds, order=orders, fraction=st.integers(1, 100), full=st.booleans())
    def create_refund(self, order: str, fraction: int, full: bool) -> str:
        row = self.ledger.orders.get(order)
        rid = self._next("r")
        amount = None if full else max(1, row.captured_amount * fraction // 100)
        made = self._try(lambda: self.ledger.refunds.create(order, amount, refund_id=rid))
        if made is None:
            return "missing"
        self.ledger.refunds.set_provider_id(rid, f"ref_{rid}")
        return rid

    @rule(refund=refunds, ok=st.booleans(), minutes=st.integers(0, 60))
    def refund_event(self, refund: str, ok: bool, minutes: int) -> None:
        if refund == "missing":
            return
        kind = "refund_succeeded" if ok else "refund_failed"
        event = ProviderEvent(
            self._next("evt"), kind, f"ref_{refund}", T0 + dt.timedelta(minutes=minutes)
        )
        self.ledger.events.apply(event)
        self.applied.append(event)

    @rule(target=transfers, order=orders)
    def create_transfer(self, order: str) -> str:
        row = self.ledger.orders.get(order)
        room = seller_share(row) - sum(
            t.amount + t.netted_amount for t in self.ledger.transfers.of_order(order)
        )
        create = functools.partial(
            self.ledger.transfers.create,
            seller_id=row.seller_id,
            destination="acct_x",
            currency=row.currency,
            order_id=order,
        )
        if room <= 0:  # unpaid, or its share already transferred: refused, nothing written
            with pytest.raises(TransferExceedsShareError):
                create(amount=max(1, seller_share(row)))
            return "missing"
        return create(amount=room).id

    @rule(transfer=transfers)
    def complete_transfer(self, transfer: str) -> None:
        if transfer != "missing":
            self._try(lambda: self.ledger.transfers.completed(transfer, f"tr_{transfer}"))

    @rule(transfer=transfers, fail=st.booleans())
    def reverse_what_is_due(self, transfer: str, fail: bool) -> None:
        if transfer == "missing":
            return
        row = self.ledger.transfers.get(transfer)
        if row.status != "reversal_pending":
            return
        if fail:
            self.ledger.transfers.reversal_failed(transfer, "stripe down")
            return
        amount = row.reversal_due - row.reversed_amount
        self.ledger.transfers.reversal_completed(
            transfer, f"trr_{transfer}_{row.reversed_amount}", amount=amount
        )

    @rule(amount=st.integers(1, 10**6), paid=st.booleans())
    def payout(self, amount: int, paid: bool) -> None:
        available = self.ledger.payouts.available("s1", "EUR")
        try:
            payout = self.ledger.payouts.create(
                seller_id="s1", stripe_account="acct_1", amount=amount, currency="EUR"
            )
        except PayoutExceedsBalanceError:
            assert amount > available
            return
        assert amount <= available
        if paid:
            self.ledger.payouts.paid(payout.id, f"po_{payout.id}")
        else:
            self.ledger.payouts.failed(payout.id, "bank")

    @rule()
    def replay_everything(self) -> None:
        before = _snapshot(self.engine)
        for event in self.applied[-10:]:
            assert self.ledger.events.apply(event) == EventOutcome.DUPLICATE
        assert _snapshot(self.engine) == before

    @invariant()
    def books_balance_per_currency(self) -> None:
        assert all(v == 0 for v in self.ledger.journal.trial_balance().values())

    @invariant()
    def refunded_never_exceeds_captured(self) -> None:
        with self.engine.connect() as connection:
            bad = connection.execute(
                sa.text(
                    "SELECT o.id FROM ledger_orders o WHERE o.refunded_amount > o.captured_amount "
                    "OR (SELECT coalesce(sum(r.amount), 0) FROM ledger_refunds r "
                    "WHERE r.order_id = o.id "
                    "AND r.status IN ('pending', 'succeeded')) > o.captured_amount"
                )
            ).all()
        assert bad == []

    @invariant()
    def every_status_change_is_in_a_table(self) -> None:
        for machine, model in (
            ("order", Order),
            ("refund", Refund),
            ("transfer", SellerTransfer),
            ("payout", SellerPayout),
        ):
            with self.engine.connect() as connection:
                rows = connection.execute(sa.select(model.id, model.status)).all()
            for object_id, status in rows:
                assert status in MACHINES[machine].states
                previous = self.seen_statuses.get((machine, object_id))
                if previous is not None and previous != status:
                    # the invariant runs after each step: one step can chain moves
                    assert _reachable(machine, previous, status), (machine, previous, status)
                self.seen_statuses[(machine, object_id)] = status

    @invariant()
    def reversals_stay_within_transfers(self) -> None:
        with self.engine.connect() as connection:
            bad = connection.execute(
                sa.text(
                    "SELECT id FROM ledger_seller_transfers WHERE reversed_amount > reversal_due "
                    "OR reversal_due > amount"
                )
            ).all()
        assert bad == []


def _reachable(machine: str, start: str, end: str) -> bool:
    table = MACHINES[machine].transitions
    seen, frontier = {start}, [start]
    while frontier:
        for nxt in table.get(frontier.pop(), frozenset()):
            if nxt == end:
                return True
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def test_stateful_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade(engine)
    LedgerMachine.engine = engine
    runner = LedgerMachine.TestCase
    runner.settings = settings(
        max_examples=40,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()
    engine.dispose()


def test_stateful_postgresql(pg_engine: sa.Engine) -> None:
    LedgerMachine.engine = pg_engine
    runner = LedgerMachine.TestCase
    runner.settings = settings(
        max_examples=15,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()


# Races, on PostgreSQL: several writers at once, only what the rules allow gets through.


def _race(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except LedgerError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_eight_threads_refunding_past_captured(pg_ledger: Ledger) -> None:
    ledger = pg_ledger
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=1000, currency="EUR")
    ledger.orders.mark_paid(order.id)
    results = _race(8, lambda i: ledger.refunds.create(order.id, 300, refund_id=f"race-{i}"))
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RefundExceedsCapturedError)]
    assert len(made) == 3 and len(refused) == 5  # 3 x 300 fit in 1000, the fourth does not
    assert sum(r.amount for r in ledger.refunds.of_order(order.id)) == 900


def test_eight_threads_applying_one_transition(pg_ledger: Ledger) -> None:
    ledger = pg_ledger
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=10
    )
    results = _race(8, lambda _i: ledger.orders.mark_paid(order.id))
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1
    assert all(
        isinstance(r, IllegalTransitionError | TransitionConflictError)
        for r in results
        if r not in ok
    )
    assert ledger.journal.trial_balance() == {"EUR": 0}
    assert ledger.journal.balance("psp_clearing", "EUR") == 1000  # captured once


def test_eight_threads_delivering_one_event(pg_ledger: Ledger) -> None:
    ledger = pg_ledger
    ledger.orders.create(
        buyer_id="b", seller_id="s", amount=100, currency="EUR", psp_payment_id="pay_r"
    )
    event = ProviderEvent("evt_race", "payment_succeeded", "pay_r", T0)
    results = _race(8, lambda _i: ledger.events.apply(event))
    assert sorted(map(str, results)) == ["applied"] + ["duplicate"] * 7
    assert ledger.journal.balance("psp_clearing", "EUR") == 100
