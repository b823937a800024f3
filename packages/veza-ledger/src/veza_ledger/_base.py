"""What every service of the ledger shares: sessions, compare-and-set moves, accounts.

A move reads the row's status, checks the machine's table, then applies
``UPDATE … SET status = :to WHERE id = :id AND status = :from``. Two writers that read
the same status cannot both succeed: the second matches no row and gets
:class:`TransitionConflictError` (on PostgreSQL it waits for the first to commit, then
re-evaluates the ``WHERE``; on SQLite writers are serialised by ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from veza_ledger._engine import configure_engine
from veza_ledger._errors import (
    InvalidAmountError,
    LedgerConfigurationError,
    NaiveDatetimeError,
    RecordNotFoundError,
    TransitionConflictError,
)
from veza_ledger._machines import Machine
from veza_ledger._schema import Base, freeze
from veza_ledger._types import utcnow

M = TypeVar("M", bound=Base)


def _text_column(row: Base, name: str) -> str:
    """``row``'s loaded value of the string column ``name`` (the moves are generic over models).

    Read through SQLAlchemy's inspection API rather than ``getattr`` so a model without
    the column fails loudly (``KeyError``) instead of reading some other attribute.
    """
    value = sa.inspect(row).attrs[name].value
    if not isinstance(value, str):
        msg = f"{type(row).__name__}.{name} is {value!r}, not a string"
        raise TypeError(msg)
    return value


CURRENCY_LENGTH = 3

MAX_AMOUNT = 2**63 - 1
"""The largest amount the ``BIGINT`` money columns (and journal sums) can hold."""


def new_id() -> str:
    """A fresh row id (32 hex digits) when the caller does not bring one."""
    return uuid.uuid4().hex


def check_money(amount: object, currency: object, *, field: str = "amount") -> tuple[int, str]:
    """Validate integer minor units (up to :data:`MAX_AMOUNT`) and an ISO 4217-shaped code.

    Raises:
        InvalidAmountError: Before any SQL, naming ``field``, so an out-of-range number is
            never the database's raw ``DataError``.
        LedgerConfigurationError: The currency is not a three-letter code.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        msg = f"{field} must be a positive int of minor units up to {MAX_AMOUNT}, got {amount!r}"
        raise InvalidAmountError(field, msg)
    code = str(currency).strip().upper()
    if len(code) != CURRENCY_LENGTH or not code.isalpha() or not code.isascii():
        msg = f"currency must be an ISO 4217 code, got {currency!r}"
        raise LedgerConfigurationError(msg)
    return amount, code


@overload
def check_aware(value: dt.datetime, field: str) -> dt.datetime: ...
@overload
def check_aware(value: dt.datetime | None, field: str) -> dt.datetime | None: ...
def check_aware(value: object, field: str) -> dt.datetime | None:
    """``value`` unchanged if it is ``None`` or a timezone-aware datetime.

    Raises:
        NaiveDatetimeError: Before any SQL, naming ``field`` (the column type would refuse
            it too, but wrapped in SQLAlchemy's ``StatementError``).
    """
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        msg = f"{field} must be a timezone-aware datetime (e.g. in dt.UTC), got {value!r}"
        raise NaiveDatetimeError(field, msg)
    return value


def check_id(value: object, what: str) -> str:
    """A non-empty id of at most 64 characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        msg = f"{what} must be a non-empty string of at most 64 characters, got {value!r}"
        raise LedgerConfigurationError(msg)
    return value


class Accounts:
    """Journal account names (documented in the ledger guide)."""

    PSP_CLEARING = "psp_clearing"
    """Asset: money the payment service provider holds for the platform."""
    PLATFORM_FEES = "platform_fee_revenue"
    """Revenue: the platform's fee on orders."""
    STRIPE_BALANCE = "stripe_balance"
    """Asset: the platform's Stripe balance, which funds transfers."""
    WRITE_OFFS = "platform_write_offs"
    """Expense: seller debts the platform gave up on (a parked reversal written off)."""

    @staticmethod
    def seller_payable(seller_id: str) -> str:
        """Liability: what the platform owes the seller.

        ``balance`` is debits minus credits, so it is negative while the platform owes
        the seller and positive while the seller owes the platform (a refund after the
        transfer, until the reversal).
        """
        return f"seller_payable:{seller_id}"

    @staticmethod
    def connected_balance(seller_id: str) -> str:
        """Memo asset: the seller's Stripe connected-account balance."""
        return f"connected_balance:{seller_id}"

    @staticmethod
    def connected_funding(seller_id: str) -> str:
        """Memo: transfers received by the connected account, net of reversals."""
        return f"connected_funding:{seller_id}"

    @staticmethod
    def connected_paid_out(seller_id: str) -> str:
        """Memo: what the connected account paid out to the seller's bank."""
        return f"connected_paid_out:{seller_id}"


