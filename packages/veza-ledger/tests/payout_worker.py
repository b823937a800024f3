"""A payout worker process for the crash test (run as a script; the test kills it -9)."""

from __future__ import annotations

import sys

from veza_ledger import create_engine, run_payout_worker
from veza_payments import RetryPolicy, StripeConnect


def main() -> None:
    url, stripe_url, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
    engine = create_engine(url, pool_size=2)
    with StripeConnect(
        api_key, base_url=stripe_url, timeout=60, max_retries=RetryPolicy(total=0)
    ) as stripe:
        report = run_payout_worker(engine, stripe)
    print(report.done, report.failed)  # noqa: T201 - read by the test
    engine.dispose()


if __name__ == "__main__":
    main()
