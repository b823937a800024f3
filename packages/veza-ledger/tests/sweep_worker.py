"""A reconciliation worker process for the multi-worker test (run as a script).

It sweeps ``stuck_orders`` with a provider view that answers "succeeded" and writes
every payment id it is asked about to its own log file, so the test can count provider
calls across processes.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from veza_ledger import PaymentState, create_engine, run_sweep


class LoggingView:
    def __init__(self, log: Path) -> None:
        self.log = log.open("a", encoding="utf-8")

    def payment(self, psp_payment_id: str) -> PaymentState:
        self.log.write(psp_payment_id + "\n")
        self.log.flush()
        return PaymentState(psp_payment_id, "succeeded", 100, 100, "EUR")

    def payment_for_order(self, order_id: str) -> None:
        raise AssertionError(order_id)

    def refund(self, provider_refund_id: str) -> None:
        raise AssertionError(provider_refund_id)

    def refund_for_row(self, refund_row_id: str) -> None:
        raise AssertionError(refund_row_id)

    def find_transfer(self, transfer_row_id: str, **_: object) -> None:
        raise AssertionError(transfer_row_id)


def main() -> None:
    url, log, now = sys.argv[1], Path(sys.argv[2]), dt.datetime.fromisoformat(sys.argv[3])
    engine = create_engine(url, pool_size=2)
    report = run_sweep(engine, LoggingView(log), rules=["stuck_orders"], batch_size=100, now=now)
    print(report.examined["stuck_orders"], report.applied)  # noqa: T201 - read by the test
    engine.dispose()


if __name__ == "__main__":
    main()
