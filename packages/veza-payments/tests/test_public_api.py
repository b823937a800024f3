"""Pins the public surface of veza_payments: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import pytest

import veza_payments

EXPECTED_EXPORTS = {
    "Secret",
    "APIConnectionError",
    "AsyncHyperswitchClient",
    "AuthenticationError",
    "BodyTooLargeError",
    "ConnectorError",
    "HYPERSWITCH_RETRY_WINDOW",
    "HyperswitchClient",
    "HyperswitchError",
    "IdempotencyConflictError",
    "InMemoryWebhookLog",
    "InvalidIdempotencyKeyError",
    "InvalidRequestError",
    "MAX_BODY",
    "MAX_HEADERS",
    "MissingIdempotencyKeyError",
    "NotFoundError",
    "Payment",
    "PaymentBlockedError",
    "PaymentsCheck",
    "PaymentsConfig",
    "PaymentsProbeReport",
    "probe_payments",
    "PaymentsConfigurationError",
    "PaymentsError",
    "Payout",
    "ProviderError",
    "RateLimitError",
    "Refund",
    "RetryPolicy",
    "SANDBOX_URL",
    "SIGNATURE_HEADER",
    "STRIPE_SIGNATURE_HEADER",
    "ServerError",
    "StripeConnect",
    "AsyncStripeConnect",
    "AsyncWebhookIntake",
    "StripeError",
    "Transfer",
    "TransferReversal",
    "UnexpectedResponseError",
    "WebhookEvent",
    "WebhookIntake",
    "WebhookLog",
    "WebhookOutcome",
    "WebhookRecord",
    "__version__",
    "aread_limited",
    "read_limited",
    "check_amount",
    "exponent",
    "format_amount",
    "normalise_currency",
    "payment_id_for",
    "refund_id_for",
    "sign_payload",
    "stripe_signature_header",
    "verify_signature",
    "verify_stripe_signature",
}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_payments.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    missing = [n for n in veza_payments.__all__ if not hasattr(veza_payments, n)]
    assert missing == []


def test_version_matches_installed_metadata():
    assert veza_payments.__version__ == importlib.metadata.version("veza-payments")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_payments").joinpath("py.typed").is_file()


def test_testing_module_exports_the_fakes():
    import veza_payments.testing

    assert set(veza_payments.testing.__all__) == {
        "PAYMENT_EVENTS",
        "REFUND_EVENTS",
        "Delivery",
        "FakeHyperswitch",
        "FakeStripe",
        "Fault",
        "WebhookEmitter",
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("IdempotencyConflict", "IdempotencyConflictError"),
        ("MissingIdempotencyKey", "MissingIdempotencyKeyError"),
    ],
)
def test_released_names_stay_as_deprecated_aliases(old, new):
    with pytest.warns(DeprecationWarning, match=f"veza_payments.{old} is deprecated, use"):
        alias = getattr(veza_payments, old)
    assert alias is getattr(veza_payments, new)
    assert old not in veza_payments.__all__
    with pytest.raises(AttributeError):
        veza_payments.NoSuchName  # noqa: B018
