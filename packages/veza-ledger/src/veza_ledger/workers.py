"""The workers that call providers (transfers, reversals, payouts) and the webhook log's retention.

Each is safe under any number of processes: rows are claimed with leases, and every
provider call is written as an intent before it is made.
"""

from veza_ledger._payout_worker import cancel_parked_payout, run_payout_worker
from veza_ledger._retention import (
    DEFAULT_RETENTION_DAYS,
    retention_days_from_env,
    sweep_webhook_log,
)
from veza_ledger._workers import (
    WorkerReport,
    retry_transfer_now,
    run_forever,
    run_reversal_worker,
    run_transfer_worker,
)

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "WorkerReport",
    "cancel_parked_payout",
    "retention_days_from_env",
    "retry_transfer_now",
    "run_forever",
    "run_payout_worker",
    "run_reversal_worker",
    "run_transfer_worker",
    "sweep_webhook_log",
]
