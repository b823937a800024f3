"""veza-ledger reconciliation on PostgreSQL: 1,000,000 orders, 50,000 anomalies.

Run: ``nox -s bench -- reconcile`` (PostgreSQL on 127.0.0.1:5432 or
``VEZA_TEST_DATABASE_URL``; ``VEZA_BENCH_ORDERS`` scales the data set).

The data set: 1,000,000 orders, of which 950,000 are paid long ago (healthy), 30,000 are
stuck ``pending_payment`` while the PSP says "processing" (a finding), 10,000 are stuck
while the PSP says "succeeded" (a fix: paid, through the machine and the journal), and
10,000 completed seller transfers lack their Stripe id (a fix: backfilled). The provider
view is in memory, so the figures are the ledger's own.

Rows:

* ``run_sweep`` (all rules, default batch) over the whole data set: orders covered per
  second, beside a naive per-row ORM loop (load each order, its refunds and transfers,
  ask the provider, fix with the public methods: one transaction per row) timed on a
  random sample of 20,000 orders in the same run and extrapolated (the naive loop over a
  million rows takes far too long to run in full);
* peak Python memory of a dry-run sweep at batch sizes 100, 1,000 and 10,000;
* ``EXPLAIN`` of each rule's claim query: the index it uses (no sequential scan).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import sys
import time
import tracemalloc
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger import (
    RULES,
    Ledger,
    PaymentState,
    ReconcileSettings,
    TransferState,
    create_engine,
    run_sweep,
    upgrade,
)
from veza_ledger._schema import Finding, Order, Refund, SellerTransfer
from veza_ledger._sweep import candidate_query

ORDERS = int(os.environ.get("VEZA_BENCH_ORDERS", "1000000"))
SAMPLE = min(20_000, ORDERS // 10)
BASE_URL = os.environ.get(
    "VEZA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


class View:
    """Answers from the ids, in memory (the ledger's cost alone is measured)."""

    def payment(self, psp_payment_id: str) -> PaymentState:
        n = int(psp_payment_id[1:])
        status = "succeeded" if n % 5 == 0 else "processing"
        return PaymentState(
            psp_payment_id, status, 1000, 1000 if status == "succeeded" else None, "EUR"
        )

    def payment_for_order(self, _order_id: str) -> None:
        return None

    def refund(self, _provider_refund_id: str) -> None:
        return None

    def refund_for_row(self, _refund_row_id: str) -> None:
        return None

    def find_transfer(self, transfer_row_id: str, **_: object) -> TransferState:
        return TransferState(f"tr_{transfer_row_id}", 900)


def fill(engine: sa.Engine) -> None:
    stuck = ORDERS // 25  # 40,000 of 1,000,000
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO ledger_orders (id, buyer_id, seller_id, amount, currency, "
                "fee_amount, status, psp_payment_id, captured_amount, refunded_amount, "
                "fee_refunded, created_at, updated_at) "
                "SELECT 'o' || lpad(g::text, 7, '0'), 'b', 's' || (g % 1000), 1000, 'EUR', "
                "100, CASE WHEN g <= :stuck THEN 'pending_payment' ELSE 'paid' END, "
                "'p' || g, CASE WHEN g <= :stuck THEN 0 ELSE 1000 END, 0, 0, :t, :t "
                "FROM generate_series(1, :n) g"
            ),
            {"n": ORDERS, "stuck": stuck, "t": CREATED},
        )
        c.execute(
            sa.text(
                "INSERT INTO ledger_seller_transfers (id, order_id, seller_id, destination, "
                "amount, currency, status, stripe_transfer_id, reversal_due, reversed_amount, "
                "attempts, created_at, updated_at) SELECT 't' || lpad(g::text, 7, '0'), "
                "'o' || lpad(g::text, 7, '0'), 's' || (g % 1000), 'acct_' || (g % 1000), 900, "
                "'EUR', 'completed', "
                "CASE WHEN g <= :stuck + :missing THEN NULL ELSE 'tr_' || g END, 0, 0, 0, "
                ":t, :t FROM generate_series(:stuck + 1, :n) g"
            ),
            {"n": ORDERS, "stuck": stuck, "missing": ORDERS // 100, "t": CREATED},
        )
    with sa.create_engine(engine.url, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(sa.text("VACUUM ANALYZE"))


def naive(engine: sa.Engine, ids: list[str]) -> float:
    """What one would write without candidate queries: every order, one at a time."""
    ledger = Ledger(engine, clock=lambda: NOW)
    view = View()
    started = time.perf_counter()
    for order_id in ids:
        with Session(engine) as session:
            order = session.get(Order, order_id)
            assert order is not None
            refunds = session.scalars(sa.select(Refund).where(Refund.order_id == order_id)).all()
            transfers = session.scalars(
                sa.select(SellerTransfer).where(SellerTransfer.order_id == order_id)
            ).all()
            state = view.payment(order.psp_payment_id or "")
            problem = None
            if order.status == "pending_payment":
                problem = "stuck"
            elif sum(r.amount for r in refunds if r.status == "succeeded") != order.refunded_amount:
                problem = "money"
            for transfer in transfers:
                if transfer.status == "completed" and not transfer.stripe_transfer_id:
                    found = view.find_transfer(transfer.id)
                    transfer.stripe_transfer_id = found.transfer_id
                    problem = "transfer"
            if problem:
                session.add(
                    Finding(
                        fingerprint=f"naive:{order_id}",
                        rule=problem,
                        object_type="order",
                        object_id=order_id,
                        severity="warning",
                        summary=problem,
                        evidence={},
                        occurrences=1,
                        first_seen=NOW,
                        last_seen=NOW,
                        status="open",
                    )
                )
            session.commit()
        if problem == "stuck" and state.status == "succeeded":
            ledger.orders.mark_paid(order_id, captured_amount=state.amount_received)
    return time.perf_counter() - started


def _database(admin: sa.Engine) -> sa.Engine:
    name = f"veza_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.make_url(BASE_URL).set(database=name), pool_size=4)
    upgrade(engine)
    return engine


def _drop(admin: sa.Engine, engine: sa.Engine) -> None:
    name = engine.url.database
    engine.dispose()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _plans(engine: sa.Engine, settings: ReconcileSettings) -> dict[str, tuple[str, str, bool, int]]:
    plans = {}
    with engine.connect() as c:
        for rule in RULES.values():
            query = candidate_query(
                rule, rule.where(NOW, settings), NOW - settings.recheck_after, limit=100, lock=True
            )
            sql = query.compile(engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r for (r,) in c.execute(sa.text(f"EXPLAIN {sql}")))
            table = rule.model.__tablename__
            rows = c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            index = next((w for w in plan.split() if w.startswith(("ix_", "uq_", "pk_"))), "-")
            plans[rule.name] = (table, index, f"Seq Scan on {table}" in plan, rows)
    return plans


def main() -> None:
    admin = sa.create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    settings = ReconcileSettings()
    ours_db, naive_db = _database(admin), _database(admin)
    try:
        started = time.perf_counter()
        fill(ours_db)
        filled = time.perf_counter() - started
        fill(naive_db)
        plans = _plans(ours_db, settings)
        peaks = {}
        for batch in (100, 1_000, 10_000):
            tracemalloc.start()
            run_sweep(
                ours_db,
                View(),
                batch_size=batch,
                dry_run=True,
                now=NOW,
                rules=["stuck_orders", "transfers_without_stripe_id"],
            )
            peaks[batch] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        started = time.perf_counter()
        report = run_sweep(ours_db, View(), now=NOW)
        sweep_seconds = time.perf_counter() - started
        sample = random.Random(7).sample([f"o{i:07d}" for i in range(1, ORDERS + 1)], SAMPLE)
        naive_seconds = naive(naive_db, sample)
    finally:
        _drop(admin, ours_db)
        _drop(admin, naive_db)
        admin.dispose()

    ours = ORDERS / sweep_seconds
    theirs = SAMPLE / naive_seconds
    print(
        f"# veza-ledger reconciliation benchmark: {platform.python_implementation()} "
        f"{sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs, PostgreSQL"
    )
    print(
        f"data set: {ORDERS:,} orders, {ORDERS // 25 + ORDERS // 100:,} anomalies "
        f"(filled in {filled:.0f} s)"
    )
    print(
        f"run_sweep, all rules: {sweep_seconds:.1f} s, {sum(report.examined.values()):,} rows "
        f"examined, {report.problem_count:,} problems, {report.applied:,} fixed"
    )
    print(f"{'orders covered per second':34} {'veza':>12} {'naive ORM loop':>16} {'ratio':>7}")
    print(
        f"{'':34} {ours:>12,.0f} {theirs:>16,.0f} {ours / theirs:>6.1f}x  (naive: {SAMPLE:,}-order "
        f"sample, {naive_seconds:.1f} s)"
    )
    print(
        "peak Python memory, dry-run sweep: "
        + ", ".join(f"batch {b:,}: {p / 2**20:.1f} MiB" for b, p in peaks.items())
    )
    print(f"{'rule':30} {'table (rows)':36} {'index':44} seq scan")
    for rule, (table, index, seq, rows) in plans.items():
        print(f"{rule:30} {f'{table} ({rows:,})':36} {index:44} {'YES' if seq else 'no'}")


if __name__ == "__main__":
    main()
