"""The workers' batched recording equals the item-by-item one it replaced (issue 13).

To meet the throughput acceptance, the workers write a batch's outcomes with a handful
of batched statements (``_record_all``, ``journal.post_many``) instead of calling
``Ledger._record_reversal`` / ``_transfer_completed`` / ``journal.post`` once per item.
Those per-item paths stay (the workers fall back on them when a batch cannot be written
in bulk), so they are the reference: Hypothesis draws batches of transfers in many states
with provider answers of every kind, runs the worker on two copies of the same database,
one batched and one forced item by item, and requires the same rows, intents, reversals
and journal to the cent. ``post_many`` is checked the same way against ``post``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.orm import Session

from veza_ledger import (
    JournalConflictError,
    Ledger,
    LedgerError,
    UnbalancedTransactionError,
    _journal,
    _workers,
    create_engine,
    run_reversal_worker,
    run_transfer_worker,
    upgrade,
)
from veza_ledger._schema import ProviderIntent, SellerTransfer, SellerTransferReversal

AT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An upgraded SQLite database, copied for every example (migrations run once)."""
    path = tmp_path_factory.mktemp("batched") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@attrs.frozen
class _Obj:
    id: str


class _RefusedError(Exception):
    """A provider error with an HTTP status (classified like veza-payments' errors)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"[{status}] refused")
        self.status = status


class _Provider:
    """Answers per transfer as drawn: an id derived from the call, a shared id, or an error."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def _answer(self, transfer: str, made: str) -> _Obj:
        answer = self.answers.get(transfer, "ok")
        if answer == "transient":
            raise _RefusedError(503)
        if answer == "permanent":
            raise _RefusedError(400)
        return _Obj("shared" if answer == "shared" else made)

    def reverse_transfer(self, key: str, transfer_id: str, *, amount: int | None = None) -> _Obj:
        del key  # the key is random (a new intent's id); the answer must not depend on it
        return self._answer(transfer_id.removeprefix("tr_"), f"trr_{transfer_id}_{amount}")

    def create_transfer(
        self,
        key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
    ) -> _Obj:
        del currency, destination, transfer_group
        return self._answer(key, f"tr_{key}_{amount}")


def _dump(engine: sa.Engine) -> dict[str, Any]:
    """Everything the recording writes, with the random intent ids replaced by their place."""
    with engine.connect() as c:
        intents = c.execute(sa.select(ProviderIntent.__table__)).mappings().all()
        place = {i["id"]: (i["object_id"], i["seq"]) for i in intents}
        transfers = c.execute(
            sa.select(SellerTransfer.__table__).order_by(SellerTransfer.id)
        ).mappings()
        reversals = c.execute(sa.select(SellerTransferReversal.__table__)).mappings()
        entries = c.execute(
            sa.text("SELECT transaction_id, account, currency, amount FROM ledger_journal_entries")
        )
        transactions = c.execute(
            sa.text("SELECT id, kind, content_hash, description FROM ledger_journal_transactions")
        )
        return {
            "transfers": [dict(t) for t in transfers],
            "intents": sorted(
                (place[i["id"]], {k: v for k, v in i.items() if k != "id"}) for i in intents
            ),
            "reversals": sorted(
                (
                    r["provider_reversal_id"],
                    r["transfer_id"],
                    place.get(r["intent_id"]),
                    r["amount"],
                )
                for r in reversals
            ),
            "entries": sorted(tuple(e) for e in entries),
            "transactions": sorted(tuple(t) for t in transactions),
        }


@pytest.fixture
def twins(template: Path, tmp_path: Path) -> Iterator[Any]:
    """A function that copies the template twice and returns both engines."""
    engines: list[sa.Engine] = []
    counter = iter(range(10**6))

    def make() -> tuple[sa.Engine, sa.Engine]:
        n = next(counter)
        pair = []
        for side in ("batched", "item"):
            path = tmp_path / f"{side}{n}.db"
            shutil.copy(template, path)
            engine = create_engine(f"sqlite:///{path}")
            engines.append(engine)
            pair.append(engine)
        return pair[0], pair[1]

    yield make
    for engine in engines:
        engine.dispose()


