"""Four worker processes sweep 5,000 candidates on PostgreSQL: each handled exactly once."""

from __future__ import annotations

import collections
import datetime as dt
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from veza_ledger import Accounts, Ledger
from veza_ledger._schema import Order

CANDIDATES = 5_000


def test_four_processes_share_a_sweep(pg_only: sa.Engine, tmp_path: Path) -> None:
    created = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    with pg_only.begin() as connection:
        connection.execute(
            sa.insert(Order),
            [
                {
                    "id": f"o{i:05d}",
                    "buyer_id": "b",
                    "seller_id": f"s{i % 50}",
                    "amount": 100,
                    "currency": "EUR",
                    "fee_amount": 10,
                    "status": "pending_payment",
                    "psp_payment_id": f"p{i:05d}",
                    "captured_amount": 0,
                    "refunded_amount": 0,
                    "fee_refunded": 0,
                    "created_at": created,
                    "updated_at": created,
                }
                for i in range(CANDIDATES)
            ],
        )
    url = pg_only.url.render_as_string(hide_password=False)
    now = (created + dt.timedelta(hours=1)).isoformat()
    script = Path(__file__).with_name("sweep_worker.py")
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(log), now],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for log in logs
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs  # no deadlock, no error
    calls = collections.Counter(line for log in logs for line in log.read_text().split())
    assert len(calls) == CANDIDATES and set(calls.values()) == {1}  # each exactly once
    per_worker = [int(out.split()[0]) for out, _ in outputs]
    assert sum(per_worker) == CANDIDATES
    assert sum(1 for n in per_worker if n > 0) >= 2  # the work really was shared
    ledger = Ledger(pg_only)
    assert (
        ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 100 * CANDIDATES
    )  # paid once each
    with pg_only.connect() as connection:
        left = connection.execute(
            sa.text("SELECT count(*) FROM ledger_orders WHERE status = 'pending_payment'")
        ).scalar()
    assert left == 0
