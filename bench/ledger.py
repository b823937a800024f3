"""veza-ledger: the webhook log retention sweep on PostgreSQL, under concurrent inserts.

Run: ``nox -s bench -- ledger`` (PostgreSQL on 127.0.0.1:5432 or ``VEZA_TEST_DATABASE_URL``).

1. Fill ``ledger_webhook_log`` with 1,000,000 expired rows (plus fresh ones to keep).
2. Measure the latency of single-row inserts (the intake's write) for a few seconds with
   nothing else running: the baseline.
3. Sweep at the default batch (10,000, 100 ms pause) while the same inserts continue;
   record every DELETE's duration and every insert's latency.

Reports the longest single DELETE (target: under 200 ms at the default batch) and the
insert latency p50/p99 beside the baseline, in one run.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import threading
import time
import uuid

import sqlalchemy as sa

from veza_ledger import SQLWebhookLog, create_engine, sweep_webhook_log, upgrade

ROWS = int(os.environ.get("VEZA_BENCH_ROWS", "1000000"))
BASE_URL = os.environ.get(
    "VEZA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class Record:
    """A webhook record shaped like veza-payments' (no import needed)."""

    def __init__(self) -> None:
        self.payload = '{"event_type":"payment_succeeded","content":{"object":{"amount":1000}}}'
        self.signature_valid = True
        self.processing_result = "ok"
        self.source_ip = "203.0.113.7"
        self.user_agent = "Hyperswitch"
        self.request_id = uuid.uuid4().hex
        self.event_id = f"evt_{uuid.uuid4().hex}"
        self.event_type = "payment_succeeded"
        self.received_at = dt.datetime.now(dt.UTC)


def insert_latencies(engine: sa.Engine, stop: threading.Event, out: list[float]) -> None:
    log = SQLWebhookLog(engine)
    while not stop.is_set():
        record = Record()
        started = time.perf_counter()
        log.record(record)
        out.append(time.perf_counter() - started)
        time.sleep(0.002)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 100 else max(values)


def main() -> None:
    name = f"veza_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.make_url(BASE_URL).set(database=name), pool_size=4)
    try:
        upgrade(engine)
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO ledger_webhook_log (payload, signature_valid, processing_result, "
                    "source_ip, user_agent, request_id, event_id, event_type, received_at) "
                    "SELECT :head || repeat('x', 300) || :tail, "
                    "true, 'ok', '203.0.113.7', 'Hyperswitch', md5(g::text), 'evt_' || g, "
                    "'payment_succeeded', "
                    "now() - interval '120 days' - (g || ' seconds')::interval "
                    "FROM generate_series(1, :n) g"
                ),
                {"n": ROWS, "head": '{"event_type":"payment_succeeded","pad":"', "tail": '"}'},
            )
        fill = time.perf_counter() - started
        # Rows 90+ days old have long been vacuumed and checkpointed in a real system:
        # start from that steady state, not from the fill's dirty pages and WAL.
        maintenance = sa.create_engine(
            sa.make_url(BASE_URL).set(database=name), isolation_level="AUTOCOMMIT"
        )
        with maintenance.connect() as connection:
            connection.execute(sa.text("VACUUM (ANALYZE) ledger_webhook_log"))
            connection.execute(sa.text("CHECKPOINT"))
        maintenance.dispose()

        baseline: list[float] = []
        stop = threading.Event()
        writer = threading.Thread(target=insert_latencies, args=(engine, stop, baseline))
        writer.start()
        time.sleep(5)
        stop.set()
        writer.join()

        during: list[float] = []
        deletes: list[float] = []
        stop = threading.Event()
        writer = threading.Thread(target=insert_latencies, args=(engine, stop, during))
        writer.start()
        started = time.perf_counter()
        try:
            deleted = sweep_webhook_log(engine, on_batch=lambda _n, took: deletes.append(took))
        finally:
            sweep = time.perf_counter() - started
            stop.set()
            writer.join()
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    print(
        f"# veza-ledger retention benchmark: {platform.python_implementation()} "
        f"{sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs, PostgreSQL"
    )
    print(f"filled {ROWS:,} expired rows in {fill:.1f} s")
    print(
        f"swept {deleted:,} rows in {sweep:.1f} s: {len(deletes)} DELETEs of <= 10,000 rows, "
        f"100 ms pause between them"
    )
    print(
        f"longest single DELETE: {max(deletes) * 1000:.1f} ms "
        f"(median {statistics.median(deletes) * 1000:.1f} ms; target < 200 ms)"
    )
    print(f"{'single-row insert latency':28} {'p50':>9} {'p99':>9} {'max':>9} {'n':>6}")
    for label, values in (("without the sweep", baseline), ("during the sweep", during)):
        print(
            f"{label:28} {pct(values, 50) * 1000:>7.2f}ms {pct(values, 99) * 1000:>7.2f}ms "
            f"{max(values) * 1000:>7.2f}ms {len(values):>6}"
        )


if __name__ == "__main__":
    main()
