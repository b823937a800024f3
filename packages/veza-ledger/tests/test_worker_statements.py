"""The workers' SQL statements per claimed batch (issue 13's throughput acceptance).

Issue 13 made every provider call a durable intent; its acceptance allows the workers at
most 20 % less throughput than before intents, which wrote three statements an item. The
intents first cost six (transfers) and five to ten (reversals) statements an item:
a read and an insert of each intent, then per outcome the intent's update, the row's
update, the reversal's insert and the journal's two inserts. Now each claimed batch costs
a fixed number of statements whatever its size: the claim and the lease are one
``UPDATE … RETURNING``, the intents are read and inserted once per batch, and the
outcomes are written with one statement per kind of write (executemany / one multi-row
insert). These tests count the statements (SQLAlchemy's ``before_cursor_execute``; on
SQLite that includes each transaction's ``BEGIN IMMEDIATE``) and check that the batched
writes leave the rows, the intents and the journal as the per-item ones did.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import sqlalchemy as sa

from veza_ledger import Accounts, Ledger, run_reversal_worker, run_transfer_worker
from veza_ledger._schema import ProviderIntent, SellerTransfer, SellerTransferReversal

ITEMS = 40
BATCH = 20
# per claimed batch (was 5 to 10 per item): claim+lease, read intents, insert intents (one
# transaction); lock the rows, read intents, read reversals, update intents, insert
# reversals, insert journal transactions, insert entries, update rows (another); and
# BEGIN IMMEDIATE twice on SQLite
MAX_PER_BATCH = 13
# the run's last claim finds nothing (+ its BEGIN IMMEDIATE on SQLite)
MAX_PER_RUN = 2


def _budget(items: int) -> int:
    return MAX_PER_BATCH * math.ceil(items / BATCH) + MAX_PER_RUN


@contextmanager
def _counting(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


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


def test_reversal_worker_writes_per_batch_not_per_item(ledger: Ledger, engine: sa.Engine) -> None:
    at = ledger.now()
    _seed(engine, at)
    reverser = _Reverser()
    with _counting(engine) as statements:
        report = run_reversal_worker(ledger, reverser, batch_size=BATCH, now=at)

    assert len(report.done) == ITEMS
    assert len(statements) <= _budget(ITEMS), (len(statements), statements)
    # the batched sums are the per-item ones: 400 - 100 reversed - 50 written off
    assert reverser.calls[0][1:] == ("tr_0", 250)
    assert {amount for _, _, amount in reverser.calls[1:]} == {400}
    first = ledger.transfers.get("t000000")
    assert (first.reversed_amount, first.status) == (350, "partially_reversed")
    others = [ledger.transfers.get(f"t{i:06d}") for i in range(1, ITEMS)]
    assert {(t.reversed_amount, t.status, t.leased_until) for t in others} == {
        (400, "partially_reversed", None)
    }
    # each call recorded against its intent, as a reversal row and in the journal
    for key, _, amount in reverser.calls:
        intent = ledger.provider_intents.get(key)
        assert (intent.status, intent.provider_object_id, intent.amount) == (
            "succeeded",
            f"trr_{key}",
            amount,
        )
    assert len(ledger.transfers.reversals_of("t000001")) == 1
    # s0 owned t0, t5, ...: 8 transfers; 250 + 7 x 400 came back (the 100 was seeded bare)
    assert ledger.journal.balance(Accounts.connected_funding("s0"), "EUR") == 250 + 7 * 400
    # a second run finds nothing due and calls nobody
    assert run_reversal_worker(ledger, reverser, batch_size=BATCH, now=at).done == []
    assert len(reverser.calls) == ITEMS


class _Creator:
    """The transfer worker's provider protocol answering at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str | None]] = []

    def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
    ) -> _Reversal:
        self.calls.append((idempotency_key, amount, transfer_group))
        return _Reversal(f"tr_{idempotency_key}")


