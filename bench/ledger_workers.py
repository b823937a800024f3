"""veza-ledger worker throughput, SQL statements per item, and webhook wait during a sweep.

Issue 13 made every Stripe money call a durable intent; its acceptance requires the
workers to stay at most 20 % slower than before. This measures, against a fresh
PostgreSQL database (127.0.0.1:5432, user postgres):

* transfers/s and reversals/s of ``run_transfer_worker`` / ``run_reversal_worker`` over
  ``N`` rows with an in-memory provider (no network), and the SQL statements each
  issues per item (counted with SQLAlchemy's ``before_cursor_execute`` event);
* how long a webhook (``mark_paid``) waits while a sweep whose provider reads take 1 s
  each runs over the same orders (the sweep must hold no lock across a provider call).

Run (the new code, from the repository root)::

    uv run python bench/ledger_workers.py 2000

Run the old code beside it: extract the veza-ledger ``src`` of the commit before the
change and put it first on the path (the line printed starts with the module's file, so
you can see which code ran)::

    mkdir -p /tmp/lm && git archive 0f50f1c packages/veza-ledger/src | tar -x -C /tmp/lm
    PYTHONPATH=/tmp/lm/packages/veza-ledger/src uv run python bench/ledger_workers.py 2000
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa

import veza_ledger
from veza_ledger import (
    Ledger,
    PaymentState,
    create_engine,
    run_reversal_worker,
    run_sweep,
    run_transfer_worker,
    upgrade,
)
from veza_ledger._schema import Order, SellerTransfer

BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class Obj:
    def __init__(self, i: str) -> None:
        self.id = i


class Mem:
    """A provider that answers at once (the bench measures the ledger's side)."""

    def __init__(self) -> None:
        self.n = 0

    def create_transfer(
        self,
        key: str,
        *,
        amount: int,  # noqa: ARG002 - the provider's signature
        currency: str,  # noqa: ARG002 - the provider's signature
        destination: str,  # noqa: ARG002 - the provider's signature
        transfer_group: str | None = None,  # noqa: ARG002 - the provider's signature
    ) -> Obj:
        self.n += 1
        return Obj(f"tr_{key}")

    def reverse_transfer(
        self,
        key: str,
        transfer_id: str,  # noqa: ARG002 - the provider's signature
        *,
        amount: int | None = None,  # noqa: ARG002 - the provider's signature
    ) -> Obj:
        self.n += 1
        return Obj(f"trr_{key}")


class Slow:
    """A sweep provider whose payment reads take 1 s each."""

    def payment(self, pid: str) -> PaymentState:
        time.sleep(1.0)
        return PaymentState(pid, "processing", 100, 0, "EUR")

    def payment_for_order(self, *_: object) -> None:
        return None

    def refund(self, *_: object) -> None:
        return None

    def refund_for_row(self, *_: object) -> None:
        return None

    def find_transfer(self, *_: object, **__: object) -> None:
        return None


class Counter:
    """SQL statements sent on an engine (``before_cursor_execute``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.n = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.n += 1


def fresh() -> tuple[sa.Engine, sa.Engine, str]:
    admin = sa.create_engine(BASE, isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.make_url(BASE).set(database=name), pool_size=10)
    upgrade(engine)
    return admin, engine, name


def webhook_waits(ledger: Ledger, engine: sa.Engine, now: dt.datetime) -> list[float]:
    created = now - dt.timedelta(hours=2)
    orders = [
        {
            "id": f"o{i:03d}",
            "buyer_id": "b",
            "seller_id": "s",
            "amount": 100,
            "currency": "EUR",
            "fee_amount": 10,
            "status": "pending_payment",
            "psp_payment_id": f"p{i:03d}",
            "captured_amount": 0,
            "refunded_amount": 0,
            "fee_refunded": 0,
            "created_at": created,
            "updated_at": created,
        }
        for i in range(10)
    ]
    with engine.begin() as c:
        c.execute(sa.insert(Order), orders)
    sweep = threading.Thread(
        target=lambda: run_sweep(ledger, Slow(), rules=["stuck_orders"], batch_size=20)
    )
    sweep.start()
    time.sleep(0.3)
    waits: list[float] = []
    for i in range(1, 10):  # a webhook for another order of the batch every 0.9 s
        t = time.perf_counter()
        ledger.mark_paid(f"o{i:03d}")
        waits.append(time.perf_counter() - t)
        time.sleep(max(0.0, 0.9 - waits[-1]))
    sweep.join()
    return sorted(waits)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    admin, engine, name = fresh()
    try:
        ledger = Ledger(engine)
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "id": f"t{i:06d}",
                "order_id": None,
                "seller_id": f"s{i % 50}",
                "destination": "acct_1",
                "amount": 1000,
                "currency": "EUR",
                "status": "pending",
                "reversal_due": 0,
                "reversed_amount": 0,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        with engine.begin() as c:
            c.execute(sa.insert(SellerTransfer), rows)
        mem = Mem()
        counter = Counter(engine)
        t = time.perf_counter()
        run_transfer_worker(ledger, mem)
        transfer_rate = n / (time.perf_counter() - t)
        transfer_sql = counter.n / n
        with engine.begin() as c:
            c.execute(sa.update(SellerTransfer).values(status="reversal_pending", reversal_due=400))
        counter.n = 0
        t = time.perf_counter()
        run_reversal_worker(ledger, mem)
        reversal_rate = n / (time.perf_counter() - t)
        reversal_sql = counter.n / n
        waits = webhook_waits(ledger, engine, now)
        p99 = waits[min(len(waits) - 1, int(0.99 * len(waits)))]
        print(
            f"{veza_ledger.__file__}: transfers/s {transfer_rate:.0f} "
            f"({transfer_sql:.1f} SQL/item), reversals/s {reversal_rate:.0f} "
            f"({reversal_sql:.1f} SQL/item), webhook wait p50 "
            f"{statistics.median(waits) * 1000:.0f} ms, max(p99 of 9) {p99 * 1000:.0f} ms"
        )
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
