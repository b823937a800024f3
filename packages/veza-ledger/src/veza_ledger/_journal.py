"""The double-entry journal: append-only, balanced per currency, idempotent by id.

A transaction is a set of legs ``(account, currency, amount)`` where a positive amount
is a debit and a negative one a credit; per currency they sum to zero. The transaction
id is its idempotency key (TigerBeetle's and Formance's rule): posting the same id with
the same legs again is a no-op, with different legs it raises
:class:`JournalConflictError`. Nothing updates or deletes entries (the migrations add
triggers that refuse it); corrections are new transactions. Balances are derived.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from veza_ledger._base import Service
from veza_ledger._errors import JournalConflictError, UnbalancedTransactionError
from veza_ledger._schema import JournalEntry, JournalTransaction
from veza_ledger._upsert import insert_ignore


@attrs.frozen
class Leg:
    """One journal line: debit when ``amount > 0``, credit when ``amount < 0``."""

    account: str
    currency: str
    amount: int


def debit(account: str, currency: str, amount: int) -> Leg:
    """A debit of ``amount`` (> 0) minor units."""
    return Leg(account, currency, amount)


def credit(account: str, currency: str, amount: int) -> Leg:
    """A credit of ``amount`` (> 0) minor units."""
    return Leg(account, currency, -amount)


def _normalise(legs: Iterable[Leg]) -> list[Leg]:
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for leg in legs:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            msg = f"journal amounts are int minor units, got {leg.amount!r}"
            raise UnbalancedTransactionError(msg)
        merged[(leg.account, leg.currency.upper())] += leg.amount
    out = [Leg(a, c, v) for (a, c), v in sorted(merged.items()) if v]
    sums: dict[str, int] = defaultdict(int)
    for leg in out:
        sums[leg.currency] += leg.amount
    unbalanced = {c: s for c, s in sums.items() if s}
    if unbalanced:
        msg = f"debits and credits differ: {unbalanced}"
        raise UnbalancedTransactionError(msg)
    return out


def _hash(kind: str, legs: list[Leg]) -> str:
    text = json.dumps([kind, [[leg.account, leg.currency, leg.amount] for leg in legs]])
    return hashlib.sha256(text.encode()).hexdigest()


def post(
    session: Session,
    transaction_id: str,
    kind: str,
    legs: Iterable[Leg],
    *,
    description: str | None = None,
) -> bool:
    """Post a balanced transaction in ``session``'s transaction.

    Returns:
        ``True`` when posted, ``False`` when the same transaction was already there.

    Raises:
        UnbalancedTransactionError: The legs do not balance per currency (or are empty).
        JournalConflictError: The id was posted before with different legs.
    """
    normalised = _normalise(legs)
    if not normalised:
        msg = f"transaction {transaction_id} has no legs"
        raise UnbalancedTransactionError(msg)
    digest = _hash(kind, normalised)
    inserted = insert_ignore(
        session,
        JournalTransaction,
        {"id": transaction_id, "kind": kind, "content_hash": digest, "description": description},
        index_elements=["id"],
    )
    if not inserted:
        existing = session.scalar(
            sa.select(JournalTransaction.content_hash).where(
                JournalTransaction.id == transaction_id
            )
        )
        if existing != digest:
            msg = f"journal transaction {transaction_id} was posted before with other entries"
            raise JournalConflictError(msg)
        return False
    session.execute(
        sa.insert(JournalEntry),
        [
            {
                "transaction_id": transaction_id,
                "account": leg.account,
                "currency": leg.currency,
                "amount": leg.amount,
            }
            for leg in normalised
        ],
    )
    return True


@attrs.frozen
class Posting:
    """One transaction for :func:`post_many`: its id (the idempotency key), kind and legs."""

    transaction_id: str
    kind: str
    legs: Sequence[Leg]
    description: str | None = None


def post_many(session: Session, postings: Sequence[Posting]) -> list[bool]:
    """Post several balanced transactions with :func:`post`'s rules, in three statements.

    A worker records a batch of provider outcomes in one database transaction; posting
    each with :func:`post` cost two statements per posting (the transaction, then its
    entries). Here every transaction is inserted by one ``INSERT … ON CONFLICT DO
    NOTHING RETURNING id``, the content hashes of the ids already there are read in one
    ``SELECT`` (only when there are any), and the new transactions' entries go in one
    ``INSERT``. The rules are :func:`post`'s: the same id with the same legs is a no-op
    (also twice within ``postings``), with other legs :class:`JournalConflictError`.

    Returns:
        For each posting, in order, whether it was posted (``False``: already there).

    Raises:
        UnbalancedTransactionError: Some legs do not balance per currency (or are empty),
            checked for every posting before any SQL.
        JournalConflictError: An id was posted before (or earlier in ``postings``) with
            different legs.
    """
    prepared: list[tuple[Posting, list[Leg], str]] = []
    for posting in postings:
        normalised = _normalise(posting.legs)
        if not normalised:
            msg = f"transaction {posting.transaction_id} has no legs"
            raise UnbalancedTransactionError(msg)
        prepared.append((posting, normalised, _hash(posting.kind, normalised)))
    first: dict[str, tuple[list[Leg], str]] = {}
    rows: list[dict[str, Any]] = []
    for posting, normalised, digest in prepared:
        seen = first.get(posting.transaction_id)
        if seen is None:
            first[posting.transaction_id] = (normalised, digest)
            rows.append(
                {
                    "id": posting.transaction_id,
                    "kind": posting.kind,
                    "content_hash": digest,
                    "description": posting.description,
                }
            )
        elif seen[1] != digest:
            msg = f"journal transaction {posting.transaction_id} is posted twice with other entries"
            raise JournalConflictError(msg)
    if not rows:
        return []
    inserted = _insert_new(session, rows)
    existing = [row["id"] for row in rows if row["id"] not in inserted]
    if existing:
        found = session.execute(
            sa.select(JournalTransaction.id, JournalTransaction.content_hash).where(
                JournalTransaction.id.in_(existing)
            )
        )
        hashes = {row[0]: row[1] for row in found}
        for transaction_id in existing:
            if hashes.get(transaction_id) != first[transaction_id][1]:
                msg = f"journal transaction {transaction_id} was posted before with other entries"
                raise JournalConflictError(msg)
    entries = [
        {
            "transaction_id": tid,
            "account": leg.account,
            "currency": leg.currency,
            "amount": leg.amount,
        }
        for row in rows
        if (tid := row["id"]) in inserted
        for leg in first[tid][0]
    ]
    if entries:
        session.execute(sa.insert(JournalEntry), entries)
    claimed: set[str] = set()
    out: list[bool] = []
    for posting, _, _ in prepared:  # only the first posting of a new id counts as posted
        tid = posting.transaction_id
        out.append(tid in inserted and tid not in claimed)
        claimed.add(tid)
    return out


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the transactions whose id is new (one statement); the ids inserted."""
    table: Any = JournalTransaction.__table__
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
    # executemany with RETURNING: SQLAlchemy sends one multi-row INSERT per 1000 rows
    return set(session.scalars(statement, rows))