class Core:
    """One engine, one session factory and one clock, shared by every service of a ledger.

    The services hold this, not each other: what one needs from another is passed to
    its constructor explicitly (see :class:`veza_ledger.Ledger`), so no part reaches
    another through an overridden method.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = configure_engine(engine)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock

    def now(self) -> dt.datetime:
        """The ledger's clock (UTC, aware); a clock returning naive times is refused."""
        return check_aware(self._clock(), "clock")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session:
            with session.begin():
                yield session
            # committed: every row it loaded or wrote is now a frozen snapshot
            freeze(session.identity_map.values())

    @property
    def pg(self) -> bool:
        """Whether the engine is PostgreSQL (row locks are taken there only)."""
        return self.engine.dialect.name == "postgresql"

    def get(self, session: Session, model: type[M], object_id: str, *, lock: bool = False) -> M:
        """The row ``object_id`` of ``model``, re-read (locked on PostgreSQL if asked).

        Raises:
            RecordNotFoundError: No such row.
        """
        row = session.get(
            model,
            object_id,
            populate_existing=True,  # another transaction may have moved it
            with_for_update=lock and self.pg,
        )
        if row is None:
            msg = f"no {model.__name__} with id {object_id!r}"
            raise RecordNotFoundError(msg)
        return row

    def move(
        self,
        session: Session,
        model: type[M],
        machine: Machine,
        row: M,
        to_status: str,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """Compare-and-set ``row`` to ``to_status`` (checked against ``machine``)."""
        current = _text_column(row, "status")
        object_id = _text_column(row, "id")
        machine.check(object_id, current, to_status=to_status)
        self.cas(session, model, row, current, to_status, values=values)

    def cas(
        self,
        session: Session,
        model: type[M],
        row: M,
        from_status: str,
        to_status: str,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """``UPDATE … WHERE status = from_status``; a lost race is a typed error.

        Raises:
            TransitionConflictError: Another writer moved the row first.
        """
        object_id = _text_column(row, "id")
        columns = sa.inspect(model).columns
        changes = {"status": to_status, "updated_at": self.now(), **(values or {})}
        result = session.execute(
            sa.update(model)
            .where(columns["id"] == object_id, columns["status"] == from_status)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            msg = (
                f"{model.__name__} {object_id} left {from_status!r} before this transition to "
                f"{to_status!r} (another writer applied one first)"
            )
            raise TransitionConflictError(msg)
        for name, value in changes.items():
            set_committed_value(row, name, value)  # mirror the UPDATE; nothing left to flush


class Service:
    """Base of the ledger's services: the shared :class:`Core`, and nothing to override.

    Args:
        core: The engine, sessions and clock every service of one ledger shares.
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    def __repr__(self) -> str:
        url = self._core.engine.url.render_as_string(hide_password=True)
        return f"{type(self).__name__}({url!r})"

    def _now(self) -> dt.datetime:
        return self._core.now()

    def _transaction(self) -> AbstractContextManager[Session]:
        return self._core.transaction()

    @property
    def _pg(self) -> bool:
        return self._core.pg

    def _get(self, session: Session, model: type[M], object_id: str, *, lock: bool = False) -> M:
        return self._core.get(session, model, object_id, lock=lock)

    def _move(
        self,
        session: Session,
        model: type[M],
        machine: Machine,
        row: M,
        to_status: str,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self._core.move(session, model, machine, row, to_status, values=values)

    def _cas(
        self,
        session: Session,
        model: type[M],
        row: M,
        from_status: str,
        to_status: str,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self._core.cas(session, model, row, from_status, to_status, values=values)
