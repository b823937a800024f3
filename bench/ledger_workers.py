"""veza-ledger worker throughput and SQL statements per item, before and after issue 13.

Issue 13 made every Stripe money call a durable intent; its acceptance requires the
workers to stay at most 20 % slower than the code before intents (commit ``0f50f1c``).
This script measures both **in one run**, against fresh PostgreSQL databases
(127.0.0.1:5432, user postgres):

* transfers/s and reversals/s of ``run_transfer_worker`` / ``run_reversal_worker`` over
  ``N`` rows with an in-memory provider (no network), and the SQL statements each
  issues per item (counted with SQLAlchemy's ``before_cursor_execute`` event);
* how long a webhook (``mark_paid``) waits while a sweep whose provider reads take 1 s
  each runs over the same orders (the sweep must hold no lock across a provider call).

The old code is the veza-ledger ``src`` of ``0f50f1c``, extracted with ``git archive``
into a temporary directory and put first on ``PYTHONPATH`` of a child process; the new
code is whatever ``veza_ledger`` this interpreter imports. Each round runs both children
one after the other (the order alternates between rounds, so a load spike on a shared
machine hurts both alike); the medians over the rounds and their ratio are printed.
Every line names the module file that ran.

Run (from the repository root; ``nox -s bench -- ledger_workers`` runs it with defaults)::

    uv run python bench/ledger_workers.py 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path
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
OLD = "0f50f1c"  # the last commit before durable intents (issue 13)
ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.8  # new >= 0.8 x old


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
        ledger.orders.mark_paid(f"o{i:03d}")
        waits.append(time.perf_counter() - t)
        time.sleep(max(0.0, 0.9 - waits[-1]))
    sweep.join()
    return sorted(waits)


def throughput(n: int) -> dict[str, Any]:
    """Both workers over ``n`` fresh rows of a fresh database: rates and SQL per item."""
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
        report = run_transfer_worker(ledger, mem)
        transfer_rate = n / (time.perf_counter() - t)
        transfer_sql = counter.n / n
        assert len(report.done) == n, f"transfer worker did {len(report.done)} of {n}"
        with engine.begin() as c:
            c.execute(sa.update(SellerTransfer).values(status="reversal_pending", reversal_due=400))
        counter.n = 0
        t = time.perf_counter()
        report = run_reversal_worker(ledger, mem)
        reversal_rate = n / (time.perf_counter() - t)
        reversal_sql = counter.n / n
        assert len(report.done) == n, f"reversal worker did {len(report.done)} of {n}"
        return {
            "module": veza_ledger.__file__,
            "transfers": transfer_rate,
            "transfer_sql": transfer_sql,
            "reversals": reversal_rate,
            "reversal_sql": reversal_sql,
        }
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def webhook(_: int) -> dict[str, Any]:
    """A webhook's wait during a slow sweep over its order's batch (fresh database)."""
    admin, engine, name = fresh()
    try:
        waits = webhook_waits(Ledger(engine), engine, dt.datetime.now(dt.UTC))
        return {
            "module": veza_ledger.__file__,
            "p50_ms": statistics.median(waits) * 1000,
            "max_ms": waits[-1] * 1000,
        }
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def extract_old(into: Path) -> Path:
    """The veza-ledger ``src`` of :data:`OLD` (``git archive``), extracted into ``into``."""
    archive = subprocess.run(
        ["git", "archive", OLD, "packages/veza-ledger/src"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "packages" / "veza-ledger" / "src"


def child(what: str, n: int, old_src: Path | None) -> dict[str, Any]:
    """Run ``what`` in a fresh interpreter: the old code when ``old_src`` is given."""
    env = dict(os.environ)
    if old_src is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(old_src), env.get("PYTHONPATH", "")) if p
        )
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, str(n)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    ran_old = result["module"].startswith(str(old_src)) if old_src else False
    if ran_old != (old_src is not None):
        msg = f"expected {'old' if old_src else 'new'} code, ran {result['module']}"
        raise RuntimeError(msg)
    return result


def compare(n: int, rounds: int, *, with_webhook: bool) -> None:
    """Old and new side by side: ``rounds`` alternating runs each, medians and ratios."""
    with tempfile.TemporaryDirectory(prefix="veza-ledger-old-") as tmp:
        old_src = extract_old(Path(tmp))
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for r in range(rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            for code in order:
                result = child("throughput", n, old_src if code == "old" else None)
                runs[code].append(result)
                print(
                    f"round {r + 1} {code}: transfers/s {result['transfers']:.0f} "
                    f"({result['transfer_sql']:.1f} SQL/item), reversals/s "
                    f"{result['reversals']:.0f} ({result['reversal_sql']:.1f} SQL/item)"
                    f"  [{result['module']}]",
                    flush=True,
                )
        med = {
            code: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "module"}
            for code, rs in runs.items()
        }
        print(f"\nledger workers, {n} items, median of {rounds} alternating rounds:")
        print(f"{'':4} {'transfers/s':>12} {'SQL/item':>9} {'reversals/s':>12} {'SQL/item':>9}")
        for code in ("old", "new"):
            m = med[code]
            print(
                f"{code:4} {m['transfers']:12.0f} {m['transfer_sql']:9.1f} "
                f"{m['reversals']:12.0f} {m['reversal_sql']:9.1f}"
            )
        for kind in ("transfers", "reversals"):
            ratio = med["new"][kind] / med["old"][kind]
            verdict = "ok" if ratio >= GOAL else "BELOW GOAL"
            print(f"{kind}: new/old = {ratio:.2f} (goal >= {GOAL:.2f}: {verdict})")
        if with_webhook:
            for code in ("old", "new"):
                w = child("webhook", n, old_src if code == "old" else None)
                print(
                    f"webhook wait during a 1 s/read sweep, {code}: p50 {w['p50_ms']:.0f} ms, "
                    f"max of 9 {w['max_ms']:.0f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("n", nargs="?", type=int, default=2000, help="rows per worker run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating old/new rounds")
    parser.add_argument("--no-webhook", action="store_true", help="skip the sweep/webhook part")
    parser.add_argument("--child", choices=["throughput", "webhook"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (throughput if args.child == "throughput" else webhook)(args.n)
        print(json.dumps(result))
        return
    compare(args.n, args.rounds, with_webhook=not args.no_webhook)


if __name__ == "__main__":
    main()
