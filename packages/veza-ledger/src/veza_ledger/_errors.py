"""The veza-ledger error hierarchy: ``LedgerError`` and what derives from it."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error veza-ledger raises on purpose."""


class LedgerConfigurationError(LedgerError, ValueError):
    """A setting (environment variable, engine, argument) is invalid."""


class InvalidAmountError(LedgerConfigurationError):
    """An amount is not a positive int of minor units that fits the ``BIGINT`` columns.

    Raised before any SQL, so the caller never sees the database's own ``DataError``
    (PostgreSQL) or ``OverflowError`` (SQLite) for a number the ledger cannot store.

    Attributes:
        field: The argument's name (``amount``, ``fee_amount``...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NaiveDatetimeError(LedgerConfigurationError):
    """A datetime without a time zone reached the ledger (an argument or the clock).

    Raised before any SQL: a naive time in a money ledger is ambiguous (which zone?
    which side of a DST change?), and SQLAlchemy would otherwise wrap the column
    type's refusal in a ``StatementError`` that names neither the field nor the fix.

    Attributes:
        field: The argument's name (``retry_at``, ``now``, ``clock``...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RecordNotFoundError(LedgerError, LookupError):
    """No row with that id (or provider id)."""


class FrozenRowError(LedgerError, AttributeError):
    """A row the ledger returned was written to.

    What a service returns is a frozen snapshot of the row as its transaction committed:
    setting an attribute would change nothing in the database (the row is detached) and
    would let the object disagree with the books, so it is refused. Change a row through
    the service that owns its state machine; read it again for its new state.
    """


class IllegalTransitionError(LedgerError, ValueError):
    """The transition is not in the machine's table.

    Attributes:
        machine: ``order``, ``refund``, ``transfer``, ``payout`` or ``subscription``.
        object_id: The row's id.
        from_status: Its current status.
        to_status: The status asked for.
    """

    def __init__(self, machine: str, object_id: str, from_status: str, to_status: str) -> None:
        super().__init__(
            f"{machine} {object_id}: {from_status} -> {to_status} is not an allowed transition"
        )
        self.machine = machine
        self.object_id = object_id
        self.from_status = from_status
        self.to_status = to_status


class TransitionConflictError(LedgerError):
    """Another writer changed the row first (the compare-and-set found another status)."""


class RefundExceedsCapturedError(LedgerError, ValueError):
    """Succeeded plus pending refunds would exceed what the order captured."""


class TransferNotAllowedError(LedgerError, ValueError):
    """A seller transfer the order it names cannot carry (raised before any row is written).

    Attributes:
        order_id: The order the transfer was for.
    """

    def __init__(self, order_id: str, message: str) -> None:
        super().__init__(message)
        self.order_id = order_id


class TransferCurrencyMismatchError(TransferNotAllowedError):
    """The transfer's currency is not its order's.

    A USD transfer on an EUR order would make the EUR seller share look paid with
    dollars: the journal's per-currency balances would never net to zero again.

    Attributes:
        order_currency: The order's currency.
        currency: The transfer's.
    """

    def __init__(self, order_id: str, *, order_currency: str, currency: str) -> None:
        super().__init__(
            order_id,
            f"transfer in {currency} on order {order_id}, whose currency is {order_currency}",
        )
        self.order_currency = order_currency
        self.currency = currency


class TransferExceedsShareError(TransferNotAllowedError):
    """The order's transfers would add up to more than the seller's share of the capture.

    Attributes:
        share: ``seller_share(order)``: captured minus the (scaled) fee, minor units.
        transferred: What the order's earlier transfers already carry (gross: paid
            plus netted).
        requested: This transfer's amount.
    """

    def __init__(self, order_id: str, *, share: int, transferred: int, requested: int) -> None:
        super().__init__(
            order_id,
            f"a transfer of {requested} on order {order_id} exceeds the seller's share: "
            f"{share} of the capture, {transferred} already transferred",
        )
        self.share = share
        self.transferred = transferred
        self.requested = requested


class FlowConflictError(LedgerError):
    """A money flow step (:mod:`veza_ledger.flows`) met rows that are not what it asked for.

    A retried ``start_payment`` whose order id exists with another amount, buyer or
    provider id; a refund started on an order that has no provider payment id.
    """


class JournalConflictError(LedgerError):
    """A journal transaction id was posted before with different entries."""


class UnbalancedTransactionError(LedgerError, ValueError):
    """Debits and credits of a journal transaction differ for some currency."""


class SchemaOutOfDateError(LedgerError):
    """The database schema is behind (or ahead of) this version of veza-ledger."""


class AmountMismatchError(LedgerError, ValueError):
    """A provider's amount cannot be booked as it stands (0, or more than fits).

    The ledger never clips or assumes a provider amount: what it cannot book is refused
    with this error (API) or kept as an open finding carrying both amounts (sweeps and
    webhooks).

    Attributes:
        ledger_amount: What the ledger has (or asked for).
        provider_amount: What the provider reports.
    """

    def __init__(self, message: str, *, ledger_amount: int, provider_amount: int) -> None:
        super().__init__(message)
        self.ledger_amount = ledger_amount
        self.provider_amount = provider_amount
