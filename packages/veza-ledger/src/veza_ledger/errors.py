"""The ledger's error hierarchy: every error is a :class:`LedgerError`.

Where a built-in fits, an error also subclasses it (``LookupError`` for a missing
record, ``ValueError`` for bad input), so code that does not know veza still catches it.
"""

from veza_ledger._disputes import DisputeMismatchError
from veza_ledger._errors import (
    AmountMismatchError,
    FlowConflictError,
    FrozenRowError,
    IllegalTransitionError,
    InvalidAmountError,
    JournalConflictError,
    LedgerConfigurationError,
    LedgerError,
    NaiveDatetimeError,
    RecordNotFoundError,
    RefundExceedsCapturedError,
    SchemaOutOfDateError,
    TransferCurrencyMismatchError,
    TransferExceedsShareError,
    TransferNotAllowedError,
    TransitionConflictError,
    UnbalancedTransactionError,
)
from veza_ledger._subscriptions import ActivationRefusedError
from veza_ledger._transfers import PayoutExceedsBalanceError

__all__ = [
    "ActivationRefusedError",
    "AmountMismatchError",
    "DisputeMismatchError",
    "FlowConflictError",
    "FrozenRowError",
    "IllegalTransitionError",
    "InvalidAmountError",
    "JournalConflictError",
    "LedgerConfigurationError",
    "LedgerError",
    "NaiveDatetimeError",
    "PayoutExceedsBalanceError",
    "RecordNotFoundError",
    "RefundExceedsCapturedError",
    "SchemaOutOfDateError",
    "TransferCurrencyMismatchError",
    "TransferExceedsShareError",
    "TransferNotAllowedError",
    "TransitionConflictError",
    "UnbalancedTransactionError",
]
