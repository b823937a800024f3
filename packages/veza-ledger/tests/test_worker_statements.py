"""The reversal worker's SQL statements per item (issue 13's throughput acceptance).

Issue 13 made every reversal a durable intent; its acceptance allows the workers at most
20 % less throughput than before. The reversal worker read, per item, its intents, the
existing reversal, the reversed sum and the covered sum: ten statements an item against
the transfer worker's six. These reads are now made once per claimed batch, under the
same row locks; this test counts the statements (SQLAlchemy's ``before_cursor_execute``)
and checks that the batched reads give the same sums as the per-item ones did.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import sqlalchemy as sa

from veza_ledger import Ledger, run_reversal_worker
from veza_ledger._schema import ProviderIntent, SellerTransfer, SellerTransferReversal

ITEMS = 40
BATCH = 20
MAX_PER_ITEM = 6  # 5 writes per item + a few batched reads per batch (was 10)


@attrs.frozen
class _Reversal:
    id: str


class _Reverser:
    """The worker's provider protocol answering at once (the ledger's side is measured)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None]] = []

    def reverse_transfer(
        self, idempotency_key: str, transfer_id: str, *, amount: int | None = None
    ) -> _Reversal:
        self.calls.append((idempotency_key, transfer_id, amount))
        return _Reversal(f"trr_{idempotency_key}")


def _seed(engine: sa.Engine, at: dt.datetime) -> None:
    """ITEMS transfers owing 400 each; t000000 already has 100 reversed and 50 written off."""
    rows = [
        {
            "id": f"t{i:06d}",
            "order_id": None,
            "seller_id": f"s{i % 5}",
            "destination": "acct_1",
            "amount": 1000,
            "currency": "EUR",
            "status": "reversal_pending",
            "stripe_transfer_id": f"tr_{i}",
            "reversal_due": 400,
            "reversed_amount": 100 if i == 0 else 0,
            "attempts": 0,
            "created_at": at,
            "updated_at": at,
        }
        for i in range(ITEMS)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(SellerTransfer), rows)
        connection.execute(
            sa.insert(ProviderIntent),
            [
                {
                    "id": "i_old",
                    "kind": "reversal",
                    "object_id": "t000000",
                    "seq": 1,
                    "seller_id": "s0",
                    "amount": 100,
                    "currency": "EUR",
                    "status": "succeeded",
                    "provider_object_id": "trr_old",
                    "attempts": 1,
                    "created_at": at,
                    "updated_at": at,
                },
                {
                    "id": "i_off",
                    "kind": "reversal",
                    "object_id": "t000000",
                    "seq": 2,
                    "seller_id": "s0",
                    "amount": 50,
                    "currency": "EUR",
                    "status": "written_off",
                    "provider_object_id": None,
                    "attempts": 1,
                    "created_at": at,
                    "updated_at": at,
                },
            ],
        )
        connection.execute(
            sa.insert(SellerTransferReversal),
            [
                {
                    "provider_reversal_id": "trr_old",
                    "transfer_id": "t000000",
                    "intent_id": "i_old",
                    "amount": 100,
                    "currency": "EUR",
                    "created_at": at,
                }
            ],
        )


def test_reversal_worker_batches_its_reads(ledger: Ledger, engine: sa.Engine) -> None:
    at = ledger.now()
    _seed(engine, at)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    reverser = _Reverser()
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        report = run_reversal_worker(ledger, reverser, batch_size=BATCH, now=at)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)

    assert len(report.done) == ITEMS
    assert len(statements) <= MAX_PER_ITEM * ITEMS, len(statements)
    # the batched sums are the per-item ones: 400 - 100 reversed - 50 written off
    assert reverser.calls[0][1:] == ("tr_0", 250)
    assert {amount for _, _, amount in reverser.calls[1:]} == {400}
    first = ledger.transfer("t000000")
    assert (first.reversed_amount, first.status) == (350, "partially_reversed")
    assert {ledger.transfer(f"t{i:06d}").reversed_amount for i in range(1, ITEMS)} == {400}
    # a second run finds nothing due and calls nobody
    assert run_reversal_worker(ledger, reverser, batch_size=BATCH, now=at).done == []
    assert len(reverser.calls) == ITEMS
