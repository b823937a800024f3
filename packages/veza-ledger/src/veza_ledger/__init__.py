"""veza-ledger: a SQLAlchemy money ledger that loses nothing and counts nothing twice.

State machines with compare-and-set transitions, a balanced append-only double-entry
journal, idempotent provider events, the webhook log with its retention sweep, and
migrations that ship inside the package.
"""

import warnings

from veza_ledger._allocation import allocate_reversals
from veza_ledger._base import Accounts
from veza_ledger._config import LedgerConfig
from veza_ledger._disputes import DisputeAccounts, DisputeMismatchError
from veza_ledger._engine import configure_engine, create_engine
from veza_ledger._errors import (
    AmountMismatchError,
    FlowConflictError,
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
from veza_ledger._events import EventOutcome, ProviderEvent, event_from_hyperswitch
from veza_ledger._intents import PARKED_RULE, classify_provider_error
from veza_ledger._journal import Leg, credit, debit
from veza_ledger._late_captures import bookable_capture, capture_amount_problem
from veza_ledger._ledger import Ledger
from veza_ledger._machines import (
    DISPUTE,
    INTENT,
    MACHINES,
    ORDER,
    PAYOUT,
    REFUND,
    SUBSCRIPTION,
    TRANSFER,
    Machine,
)
from veza_ledger._migrations import (
    VERSION_TABLE,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from veza_ledger._orders import fee_captured, refund_split, seller_share
from veza_ledger._payout_worker import (
    PayoutCreator,
    PayoutFinder,
    cancel_parked_payout,
    run_payout_worker,
)
from veza_ledger._provider import (
    LegacyTransferFinder,
    PaymentState,
    ProviderView,
    RefundState,
    ReversalFinder,
    TransferCreator,
    TransferFinder,
    TransferReverser,
    TransferState,
)
from veza_ledger._retention import (
    DEFAULT_RETENTION_DAYS,
    retention_days_from_env,
    sweep_webhook_log,
)
from veza_ledger._rules import RULES, Problem, ReconcileSettings, Rule
from veza_ledger._schema import (
    Dispute,
    Finding,
    JournalEntry,
    JournalTransaction,
    Order,
    Override,
    ProcessedEvent,
    ProviderIntent,
    Refund,
    SellerPayout,
    SellerTransfer,
    SellerTransferReversal,
    Subscription,
    WebhookLogRow,
    metadata,
)
from veza_ledger._schema_check import SchemaDrift, schema_drift
from veza_ledger._secret import Secret
from veza_ledger._subscriptions import ActivationRefusedError, Eligibility, EligibilityReason
from veza_ledger._sweep import SweepItem, SweepReport, run_sweep
from veza_ledger._transfers import PayoutExceedsBalanceError, reversal_key
from veza_ledger._version import __version__
from veza_ledger._webhook_log import SQLWebhookLog
from veza_ledger._workers import (
    WorkerReport,
    retry_transfer_now,
    run_forever,
    run_reversal_worker,
    run_transfer_worker,
)

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "DISPUTE",
    "INTENT",
    "MACHINES",
    "ORDER",
    "PARKED_RULE",
    "PAYOUT",
    "REFUND",
    "RULES",
    "SUBSCRIPTION",
    "TRANSFER",
    "VERSION_TABLE",
    "Accounts",
    "ActivationRefusedError",
    "AmountMismatchError",
    "Dispute",
    "DisputeAccounts",
    "DisputeMismatchError",
    "Eligibility",
    "EligibilityReason",
    "EventOutcome",
    "Finding",
    "FlowConflictError",
    "IllegalTransitionError",
    "InvalidAmountError",
    "JournalConflictError",
    "JournalEntry",
    "JournalTransaction",
    "Ledger",
    "LedgerConfig",
    "LedgerConfigurationError",
    "LedgerError",
    "Leg",
    "LegacyTransferFinder",
    "Machine",
    "NaiveDatetimeError",
    "Order",
    "Override",
    "PaymentState",
    "PayoutCreator",
    "PayoutExceedsBalanceError",
    "PayoutFinder",
    "Problem",
    "ProcessedEvent",
    "ProviderEvent",
    "ProviderIntent",
    "ProviderView",
    "ReconcileSettings",
    "RecordNotFoundError",
    "Refund",
    "RefundExceedsCapturedError",
    "RefundState",
    "ReversalFinder",
    "Rule",
    "SQLWebhookLog",
    "SchemaDrift",
    "SchemaOutOfDateError",
    "Secret",
    "SellerPayout",
    "SellerTransfer",
    "SellerTransferReversal",
    "Subscription",
    "SweepItem",
    "SweepReport",
    "TransferCreator",
    "TransferCurrencyMismatchError",
    "TransferExceedsShareError",
    "TransferFinder",
    "TransferNotAllowedError",
    "TransferReverser",
    "TransferState",
    "TransitionConflictError",
    "UnbalancedTransactionError",
    "WebhookLogRow",
    "WorkerReport",
    "__version__",
    "allocate_reversals",
    "bookable_capture",
    "cancel_parked_payout",
    "capture_amount_problem",
    "check_schema",
    "classify_provider_error",
    "configure_engine",
    "create_engine",
    "credit",
    "current_revision",
    "debit",
    "downgrade",
    "event_from_hyperswitch",
    "fee_captured",
    "head_revision",
    "metadata",
    "refund_split",
    "retention_days_from_env",
    "retry_transfer_now",
    "reversal_key",
    "run_forever",
    "run_payout_worker",
    "run_reversal_worker",
    "run_sweep",
    "run_transfer_worker",
    "schema_drift",
    "seller_share",
    "sweep_webhook_log",
    "upgrade",
]

# Names released in 0.1.0 without the ``Error`` suffix: kept one release as deprecated
# aliases (removed in 0.3.0). Resolved lazily so only a caller who uses one is warned.
_DEPRECATED_ALIASES = {
    "IllegalTransition": "IllegalTransitionError",
    "JournalConflict": "JournalConflictError",
    "NotFound": "RecordNotFoundError",
    "RefundExceedsCaptured": "RefundExceedsCapturedError",
    "SchemaOutOfDate": "SchemaOutOfDateError",
    "TransitionConflict": "TransitionConflictError",
    "UnbalancedTransaction": "UnbalancedTransactionError",
}


def __getattr__(name: str) -> object:
    """The deprecated ``Error``-less names, with a ``DeprecationWarning``."""
    new = _DEPRECATED_ALIASES.get(name)
    if new is None:
        msg = f"module 'veza_ledger' has no attribute {name!r}"
        raise AttributeError(msg)
    warnings.warn(
        f"veza_ledger.{name} is deprecated, use veza_ledger.{new} (removed in 0.3.0)",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
