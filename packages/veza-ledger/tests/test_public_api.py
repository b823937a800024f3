"""Pins the public surface of veza_ledger: a rename or an accidental export fails here."""

import contextlib
import importlib.metadata
import importlib.resources
import warnings

import pytest
import sqlalchemy as sa

import veza_ledger

EXPECTED_EXPORTS = {
    "LedgerConfig",
    "Secret",
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
}

EXPECTED_SUBMODULES = {
    "errors": [
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
    ],
    "models": [
        "Dispute",
        "Finding",
        "JournalEntry",
        "JournalTransaction",
        "Order",
        "Override",
        "ProcessedEvent",
        "ProviderIntent",
        "Refund",
        "SellerPayout",
        "SellerTransfer",
        "SellerTransferReversal",
        "Subscription",
        "WebhookLogRow",
        "metadata",
    ],
    "machines": [
        "DISPUTE",
        "INTENT",
        "MACHINES",
        "Machine",
        "ORDER",
        "PAYOUT",
        "REFUND",
        "SUBSCRIPTION",
        "TRANSFER",
    ],
    "schema": [
        "SchemaDrift",
        "VERSION_TABLE",
        "check_schema",
        "current_revision",
        "downgrade",
        "head_revision",
        "schema_drift",
        "upgrade",
    ],
    "providers": [
        "LegacyTransferFinder",
        "PARKED_RULE",
        "PaymentState",
        "PayoutCreator",
        "PayoutFinder",
        "ProviderView",
        "RefundState",
        "ReversalFinder",
        "TransferCreator",
        "TransferFinder",
        "TransferReverser",
        "TransferState",
        "classify_provider_error",
    ],
    "workers": [
        "DEFAULT_RETENTION_DAYS",
        "WorkerReport",
        "cancel_parked_payout",
        "retention_days_from_env",
        "retry_transfer_now",
        "run_forever",
        "run_payout_worker",
        "run_reversal_worker",
        "run_transfer_worker",
        "sweep_webhook_log",
    ],
    "reconcile": [
        "Problem",
        "RULES",
        "ReconcileSettings",
        "Rule",
        "SweepItem",
        "SweepReport",
        "run_sweep",
    ],
    "money": [
        "Accounts",
        "DisputeAccounts",
        "Leg",
        "allocate_reversals",
        "bookable_capture",
        "capture_amount_problem",
        "credit",
        "debit",
        "fee_captured",
        "refund_split",
        "reversal_key",
        "seller_share",
    ],
    "services": [
        "Captures",
        "Disputes",
        "Events",
        "Journal",
        "Operator",
        "Orders",
        "Payouts",
        "ProviderIntents",
        "Reconciliation",
        "Refunds",
        "Subscriptions",
        "Transfers",
    ],
}

RELEASED_0_1 = {
    "Accounts",
    "ActivationRefusedError",
    "AmountMismatchError",
    "DEFAULT_RETENTION_DAYS",
    "DISPUTE",
    "Dispute",
    "DisputeAccounts",
    "DisputeMismatchError",
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
    "LegacyTransferFinder",
    "MACHINES",
    "Machine",
    "NaiveDatetimeError",
    "ORDER",
    "Order",
    "Override",
    "PARKED_RULE",
    "PAYOUT",
    "PaymentState",
    "PayoutCreator",
    "PayoutExceedsBalanceError",
    "PayoutFinder",
    "Problem",
    "ProcessedEvent",
    "ProviderEvent",
    "ProviderIntent",
    "ProviderView",
    "REFUND",
    "RULES",
    "ReconcileSettings",
    "RecordNotFoundError",
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
    "SellerTransferReversal",
    "Subscription",
    "SweepItem",
    "SweepReport",
    "TRANSFER",
    "TransferCreator",
    "TransferCurrencyMismatchError",
    "TransferExceedsShareError",
    "TransferFinder",
    "TransferNotAllowedError",
    "TransferReverser",
    "TransferState",
    "TransitionConflictError",
    "UnbalancedTransactionError",
    "VERSION_TABLE",
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
}
"""What 0.1's ``__all__`` listed: every name stays importable from the top."""


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


@pytest.mark.parametrize("name", sorted(EXPECTED_SUBMODULES))
def test_submodule_exports_are_exactly_the_pinned_set(name):
    module = importlib.import_module(f"veza_ledger.{name}")
    assert sorted(module.__all__) == sorted(EXPECTED_SUBMODULES[name])
    assert [n for n in module.__all__ if not hasattr(module, n)] == []


def test_every_released_name_still_imports_from_the_top_as_the_same_object():
    grouped = {
        n: getattr(importlib.import_module(f"veza_ledger.{m}"), n)
        for m, names in EXPECTED_SUBMODULES.items()
        for n in names
    }
    missing = sorted(n for n in RELEASED_0_1 if not hasattr(veza_ledger, n))
    assert missing == []
    moved = RELEASED_0_1 - EXPECTED_EXPORTS - {"__version__"}
    assert sorted(n for n in moved if n not in grouped) == []  # each has a sub-module
    assert sorted(n for n in moved if getattr(veza_ledger, n) is not grouped[n]) == []


