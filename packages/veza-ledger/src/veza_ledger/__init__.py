"""veza-ledger: a SQLAlchemy money ledger that loses nothing and counts nothing twice.

State machines with compare-and-set transitions, a balanced append-only double-entry
journal, idempotent provider events, the webhook log with its retention sweep, and
migrations that ship inside the package.

What most applications need is here: :class:`Ledger` (``ledger.orders``,
``ledger.refunds``, ``ledger.events``...), the engine and schema helpers, and the event
and journal vocabulary. The rest is grouped in sub-modules: :mod:`veza_ledger.errors`,
:mod:`veza_ledger.models`, :mod:`veza_ledger.machines`, :mod:`veza_ledger.money`,
:mod:`veza_ledger.schema`, :mod:`veza_ledger.providers`, :mod:`veza_ledger.workers`,
:mod:`veza_ledger.reconcile` and :mod:`veza_ledger.services`. Every name the 0.1 release
exported here still imports from here (only ``__all__`` is shorter).
"""

import warnings

from veza_ledger._config import LedgerConfig
from veza_ledger._engine import configure_engine, create_engine
from veza_ledger._events import EventOutcome, ProviderEvent, event_from_hyperswitch
from veza_ledger._ledger import Ledger
from veza_ledger._secret import Secret
from veza_ledger._subscriptions import Eligibility, EligibilityReason
from veza_ledger._version import __version__
from veza_ledger._webhook_log import SQLWebhookLog

# Every name 0.1 exported here stays importable from here (``X as X``: re-exported for
# type checkers too); each now lives in the sub-module that groups it.
from veza_ledger.errors import (
    ActivationRefusedError as ActivationRefusedError,
    AmountMismatchError as AmountMismatchError,
    DisputeMismatchError as DisputeMismatchError,
    FlowConflictError as FlowConflictError,
    IllegalTransitionError as IllegalTransitionError,
    InvalidAmountError as InvalidAmountError,
    JournalConflictError as JournalConflictError,
    LedgerConfigurationError as LedgerConfigurationError,
    LedgerError,
    NaiveDatetimeError as NaiveDatetimeError,
    PayoutExceedsBalanceError as PayoutExceedsBalanceError,
    RecordNotFoundError as RecordNotFoundError,
    RefundExceedsCapturedError as RefundExceedsCapturedError,
    SchemaOutOfDateError as SchemaOutOfDateError,
    TransferCurrencyMismatchError as TransferCurrencyMismatchError,
    TransferExceedsShareError as TransferExceedsShareError,
    TransferNotAllowedError as TransferNotAllowedError,
    TransitionConflictError as TransitionConflictError,
    UnbalancedTransactionError as UnbalancedTransactionError,
)
from veza_ledger.machines import (
    DISPUTE as DISPUTE,
    INTENT as INTENT,
    MACHINES as MACHINES,
    ORDER as ORDER,
    PAYOUT as PAYOUT,
    REFUND as REFUND,
    SUBSCRIPTION as SUBSCRIPTION,
    TRANSFER as TRANSFER,
    Machine as Machine,
)
from veza_ledger.models import (
    Dispute as Dispute,
    Finding as Finding,
    JournalEntry as JournalEntry,
    JournalTransaction as JournalTransaction,
    Order as Order,
    Override as Override,
    ProcessedEvent as ProcessedEvent,
    ProviderIntent as ProviderIntent,
    Refund as Refund,
    SellerPayout as SellerPayout,
    SellerTransfer as SellerTransfer,
    SellerTransferReversal as SellerTransferReversal,
    Subscription as Subscription,
    WebhookLogRow as WebhookLogRow,
    metadata as metadata,
)
from veza_ledger.money import (
    Accounts,
    DisputeAccounts as DisputeAccounts,
    Leg,
    allocate_reversals as allocate_reversals,
    bookable_capture as bookable_capture,
    capture_amount_problem as capture_amount_problem,
    credit,
    debit,
    fee_captured as fee_captured,
    refund_split as refund_split,
    reversal_key as reversal_key,
    seller_share as seller_share,
)
from veza_ledger.providers import (
    PARKED_RULE as PARKED_RULE,
    LegacyTransferFinder as LegacyTransferFinder,
    PaymentState as PaymentState,
    PayoutCreator as PayoutCreator,
    PayoutFinder as PayoutFinder,
    ProviderView as ProviderView,
    RefundState as RefundState,
    ReversalFinder as ReversalFinder,
    TransferCreator as TransferCreator,
    TransferFinder as TransferFinder,
    TransferReverser as TransferReverser,
    TransferState as TransferState,
    classify_provider_error as classify_provider_error,
)
from veza_ledger.reconcile import (
    RULES as RULES,
    Problem as Problem,
    ReconcileSettings as ReconcileSettings,
    Rule as Rule,
    SweepItem as SweepItem,
    SweepReport as SweepReport,
    run_sweep as run_sweep,
)
from veza_ledger.schema import (
    VERSION_TABLE as VERSION_TABLE,
    SchemaDrift as SchemaDrift,
    check_schema,
    current_revision as current_revision,
    downgrade as downgrade,
    head_revision as head_revision,
    schema_drift as schema_drift,
    upgrade,
)
from veza_ledger.workers import (
    DEFAULT_RETENTION_DAYS as DEFAULT_RETENTION_DAYS,
    WorkerReport as WorkerReport,
    cancel_parked_payout as cancel_parked_payout,
    retention_days_from_env as retention_days_from_env,
    retry_transfer_now as retry_transfer_now,
    run_forever as run_forever,
    run_payout_worker as run_payout_worker,
    run_reversal_worker as run_reversal_worker,
    run_transfer_worker as run_transfer_worker,
    sweep_webhook_log as sweep_webhook_log,
)

__all__ = [
    "Accounts",
    "Eligibility",
    "EligibilityReason",
    "EventOutcome",
    "Ledger",
    "LedgerConfig",
    "LedgerError",
    "Leg",
    "ProviderEvent",
    "SQLWebhookLog",
    "Secret",
    "__version__",
    "check_schema",
    "configure_engine",
    "create_engine",
    "credit",
    "debit",
    "event_from_hyperswitch",
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