def _seed_pending(engine: sa.Engine, at: dt.datetime) -> None:
    """ITEMS transfers of 1000: most pending; every 4th failed and due again; t000003
    owes 300 already (a refund landed before it was paid)."""
    rows = [
        {
            "id": f"t{i:06d}",
            "order_id": None,
            "seller_id": f"s{i % 5}",
            "destination": "acct_1",
            "amount": 1000,
            "currency": "EUR",
            "status": "failed" if i % 4 == 0 else "pending",
            "reversal_due": 300 if i == 3 else 0,
            "reversed_amount": 0,
            "attempts": 1 if i % 4 == 0 else 0,
            "next_attempt_at": at - dt.timedelta(minutes=1) if i % 4 == 0 else None,
            "created_at": at,
            "updated_at": at,
        }
        for i in range(ITEMS)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(SellerTransfer), rows)


def test_transfer_worker_writes_per_batch_not_per_item(ledger: Ledger, engine: sa.Engine) -> None:
    at = ledger.now()
    _seed_pending(engine, at)
    creator = _Creator()
    revive = sum(1 for i in range(ITEMS) if i % 4 == 0)  # one more UPDATE in some batches
    with _counting(engine) as statements:
        report = run_transfer_worker(ledger, creator, batch_size=BATCH, now=at)

    assert sorted(report.done) == [f"t{i:06d}" for i in range(ITEMS)]
    assert len(statements) <= _budget(ITEMS) + min(revive, math.ceil(ITEMS / BATCH)), (
        len(statements),
        statements,
    )
    assert sorted(key for key, _, _ in creator.calls) == sorted(report.done)
    statuses: dict[str, int] = {}
    for i in range(ITEMS):
        transfer = ledger.transfers.get(f"t{i:06d}")
        assert transfer.stripe_transfer_id == f"tr_{transfer.id}"
        assert transfer.leased_until is None
        assert transfer.next_attempt_at is None
        statuses[transfer.status] = statuses.get(transfer.status, 0) + 1
        intent = ledger.provider_intents.get(transfer.id)
        assert (intent.status, intent.provider_object_id, intent.amount, intent.kind) == (
            "succeeded",
            f"tr_{transfer.id}",
            1000,
            "transfer",
        )
        assert intent.first_sent_at is not None
    # the one with a refund landed before the payment goes on to its reversal
    assert statuses == {"completed": ITEMS - 1, "reversal_pending": 1}
    assert ledger.transfers.get("t000003").status == "reversal_pending"
    # every payment journaled once: 8 transfers of 1000 per seller
    for seller in range(5):
        assert ledger.journal.balance(Accounts.connected_funding(f"s{seller}"), "EUR") == -8 * 1000
        assert ledger.journal.balance(Accounts.seller_payable(f"s{seller}"), "EUR") == 8 * 1000
    assert run_transfer_worker(ledger, creator, batch_size=BATCH, now=at).done == []
    assert len(creator.calls) == ITEMS


def test_a_batch_that_cannot_be_written_in_bulk_is_recorded_item_by_item(
    ledger: Ledger, engine: sa.Engine
) -> None:
    """One bad outcome (a provider id already recorded for another transfer) rolls the
    batched write back; the others are then recorded one by one and the bad one is left
    pending for the next run (its lease runs out)."""
    at = ledger.now()
    _seed_pending(engine, at)
    creator = _Creator()

    def create(key: str, **kwargs: Any) -> _Reversal:
        result = _Creator.create_transfer(creator, key, **kwargs)
        return _Reversal("tr_same") if key in {"t000001", "t000002"} else result

    provider = type("P", (), {"create_transfer": staticmethod(create)})()
    report = run_transfer_worker(ledger, provider, batch_size=BATCH, now=at)

    assert "t000002" not in report.done and len(report.done) == ITEMS - 1
    assert ledger.transfers.get("t000001").stripe_transfer_id == "tr_same"
    assert ledger.transfers.get("t000002").status == "pending"
    assert ledger.provider_intents.get("t000002").status == "pending"
    assert ledger.transfers.get("t000005").status == "completed"