def balance(session: Session, account: str, currency: str) -> int:
    """Debits minus credits of ``account`` in ``currency``."""
    total = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(JournalEntry.amount), 0)).where(
            JournalEntry.account == account, JournalEntry.currency == currency.upper()
        )
    )
    return int(total or 0)


def trial_balance(session: Session) -> Mapping[str, int]:
    """Net of every entry per currency: zero for each, always, or the books are broken."""
    rows = session.execute(
        sa.select(JournalEntry.currency, sa.func.sum(JournalEntry.amount)).group_by(
            JournalEntry.currency
        )
    )
    return {currency: int(total) for currency, total in rows}


def balances(session: Session, *, prefix: str = "") -> Mapping[tuple[str, str], int]:
    """Every account's balance (optionally those starting with ``prefix``)."""
    query = sa.select(
        JournalEntry.account, JournalEntry.currency, sa.func.sum(JournalEntry.amount)
    ).group_by(JournalEntry.account, JournalEntry.currency)
    if prefix:
        query = query.where(JournalEntry.account.startswith(prefix, autoescape=True))
    return {(a, c): int(t) for a, c, t in session.execute(query)}


class Journal(Service):
    """The journal's reads and manual corrections (``ledger.journal``)."""

    def balance(self, account: str, currency: str) -> int:
        """Debits minus credits of ``account`` in ``currency`` (derived from entries)."""
        with self._transaction() as session:
            return balance(session, account, currency)

    def trial_balance(self) -> Mapping[str, int]:
        """Net of all entries per currency: every value is zero, or the books are broken."""
        with self._transaction() as session:
            return trial_balance(session)

    def balances(self, *, prefix: str = "") -> Mapping[tuple[str, str], int]:
        """Every account's balance by ``(account, currency)``."""
        with self._transaction() as session:
            return balances(session, prefix=prefix)

    def post_correction(
        self, transaction_id: str, legs: Iterable[Leg], *, description: str
    ) -> bool:
        """Post a manual, balanced correction (entries are never edited; see the guide).

        Returns:
            Whether it was posted (``False``: the same correction was already there).
        """
        with self._transaction() as session:
            return post(
                session,
                f"correction:{transaction_id}",
                "correction",
                legs,
                description=description,
            )