# ---------------------------------------------------------------- Ledger as services

SERVICES = [
    "orders",
    "refunds",
    "captures",
    "subscriptions",
    "disputes",
    "events",
    "operator",
    "transfers",
    "payouts",
    "provider_intents",
    "journal",
    "reconciliation",
]


def _moved() -> dict[str, tuple[str, str]]:
    from veza_ledger._ledger import _Moved

    return {
        name: (value._service, value._method)
        for name, value in vars(veza_ledger.Ledger).items()
        if isinstance(value, _Moved)
    }


def test_the_services_share_one_core_and_are_exported_for_annotations(tmp_path):
    import veza_ledger.services

    engine = veza_ledger.create_engine(f"sqlite:///{tmp_path / 'l.db'}")
    ledger = veza_ledger.Ledger(engine)
    cores = {id(getattr(ledger, s)._core) for s in SERVICES}
    assert cores == {id(ledger._core)}
    kinds = {type(getattr(ledger, s)).__name__ for s in SERVICES}
    assert kinds == set(veza_ledger.services.__all__)


def test_every_flat_0_1_method_has_a_delegate_to_an_existing_service_method():
    moved = _moved()
    assert len(moved) == 61
    public = {n for n in vars(veza_ledger.Ledger) if not n.startswith("_")}
    assert public - set(moved) == {"now", "transaction", "plan_ranks", "plan_prices"}
    for old, (service, method) in moved.items():
        cls = getattr(veza_ledger.services, type_name(service))
        assert callable(getattr(cls, method, None)), (old, service, method)


def type_name(service: str) -> str:
    return {
        "orders": "Orders",
        "refunds": "Refunds",
        "captures": "Captures",
        "subscriptions": "Subscriptions",
        "disputes": "Disputes",
        "events": "Events",
        "operator": "Operator",
        "transfers": "Transfers",
        "payouts": "Payouts",
        "provider_intents": "ProviderIntents",
        "journal": "Journal",
        "reconciliation": "Reconciliation",
    }[service]


@pytest.mark.parametrize("old", sorted(_moved()))
def test_flat_names_warn_naming_the_new_spelling_and_delegate(old, tmp_path):
    engine = veza_ledger.create_engine(f"sqlite:///{tmp_path / 'l.db'}")
    ledger = veza_ledger.Ledger(engine)
    service, method = _moved()[old]
    delegate = getattr(ledger, old)
    assert delegate.__wrapped__ == getattr(getattr(ledger, service), method)
    expected = f"Ledger.{old}() is deprecated, use ledger.{service}.{method}() (removed in 0.3.0)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # no arguments, no tables: the call fails after the warning, which is the point
        with contextlib.suppress(TypeError, veza_ledger.LedgerError, sa.exc.OperationalError):
            delegate()
    assert [(w.category, str(w.message)) for w in caught] == [(DeprecationWarning, expected)]
    assert caught[0].filename == __file__  # points at the caller's line


def test_a_flat_call_still_does_what_it_did(tmp_path):
    engine = veza_ledger.create_engine(f"sqlite:///{tmp_path / 'l.db'}")
    veza_ledger.upgrade(engine)
    ledger = veza_ledger.Ledger(engine)
    with pytest.warns(DeprecationWarning, match=r"use ledger\.orders\.create\(\)"):
        order = ledger.create_order(
            buyer_id="b", seller_id="s", amount=1999, currency="EUR", fee_amount=300
        )
    with pytest.warns(DeprecationWarning, match=r"use ledger\.orders\.mark_paid\(\)"):
        paid = ledger.mark_paid(order.id)
    assert paid.status == "paid"
    assert ledger.orders.get(order.id).status == "paid"
    with pytest.warns(DeprecationWarning, match=r"use ledger\.journal\.trial_balance\(\)"):
        assert ledger.trial_balance() == {"EUR": 0}
    assert ledger.journal.balance("psp_clearing", "EUR") == 1999


def test_plan_settings_set_on_the_ledger_reach_the_subscriptions(tmp_path):
    engine = veza_ledger.create_engine(f"sqlite:///{tmp_path / 'l.db'}")
    ledger = veza_ledger.Ledger(engine, plan_prices={"creator": (500, "EUR")})
    assert ledger.subscriptions.plan_prices == {"creator": (500, "EUR")}
    ledger.plan_prices = {"creator": (990, "EUR")}  # settable in 0.1: still works
    ledger.plan_ranks = {"free": 0, "creator": 5}
    assert ledger.subscriptions.plan_prices == {"creator": (990, "EUR")}
    assert ledger.subscriptions.plan_ranks == {"free": 0, "creator": 5}
    assert ledger.plan_prices is ledger.subscriptions.plan_prices