def _forced_item_by_item(*_: Any, **__: Any) -> None:
    raise LedgerError("forced: record item by item")


def _run_both(
    twins: Any, seed: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    batched, item = twins()
    for engine in (batched, item):
        seed(engine)
    run(Ledger(batched, clock=lambda: AT))
    with monkeypatch.context() as patch:
        patch.setattr(_workers, "_record_all", _forced_item_by_item)
        run(Ledger(item, clock=lambda: AT))
    return _dump(batched), _dump(item)


_ANSWERS = st.sampled_from(["ok", "ok", "ok", "transient", "permanent", "shared"])


@st.composite
def _reversal_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        reversed_ = draw(st.sampled_from([0, 100, 300]))
        due = draw(st.integers(reversed_, 1000))
        out.append(
            {
                "id": f"t{i}",
                "reversed": reversed_,
                "due": due,
                "status": draw(st.sampled_from(["reversal_pending", "partially_reversed"]))
                if reversed_
                else "reversal_pending",
                "written_off": draw(st.sampled_from([0, 0, 50])),
                "open": draw(st.sampled_from([None, None, 200, 700])),
                "recorded": draw(st.booleans()),
                "answer": draw(_ANSWERS),
            }
        )
    return out


def _seed_reversals(rows: list[dict[str, Any]]) -> Any:
    def seed(engine: sa.Engine) -> None:
        intents, reversals = [], []
        for r in rows:
            seq = 0
            if r["reversed"]:
                seq += 1
                intents.append(_intent(f"{r['id']}-old", r, seq, r["reversed"], "succeeded"))
                reversals.append(
                    _reversal(f"trr_old_{r['id']}", r, f"{r['id']}-old", r["reversed"])
                )
            if r["written_off"]:
                seq += 1
                intents.append(_intent(f"{r['id']}-off", r, seq, r["written_off"], "written_off"))
            if r["open"] is not None and r["open"] <= 1000 - r["reversed"]:
                seq += 1
                intents.append(_intent(f"{r['id']}-open", r, seq, r["open"], "pending"))
                if r["recorded"]:  # a crash after recording the reversal, before the intent
                    made = f"trr_tr_{r['id']}_{r['open']}"
                    reversals.append(_reversal(made, r, f"{r['id']}-open", r["open"]))
        transfers = [
            {
                "id": r["id"],
                "seller_id": f"s{i % 2}",
                "destination": "acct_1",
                "amount": 1000,
                "currency": "EUR",
                "status": r["status"],
                "stripe_transfer_id": f"tr_{r['id']}",
                "reversal_due": r["due"],
                "reversed_amount": r["reversed"],
                "attempts": 0,
                "created_at": AT,
                "updated_at": AT,
            }
            for i, r in enumerate(rows)
        ]
        with engine.begin() as c:
            c.execute(sa.insert(SellerTransfer), transfers)
            if intents:
                c.execute(sa.insert(ProviderIntent), intents)
            if reversals:
                c.execute(sa.insert(SellerTransferReversal), reversals)

    return seed


def _intent(intent_id: str, row: dict[str, Any], seq: int, amount: int, status: str) -> Any:
    return {
        "id": intent_id,
        "kind": "reversal",
        "object_id": row["id"],
        "seq": seq,
        "seller_id": "s",
        "amount": amount,
        "currency": "EUR",
        "status": status,
        "attempts": 1,
        "first_sent_at": AT,
        "created_at": AT,
        "updated_at": AT,
    }


def _reversal(provider_id: str, row: dict[str, Any], intent_id: str, amount: int) -> Any:
    return {
        "provider_reversal_id": provider_id,
        "transfer_id": row["id"],
        "intent_id": intent_id,
        "amount": amount,
        "currency": "EUR",
        "created_at": AT,
    }


@SETTINGS
@given(rows=_reversal_batches(), batch=st.integers(1, 6))
def test_batched_reversals_record_what_item_by_item_recording_did(
    rows: list[dict[str, Any]], batch: int, twins: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _Provider({r["id"]: r["answer"] for r in rows})

    def run(ledger: Ledger) -> None:
        run_reversal_worker(ledger, provider, batch_size=batch, now=AT)

    batched, item = _run_both(twins, _seed_reversals(rows), run, monkeypatch)
    assert batched == item


@st.composite
def _transfer_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [
        {
            "id": f"t{i}",
            "status": draw(st.sampled_from(["pending", "pending", "failed"])),
            "due": draw(st.sampled_from([0, 0, 300])),
            "intent": draw(st.sampled_from([None, "pending", "pending-unsent"])),
            "answer": draw(_ANSWERS),
        }
        for i in range(draw(st.integers(1, 6)))
    ]


def _seed_transfers(rows: list[dict[str, Any]]) -> Any:
    def seed(engine: sa.Engine) -> None:
        transfers = [
            {
                "id": r["id"],
                "seller_id": f"s{i % 2}",
                "destination": "acct_1",
                "amount": 1000,
                "currency": "EUR",
                "status": r["status"],
                "reversal_due": r["due"],
                "reversed_amount": 0,
                "attempts": 1 if r["status"] == "failed" else 0,
                "next_attempt_at": AT - dt.timedelta(minutes=1)
                if r["status"] == "failed"
                else None,
                "created_at": AT,
                "updated_at": AT,
            }
            for i, r in enumerate(rows)
        ]
        intents = [
            {
                **_intent(r["id"], r, 1, 1000, "pending"),
                "kind": "transfer",
                "first_sent_at": None if r["intent"] == "pending-unsent" else AT,
            }
            for r in rows
            if r["intent"]
        ]
        with engine.begin() as c:
            c.execute(sa.insert(SellerTransfer), transfers)
            if intents:
                c.execute(sa.insert(ProviderIntent), intents)

    return seed


@SETTINGS
@given(rows=_transfer_batches(), batch=st.integers(1, 6))
def test_batched_transfers_record_what_item_by_item_recording_did(
    rows: list[dict[str, Any]], batch: int, twins: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _Provider({r["id"]: r["answer"] for r in rows})

    def run(ledger: Ledger) -> None:
        run_transfer_worker(ledger, provider, batch_size=batch, now=AT)

    batched, item = _run_both(twins, _seed_transfers(rows), run, monkeypatch)
    assert batched == item


# ------------------------------------------------------------------ journal.post_many


_POSTINGS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # few ids: replays and conflicts are common
        st.sampled_from(["k1", "k2"]),
        st.integers(1, 3),
        st.sampled_from(["x", "y"]),
        st.sampled_from(["y", "z"]),
    ).map(
        lambda p: _journal.Posting(
            p[0], p[1], [_journal.debit(p[3], "EUR", p[2]), _journal.credit(p[4], "eur", p[2])]
        )
    ),
    max_size=6,
)


def _outcomes(session: Session, postings: list[_journal.Posting]) -> list[bool | type]:
    out: list[bool | type] = []
    for p in postings:
        try:
            out.append(_journal.post(session, p.transaction_id, p.kind, p.legs))
        except LedgerError as exc:
            out.append(type(exc))
    return out


def _journal_rows(session: Session) -> Any:
    entries = session.execute(
        sa.text("SELECT transaction_id, account, currency, amount FROM ledger_journal_entries")
    )
    transactions = session.execute(
        sa.text("SELECT id, kind, content_hash FROM ledger_journal_transactions")
    )
    return sorted(tuple(e) for e in entries), sorted(tuple(t) for t in transactions)


@SETTINGS
@given(before=_POSTINGS, postings=_POSTINGS)
def test_post_many_posts_what_post_posts_one_by_one(
    before: list[_journal.Posting], postings: list[_journal.Posting], template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "journal.db"
    shutil.copy(template, path)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            _outcomes(session, before)  # what is already in the journal (errors skipped)
            reference = _outcomes(session, postings)
            expected_rows = _journal_rows(session)
            session.rollback()
        with Session(engine) as session:
            _outcomes(session, before)
            errors = [o for o in reference if isinstance(o, type)]
            if errors:
                expected = (
                    UnbalancedTransactionError
                    if UnbalancedTransactionError in errors
                    else JournalConflictError
                )
                with pytest.raises(expected):
                    _journal.post_many(session, postings)
            else:
                assert _journal.post_many(session, postings) == reference
                assert _journal_rows(session) == expected_rows
            session.rollback()
    finally:
        engine.dispose()
