"""The stateful money model: workers, refunds mid-call, crashes, failures and the sweep.

Hypothesis drives orders, transfers, refunds (some landing *inside* a provider call),
the transfer and reversal workers (some runs crash after the provider answered, some
calls fail transiently or for good), operator actions on parked intents and the
sweep, against an in-memory provider with Stripe's idempotency and balances. After
every step, per transfer and per seller:

* what the provider reversed = the recorded reversals (plus, only for an intent whose
  outcome is still unknown after a crash, that intent's object) <= the refunded seller
  share allocated to the transfer;
* the seller's payable balance in the journal = what the rows say;
* every provider object belongs to exactly one ledger record (one intent, one row);
* every capture the PSP made (late ones included: on a failed, cancelled or expired
  order, with an amount that may differ from the order's) that the ledger has observed
  (a webhook, or a sweep since) is booked in the journal or an open finding, and a
  booked amount is never more than the PSP captured, nor less unless a finding says so.

``VEZA_LEDGER_MODEL_EXAMPLES`` raises the example count (>= 500 for a long run on
PostgreSQL: ``VEZA_LEDGER_MODEL_EXAMPLES=500 pytest tests/test_money_model.py -k postgresql``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from veza_ledger import (
    Accounts,
    IllegalTransitionError,
    Ledger,
    LedgerError,
    PaymentState,
    ProviderEvent,
    RefundExceedsCapturedError,
    TransitionConflictError,
    allocate_reversals,
    create_engine,
    fee_captured,
    run_reversal_worker,
    run_sweep,
    run_transfer_worker,
    upgrade,
)
from veza_ledger._schema import (
    Finding,
    JournalTransaction,
    Order,
    ProviderIntent,
    SellerTransfer,
    SellerTransferReversal,
)

T0 = dt.datetime.now(dt.UTC)
EXAMPLES = int(os.environ.get("VEZA_LEDGER_MODEL_EXAMPLES", "0"))


class Crash(BaseException):
    """The worker process dies after the provider answered."""


class RefusedError(Exception):
    """A 4xx from the provider."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.status = 400
        self.code = code


class UnavailableError(Exception):
    """A 503 (transient)."""

    status = 503


@attrs.frozen
class Obj:
    id: str
    amount: int = 0


