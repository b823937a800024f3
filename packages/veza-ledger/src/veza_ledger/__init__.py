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

from veza_ledger._engine import configure_engine, create_engine
from veza_ledger._events import EventOutcome, ProviderEvent, event_from_hyperswitch
from veza_ledger._ledger import Ledger
from veza_ledger._subscriptions import Eligibility, EligibilityReason
from veza_ledger._version import __version__
from veza_ledger._webhook_log import SQLWebhookLog

# Every name 0.1 exported here stays importable from here (``X as X``: re-exported for
# type checkers too); each now lives in the sub-module that groups it.
from veza_ledger.errors import (
    ActivationRefusedError as ActivationRefusedError,
)
from veza_ledger.errors import (
    AmountMismatchError as AmountMismatchError,
)
from veza_ledger.errors import (
    DisputeMismatchError as DisputeMismatchError,
)
from veza_ledger.errors import (
    FlowConflictError as FlowConflictError,
)
from veza_ledger.errors import (
    IllegalTransitionError as IllegalTransitionError,
)
from veza_ledger.errors import (
    InvalidAmountError as InvalidAmountError,
)
from veza_ledger.errors import (
    JournalConflictError as JournalConflictError,
)
from veza_ledger.errors import (
    LedgerConfigurationError as LedgerConfigurationError,
)
from veza_ledger.errors import (
    LedgerError,
)
from veza_ledger.errors import (
    NaiveDatetimeError as NaiveDatetimeError,
)
from veza_ledger.errors import (
    PayoutExceedsBalanceError as PayoutExceedsBalanceError,
)
from veza_ledger.errors import (
    RecordNotFoundError as RecordNotFoundError,
)
from veza_ledger.errors import (
    RefundExceedsCapturedError as RefundExceedsCapturedError,
)
from veza_ledger.errors import (
    SchemaOutOfDateError as SchemaOutOfDateError,
)
from veza_ledger.errors import (
    TransferCurrencyMismatchError as TransferCurrencyMismatchError,
)
from veza_ledger.errors import (
    TransferExceedsShareError as TransferExceedsShareError,
)
from veza_ledger.errors import (
    TransferNotAllowedError as TransferNotAllowedError,
)
from veza_ledger.errors import (
    TransitionConflictError as TransitionConflictError,
)
from veza_ledger.errors import (
    UnbalancedTransactionError as UnbalancedTransactionError,
)
from veza_ledger.machines import (
    DISPUTE as DISPUTE,
)
from veza_ledger.machines import (
    INTENT as INTENT,
)
from veza_ledger.machines import (
    MACHINES as MACHINES,
)
from veza_ledger.machines import (
    ORDER as ORDER,
)
from veza_ledger.machines import (
    PAYOUT as PAYOUT,
)
from veza_ledger.machines import (
    REFUND as REFUND,
)
from veza_ledger.machines import (
    SUBSCRIPTION as SUBSCRIPTION,
)
from veza_ledger.machines import (
    TRANSFER as TRANSFER,
)
from veza_ledger.machines import (
    Machine as Machine,
)
from veza_ledger.models import (
    Dispute as Dispute,
)
from veza_ledger.models import (
    Finding as Finding,
)
from veza_ledger.models import (
    JournalEntry as JournalEntry,
)
from veza_ledger.models import (
    JournalTransaction as JournalTransaction,
)
from veza_ledger.models import (
    Order as Order,
)
from veza_ledger.models import (
    Override as Override,
)
from veza_ledger.models import (
    ProcessedEvent as ProcessedEvent,
)
from veza_ledger.models import (
    ProviderIntent as ProviderIntent,
)
from veza_ledger.models import (
    Refund as Refund,
)
from veza_ledger.models import (
    SellerPayout as SellerPayout,
)
from veza_ledger.models import (
    SellerTransfer as SellerTransfer,
)
from veza_ledger.models import (
    SellerTransferReversal as SellerTransferReversal,
)
from veza_ledger.models import (
    Subscription as Subscription,
)
from veza_ledger.models import (
    WebhookLogRow as WebhookLogRow,
)
from veza_ledger.models import (
    metadata as metadata,
)
from veza_ledger.money import (
    Accounts,
    Leg,
    credit,
    debit,
)
from veza_ledger.money import (
    DisputeAccounts as DisputeAccounts,
)
from veza_ledger.money import (
    allocate_reversals as allocate_reversals,
)
from veza_ledger.money import (
    bookable_capture as bookable_capture,
)
from veza_ledger.money import (
    capture_amount_problem as capture_amount_problem,
)
from veza_ledger.money import (
    fee_captured as fee_captured,
)
from veza_ledger.money import (
    refund_split as refund_split,
)
from veza_ledger.money import (
    reversal_key as reversal_key,
)
from veza_ledger.money import (
    seller_share as seller_share,
)
from veza_ledger.providers import (
    PARKED_RULE as PARKED_RULE,
)
from veza_ledger.providers import (
    LegacyTransferFinder as LegacyTransferFinder,
)
from veza_ledger.providers import (
    PaymentState as PaymentState,
)
from veza_ledger.providers import (
    PayoutCreator as PayoutCreator,
)
from veza_ledger.providers import (
    PayoutFinder as PayoutFinder,
)
from veza_ledger.providers import (
    ProviderView as ProviderView,
)
from veza_ledger.providers import (
    RefundState as RefundState,
)
from veza_ledger.providers import (
    ReversalFinder as ReversalFinder,
)
from veza_ledger.providers import (
    TransferCreator as TransferCreator,
)
from veza_ledger.providers import (
    TransferFinder as TransferFinder,
)
from veza_ledger.providers import (
    TransferReverser as TransferReverser,
)
from veza_ledger.providers import (
    TransferState as TransferState,
)
from veza_ledger.providers import (
    classify_provider_error as classify_provider_error,
)
from veza_ledger.reconcile import (
    RULES as RULES,
)
from veza_ledger.reconcile import (
    Problem as Problem,
)
from veza_ledger.reconcile import (
    ReconcileSettings as ReconcileSettings,
)
from veza_ledger.reconcile import (
    Rule as Rule,
)
from veza_ledger.reconcile import (
    SweepItem as SweepItem,
)
from veza_ledger.reconcile import (
    SweepReport as SweepReport,
)
from veza_ledger.reconcile import (
    run_sweep as run_sweep,
)
from veza_ledger.schema import (
    VERSION_TABLE as VERSION_TABLE,
)
from veza_ledger.schema import (
    SchemaDrift as SchemaDrift,
)
from veza_ledger.schema import (
    check_schema,
    upgrade,
)
from veza_ledger.schema import (
    current_revision as current_revision,
)
from veza_ledger.schema import (
    downgrade as downgrade,
)
from veza_ledger.schema import (
    head_revision as head_revision,
)
from veza_ledger.schema import (
    schema_drift as schema_drift,
)
from veza_ledger.workers import (
    DEFAULT_RETENTION_DAYS as DEFAULT_RETENTION_DAYS,
)
from veza_ledger.workers import (
    WorkerReport as WorkerReport,
)
from veza_ledger.workers import (
    cancel_parked_payout as cancel_parked_payout,
)
from veza_ledger.workers import (
    retention_days_from_env as retention_days_from_env,
)
from veza_ledger.workers import (
    retry_transfer_now as retry_transfer_now,
)
from veza_ledger.workers import (
    run_forever as run_forever,
)
from veza_ledger.workers import (
    run_payout_worker as run_payout_worker,
)
from veza_ledger.workers import (
    run_reversal_worker as run_reversal_worker,
)
from veza_ledger.workers import (
    run_transfer_worker as run_transfer_worker,
)
from veza_ledger.workers import (
    sweep_webhook_log as sweep_webhook_log,
)

__all__ = [
    "Accounts",
    "Eligibility",
    "EligibilityReason",
    "EventOutcome",
    "Ledger",
    "LedgerError",
    "Leg",
    "ProviderEvent",
    "SQLWebhookLog",
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
