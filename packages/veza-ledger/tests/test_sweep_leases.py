"""Findings 7 and 8: the sweep holds no row lock across provider reads; marks are stamped
when each item is examined.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import sqlalchemy as sa

from veza_ledger import Accounts, Ledger, PaymentState, run_sweep
from veza_ledger._schema import Order, RuleCheck

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


class GatedView:
    """Answers "succeeded"; the first read waits on a gate (a slow provider)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def payment(self, psp_payment_id: str) -> PaymentState:
        self.calls.append(psp_payment_id)
        if len(self.calls) == 1:
            self.entered.set()
            self.release.wait(30)
        return PaymentState(psp_payment_id, "succeeded", 100, 100, "EUR")

    def payment_for_order(self, order_id: str) -> None:
        raise AssertionError(order_id)

    def refund(self, provider_refund_id: str) -> None:
        raise AssertionError(provider_refund_id)

    def refund_for_row(self, refund_row_id: str) -> None:
        raise AssertionError(refund_row_id)

    def find_transfer(self, transfer_row_id: str, **_: object) -> None:
        raise AssertionError(transfer_row_id)


def _stuck_orders(engine: sa.Engine, n: int) -> list[str]:
    created = T0 - dt.timedelta(hours=1)
    ids = [f"o{i:03d}" for i in range(n)]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Order),
            [
                {
                    "id": i,
                    "buyer_id": "b",
                    "seller_id": "s",
                    "amount": 100,
                    "currency": "EUR",
                    "fee_amount": 10,
                    "status": "pending_payment",
                    "psp_payment_id": f"p-{i}",
                    "captured_amount": 0,
                    "refunded_amount": 0,
                    "fee_refunded": 0,
                    "created_at": created,
                    "updated_at": created,
                }
                for i in ids
            ],
        )
    return ids


def test_a_webhook_for_an_order_in_the_batch_does_not_wait_for_the_provider(
    pg_only: sa.Engine,
) -> None:
    """Finding 7 (PostgreSQL: row locks): the webhook's write lands during the poll."""
    ids = _stuck_orders(pg_only, 5)
    view = GatedView()
    ledger = Ledger(pg_only)
    sweep = threading.Thread(
        target=lambda: run_sweep(ledger, view, rules=["stuck_orders"], batch_size=20, now=T0)
    )
    sweep.start()
    assert view.entered.wait(10)
    started = time.monotonic()
    webhook = threading.Thread(target=lambda: ledger.orders.mark_paid(ids[3]))  # in the batch
    webhook.start()
    webhook.join(5)
    waited = time.monotonic() - started
    blocked = webhook.is_alive()
    view.release.set()
    sweep.join(30)
    webhook.join(30)
    assert not blocked and waited < 1.0
    assert ledger.orders.get(ids[3]).status == "paid"
    assert all(ledger.orders.get(i).status == "paid" for i in ids)
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 500  # each captured once


def test_marks_carry_the_examination_time_not_the_sweeps_start(engine: sa.Engine) -> None:
    """Finding 8: a long sweep's marks keep a later, overlapping sweep off its items."""
    ids = _stuck_orders(engine, 12)
    ticks = iter(range(1, 100))
    view = GatedView()
    view.entered.set()
    view.release.set()

    def clock() -> dt.datetime:
        return T0 + dt.timedelta(minutes=next(ticks))  # a sweep that takes minutes

    class Unresolved(GatedView):
        def payment(self, psp_payment_id: str) -> PaymentState:
            self.calls.append(psp_payment_id)
            return PaymentState(psp_payment_id, "processing", 100, 0, "EUR")

    first = Unresolved()
    run_sweep(Ledger(engine), first, rules=["stuck_orders"], batch_size=4, now=T0, clock=clock)
    assert sorted(first.calls) == sorted(f"p-{i}" for i in ids)
    with engine.connect() as connection:
        marks = {
            str(i): at
            for i, at in connection.execute(sa.select(RuleCheck.object_id, RuleCheck.checked_at))
        }
    stamps = [marks[i] for i in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(ids)  # one per examination
    assert stamps[0] > T0
    # A sweep starting while the long one was finishing re-polls only what the long one
    # examined more than recheck_after (5 minutes) before it started.
    later = stamps[-1] + dt.timedelta(minutes=1)
    second = Unresolved()
    run_sweep(Ledger(engine), second, rules=["stuck_orders"], now=later)
    recent = {i for i, at in zip(ids, stamps, strict=True) if at >= later - dt.timedelta(minutes=5)}
    assert recent and set(second.calls) == {f"p-{i}" for i in ids if i not in recent}