class Provider:
    """Stripe as far as money goes: idempotent keys, balances, reversal limits."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.keys: dict[str, tuple[tuple[Any, ...], Obj | Exception]] = {}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.reversals: dict[str, dict[str, Any]] = {}  # id -> transfer, amount, key
        self.balance: dict[str, int] = {}
        self.ids = itertools.count()
        self.crash_next = False
        self.fail_next: Exception | None = None
        self.inside: Callable[[], None] | None = None

    def _idempotent(self, key: str, params: tuple[Any, ...], make: Callable[[], Obj]) -> Obj:
        if self.inside is not None:  # something lands while the call is at the provider
            inside, self.inside = self.inside, None
            inside()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if key in self.keys:
            first, result = self.keys[key]
            if first != params:
                raise RefusedError("idempotency_error")
            if isinstance(result, Exception):
                raise result
        else:
            try:
                result = make()
            except RefusedError as exc:
                self.keys[key] = (params, exc)
                raise
            self.keys[key] = (params, result)
        if self.crash_next:
            self.crash_next = False
            raise Crash
        return result

    def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
    ) -> Obj:
        def make() -> Obj:
            tid = f"tr_{self.prefix}_{next(self.ids)}"
            self.transfers[tid] = {
                "amount": amount,
                "reversed": 0,
                "dest": destination,
                "key": idempotency_key,
            }
            self.balance[destination] = self.balance.get(destination, 0) + amount
            return Obj(tid, amount)

        return self._idempotent(
            f"transfer:{idempotency_key}", (amount, currency, destination), make
        )

    def reverse_transfer(
        self, idempotency_key: str, transfer_id: str, *, amount: int | None = None
    ) -> Obj:
        def make() -> Obj:
            stored = self.transfers[transfer_id]
            value = amount if amount is not None else stored["amount"] - stored["reversed"]
            if value > stored["amount"] - stored["reversed"]:
                raise RefusedError("amount_too_large")
            if self.balance.get(stored["dest"], 0) < value:
                raise RefusedError("balance_insufficient")
            stored["reversed"] += value
            self.balance[stored["dest"]] -= value
            rid = f"trr_{self.prefix}_{next(self.ids)}"
            self.reversals[rid] = {"transfer": transfer_id, "amount": value, "key": idempotency_key}
            return Obj(rid, value)

        return self._idempotent(f"reversal:{idempotency_key}", (transfer_id, amount), make)


class PaymentsView:
    """The PSP's payments as the sweep reads them (a ``ProviderView``)."""

    def __init__(self) -> None:
        self.payments: dict[str, PaymentState] = {}

    def payment(self, psp_payment_id: str) -> PaymentState | None:
        return self.payments.get(psp_payment_id)

    def payment_for_order(self, order_id: str) -> PaymentState | None:
        return self.payments.get(f"p_{order_id}")

    def refund(self, provider_refund_id: str) -> None:
        return None

    def refund_for_row(self, refund_row_id: str) -> None:
        return None

    def find_transfer(
        self, transfer_row_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> None:
        return None


class MoneyModel(RuleBasedStateMachine):
    orders = Bundle("orders")
    engine: sa.Engine  # set by the test function

    def __init__(self) -> None:
        super().__init__()
        self.run = uuid.uuid4().hex[:8]
        self.counter = itertools.count()
        self.at = T0 + dt.timedelta(days=1)
        self.ledger = Ledger(self.engine, clock=lambda: self.at)
        self.provider = Provider(self.run)
        self.sellers = [f"s{self.run}{i}" for i in range(2)]
        self.crashed: set[str] = set()  # intents whose outcome is unknown after a crash
        self.view = PaymentsView()
        self.captures: dict[str, int] = {}  # order id -> what the PSP captured (late ones)
        self.observed: set[str] = set()  # captures the ledger was told of, or swept since
        with self.engine.begin() as connection:  # earlier examples' rows: out of reach
            connection.execute(
                sa.update(SellerTransfer).values(leased_until=T0 + dt.timedelta(days=3650))
            )

    def _next(self, prefix: str) -> str:
        return f"{prefix}{self.run}_{next(self.counter)}"

    def _tick(self) -> dt.datetime:
        self.at += dt.timedelta(minutes=10)  # past leases and the first backoffs
        return self.at

    @rule(
        target=orders,
        amount=st.integers(2, 5000),
        fee_pct=st.integers(0, 50),
        seller=st.integers(0, 1),
        parts=st.integers(1, 3),
    )
    def paid_order_with_transfers(self, amount: int, fee_pct: int, seller: int, parts: int) -> str:
        sid = self.sellers[seller]
        oid = self._next("o")
        fee = amount * fee_pct // 100
        self.ledger.orders.create(
            order_id=oid, buyer_id="b", seller_id=sid, amount=amount, currency="EUR", fee_amount=fee
        )
        self.ledger.orders.mark_paid(oid)
        share = amount - fee
        if share <= 0:
            return oid
        cut = [share // parts] * parts
        cut[-1] += share - sum(cut)
        for part in cut:
            if part > 0:
                self.ledger.transfers.create(
                    seller_id=sid,
                    destination=f"acct_{sid}",
                    amount=part,
                    currency="EUR",
                    order_id=oid,
                )
        return oid

    def _refund(self, order: str, fraction: int) -> None:
        row = self.ledger.orders.get(order)
        left = row.captured_amount - row.refunded_amount
        if left <= 0:
            return
        amount = max(1, left * fraction // 100)
        try:
            refund = self.ledger.refunds.create(order, amount)
            self.ledger.refunds.succeeded(refund.id)
        except (RefundExceedsCapturedError, IllegalTransitionError, TransitionConflictError):
            return

    @rule(order=orders, fraction=st.integers(1, 100))
    def refund(self, order: str, fraction: int) -> None:
        self._refund(order, fraction)

    @rule(order=orders, fraction=st.integers(1, 100), reversal=st.booleans(), crash=st.booleans())
    def refund_lands_inside_a_call(
        self, order: str, fraction: int, reversal: bool, crash: bool
    ) -> None:
        self.provider.inside = lambda: self._refund(order, fraction)
        self.provider.crash_next = crash
        self._work(reversal)
        self.provider.inside = None
        self.provider.crash_next = False  # no call was made: the crash does not carry over

    def _work(self, reversal: bool) -> None:
        at = self._tick()
        try:
            if reversal:
                run_reversal_worker(self.ledger, self.provider, now=at, max_attempts=4)
            else:
                run_transfer_worker(self.ledger, self.provider, now=at, max_attempts=4)
        except Crash:
            self.provider.crash_next = False
            with self.engine.connect() as connection:
                for key in connection.execute(
                    sa.select(ProviderIntent.id).where(ProviderIntent.status == "pending")
                ).scalars():
                    self.crashed.add(key)

    @rule(
        reversal=st.booleans(),
        crash=st.booleans(),
        fail=st.sampled_from([None, "transient", "permanent"]),
    )
    def worker_run(self, reversal: bool, crash: bool, fail: str | None) -> None:
        self.provider.crash_next = crash
        if fail == "transient":
            self.provider.fail_next = UnavailableError("503")
        elif fail == "permanent":
            self.provider.fail_next = RefusedError("account_invalid")
        self._work(reversal)
        self.provider.fail_next = None
        self.provider.crash_next = False

    @rule(seller=st.integers(0, 1), amount=st.integers(1, 3000))
    def seller_paid_out(self, seller: int, amount: int) -> None:
        dest = f"acct_{self.sellers[seller]}"
        self.provider.balance[dest] = max(0, self.provider.balance.get(dest, 0) - amount)

    @rule(action=st.sampled_from(["retry", "write_off", "net"]))
    def operator_acts_on_a_parked_intent(self, action: str) -> None:
        parked = [
            i
            for i in self.ledger.provider_intents.find(status="parked")
            if i.seller_id in self.sellers and (action == "retry" or i.id not in self.crashed)
        ]  # an operator writes off or nets only what Stripe shows was never made (runbook)
        if not parked:
            return
        intent = parked[0]
        try:
            if action == "retry":
                self.ledger.provider_intents.retry(intent.id, actor="ops", reason="model")
            elif action == "write_off":
                self.ledger.provider_intents.write_off(
                    intent.id, actor="ops", reason="model", provider_checked=True
                )
            else:
                self.ledger.provider_intents.net(
                    intent.id, actor="ops", reason="model", provider_checked=True
                )
        except LedgerError:
            assert intent.kind == "transfer" and action != "retry"

    @rule()
    def two_reversal_workers_in_threads(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        at = self._tick()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                run_reversal_worker(self.ledger, self.provider, now=at, max_attempts=4)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors

    @rule(
        amount=st.integers(2, 5000),
        seller=st.integers(0, 1),
        closed=st.sampled_from(["failed", "cancelled", "expired"]),
        received=st.sampled_from(["full", "partial", "zero", "over"]),
        webhook=st.booleans(),
    )
    def capture_lands_on_a_closed_order(
        self, amount: int, seller: int, closed: str, received: str, webhook: bool
    ) -> None:
        """Hyperswitch retried a failed payment (or the buyer paid after the expiry)."""
        oid = self._next("late")
        fee = amount // 10
        self.ledger.orders.create(
            order_id=oid,
            buyer_id="b",
            seller_id=self.sellers[seller],
            amount=amount,
            currency="EUR",
            fee_amount=fee,
            psp_payment_id=f"p_{oid}",
        )
        {"failed": self.ledger.orders.mark_failed, "cancelled": self.ledger.orders.cancel}.get(
            closed, self.ledger.orders.expire
        )(oid)
        got = {"full": amount, "partial": amount // 2, "zero": 0, "over": amount + 7}[received]
        self.view.payments[f"p_{oid}"] = PaymentState(f"p_{oid}", "succeeded", amount, got, "EUR")
        self.captures[oid] = got
        if webhook:  # its timestamp may be older than the failure the ledger applied
            self.ledger.events.apply(
                ProviderEvent(f"ev_{oid}", "payment_succeeded", f"p_{oid}", T0, got)
            )
            self.observed.add(oid)

    @rule()
    def sweep_late_captures(self) -> None:
        run_sweep(self.ledger, self.view, rules=["late_captures"], now=self._tick())
        self.observed |= set(self.captures)

    @rule(refund=st.booleans())
    def operator_decides_a_late_capture(self, refund: bool) -> None:
        waiting = [o for o in self.ledger.captures.late() if o.id in self.captures]
        # an operator fulfils only when the whole capture was booked (else: refund it)
        waiting = [o for o in waiting if refund or o.captured_amount == self.captures[o.id]]
        if waiting:
            decision = "refund" if refund else "fulfil"
            self.ledger.captures.decide(waiting[0].id, decision, actor="ops", reason="model")

    @rule()
    def sweep(self) -> None:
        run_sweep(self.ledger, None, rules=["unreversed_refunds"], now=self._tick())

    # ------------------------------------------------------------------ invariants

    def _rows(self) -> dict[str, Any]:
        with self.engine.connect() as c:
            orders = c.execute(sa.select(Order).where(Order.seller_id.in_(self.sellers))).all()
            transfers = c.execute(
                sa.select(SellerTransfer)
                .where(SellerTransfer.seller_id.in_(self.sellers))
                .order_by(SellerTransfer.created_at, SellerTransfer.id)
            ).all()
            ids = [t.id for t in transfers]
            reversals = c.execute(
                sa.select(SellerTransferReversal).where(SellerTransferReversal.transfer_id.in_(ids))
            ).all()
            intents = c.execute(
                sa.select(ProviderIntent).where(ProviderIntent.seller_id.in_(self.sellers))
            ).all()
        return {
            "orders": orders,
            "transfers": transfers,
            "reversals": reversals,
            "intents": intents,
        }

    @invariant()
    def provider_and_ledger_agree_per_transfer(self) -> None:
        rows = self._rows()
        intents = {i.id: i for i in rows["intents"]}
        recorded: dict[str, int] = {}
        recorded_ids = {r.provider_reversal_id: r for r in rows["reversals"]}
        for r in rows["reversals"]:
            recorded[r.transfer_id] = recorded.get(r.transfer_id, 0) + r.amount
        by_stripe = {t.stripe_transfer_id: t for t in rows["transfers"] if t.stripe_transfer_id}
        orders = {o.id: o for o in rows["orders"]}
        for order_id, order in orders.items():
            mine = [t for t in rows["transfers"] if t.order_id == order_id]
            dues = allocate_reversals(
                order.refunded_amount - order.fee_refunded, [(t.id, t.amount) for t in mine]
            )
            for t in mine:
                assert t.reversed_amount == recorded.get(t.id, 0), t.id
                assert t.reversed_amount <= t.reversal_due <= dues[t.id], t.id
        for tid, stored in self.provider.transfers.items():
            key = stored["key"]
            row = by_stripe.get(tid)
            if row is None:  # made, never recorded: only after a crash, outcome unknown
                assert key in self.crashed and intents[key].status in ("pending", "parked"), tid
                continue
            assert intents[key].provider_object_id == tid
            unknown = sum(
                r["amount"]
                for rid, r in self.provider.reversals.items()
                if r["transfer"] == tid and rid not in recorded_ids
            )
            assert stored["reversed"] == recorded.get(row.id, 0) + unknown
        for rid, r in self.provider.reversals.items():
            intent = intents[r["key"]]
            if rid in recorded_ids:
                assert recorded_ids[rid].intent_id == intent.id
                assert intent.provider_object_id == rid and intent.status == "succeeded"
            else:
                assert r["key"] in self.crashed and intent.status in ("pending", "parked"), rid

    @invariant()
    def every_provider_capture_is_booked_or_an_open_finding(self) -> None:
        if not self.captures:
            return
        with self.engine.connect() as c:
            orders = {
                o.id: o
                for o in c.execute(sa.select(Order).where(Order.id.in_(list(self.captures))))
            }
            booked = set(
                c.execute(
                    sa.select(JournalTransaction.id).where(
                        JournalTransaction.id.in_([f"order:{o}:captured" for o in self.captures])
                    )
                ).scalars()
            )
            flagged = set(
                c.execute(
                    sa.select(Finding.object_id).where(
                        Finding.object_id.in_(list(self.captures)),
                        Finding.status == "open",
                        Finding.rule.in_(("late_captures", "money_mismatch", "stuck_orders")),
                    )
                ).scalars()
            )
        for oid, got in self.captures.items():
            order = orders[oid]
            in_journal = f"order:{oid}:captured" in booked
            assert in_journal == (order.captured_amount > 0), oid
            assert order.captured_amount <= max(got, 0), oid  # never more than captured
            if oid not in self.observed:
                continue
            if got > 0:
                assert in_journal or oid in flagged, oid
            if order.captured_amount < got:  # not all of it booked: a finding says so
                assert oid in flagged, oid
            if in_journal and order.late_capture_decision is None:
                assert order.late_capture_from is not None and oid in flagged, oid

    @invariant()
    def seller_payable_matches_the_rows(self) -> None:
        rows = self._rows()
        for seller in self.sellers:
            owed = 0
            for o in rows["orders"]:
                if o.seller_id == seller and o.captured_amount:
                    owed += o.captured_amount - fee_captured(o)
                    owed -= o.refunded_amount - o.fee_refunded
            mine = {t.id for t in rows["transfers"] if t.seller_id == seller}
            for t in rows["transfers"]:
                if t.id in mine and t.status not in ("pending", "failed"):
                    owed -= t.amount
            owed += sum(r.amount for r in rows["reversals"] if r.transfer_id in mine)
            owed += sum(
                i.amount
                for i in rows["intents"]
                if i.seller_id == seller and i.status == "written_off"
            )
            assert -self.ledger.journal.balance(Accounts.seller_payable(seller), "EUR") == owed
        assert all(v == 0 for v in self.ledger.journal.trial_balance().values())


def _run(engine: sa.Engine, examples: int, steps: int) -> None:
    MoneyModel.engine = engine
    runner = MoneyModel.TestCase
    runner.settings = settings(
        max_examples=EXAMPLES or examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    runner().runTest()


def test_money_model_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'model.db'}")
    upgrade(engine)
    _run(engine, examples=10, steps=15)
    engine.dispose()


def test_money_model_postgresql(pg_engine: sa.Engine) -> None:
    """PostgreSQL: two reversal workers in threads too."""
    _run(pg_engine, examples=10, steps=15)


@pytest.fixture(autouse=True)
def _quiet_workers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="veza_ledger.workers")
