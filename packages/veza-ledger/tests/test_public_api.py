"""Pins the public surface of veza_ledger: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import pytest

import veza_ledger

EXPECTED_EXPORTS = {
    "LedgerConfig",
    "Secret",
    "Accounts",
    "AmountMismatchError",
    "LegacyTransferFinder",
    "bookable_capture",
    "capture_amount_problem",
    "ActivationRefusedError",
    "DISPUTE",
    "Dispute",
    "DisputeAccounts",
    "DisputeMismatchError",
    "DEFAULT_RETENTION_DAYS",
    "Eligibility",
    "EligibilityReason",
    "EventOutcome",
    "Finding",
    "FlowConflictError",
    "INTENT",
    "IllegalTransitionError",
    "InvalidAmountError",
    "JournalConflictError",
    "JournalEntry",
    "JournalTransaction",
    "Ledger",
    "LedgerConfigurationError",
    "LedgerError",
    "Leg",
    "MACHINES",
    "Machine",
    "NaiveDatetimeError",
    "RecordNotFoundError",
    "ORDER",
    "Order",
    "Override",
    "PARKED_RULE",
    "PAYOUT",
    "PaymentState",
    "Problem",
    "ProcessedEvent",
    "ProviderEvent",
    "ProviderIntent",
    "ProviderView",
    "REFUND",
    "RULES",
    "ReconcileSettings",
    "Refund",
    "RefundExceedsCapturedError",
    "RefundState",
    "ReversalFinder",
    "Rule",
    "SQLWebhookLog",
    "SUBSCRIPTION",
    "SchemaDrift",
    "SchemaOutOfDateError",
    "SellerPayout",
    "SellerTransfer",
    "Subscription",
    "SweepItem",
    "SweepReport",
    "TRANSFER",
    "TransferCreator",
    "TransferCurrencyMismatchError",
    "TransferExceedsShareError",
    "TransferNotAllowedError",
    "TransferFinder",
    "SellerTransferReversal",
    "TransferReverser",
    "TransferState",
    "TransitionConflictError",
    "UnbalancedTransactionError",
    "VERSION_TABLE",
    "WebhookLogRow",
    "WorkerReport",
    "__version__",
    "allocate_reversals",
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
    "cancel_parked_payout",
    "PayoutCreator",
    "PayoutExceedsBalanceError",
    "PayoutFinder",
    "run_reversal_worker",
    "run_sweep",
    "run_transfer_worker",
    "schema_drift",
    "seller_share",
    "sweep_webhook_log",
    "upgrade",
}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_ledger.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_ledger.__all__ if not hasattr(veza_ledger, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_ledger.__version__ == importlib.metadata.version("veza-ledger")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_ledger").joinpath("py.typed").is_file()


def test_adapters_module_exports():
    import veza_ledger.adapters

    assert veza_ledger.adapters.__all__ == ["PaymentsProviderView", "StripeWorkerProvider"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("IllegalTransition", "IllegalTransitionError"),
        ("JournalConflict", "JournalConflictError"),
        ("NotFound", "RecordNotFoundError"),
        ("RefundExceedsCaptured", "RefundExceedsCapturedError"),
        ("SchemaOutOfDate", "SchemaOutOfDateError"),
        ("TransitionConflict", "TransitionConflictError"),
        ("UnbalancedTransaction", "UnbalancedTransactionError"),
    ],
)
def test_released_names_stay_as_deprecated_aliases(old, new):
    with pytest.warns(DeprecationWarning, match=f"veza_ledger.{old} is deprecated, use"):
        alias = getattr(veza_ledger, old)
    assert alias is getattr(veza_ledger, new)
    assert issubclass(alias, veza_ledger.LedgerError)
    assert old not in veza_ledger.__all__
    with pytest.raises(AttributeError):
        veza_ledger.NoSuchName  # noqa: B018
