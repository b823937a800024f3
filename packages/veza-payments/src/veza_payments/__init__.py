"""veza-payments: payments that cannot double-charge.

A Hyperswitch client whose money-moving calls take an idempotency key and turn it
into the provider's own id (Hyperswitch v1 ignores the ``Idempotency-Key`` header),
webhook verification and forensic intake, and Stripe Connect transfers, reversals
and payouts with mandatory keys. Provider failures share ``ProviderError``; their kind
(``NotFoundError``, ...) is provider-neutral, their provider ``HyperswitchError`` or
``StripeError``.
"""

import warnings

from veza_payments._async_webhooks import AsyncWebhookIntake
from veza_payments._config import PaymentsConfig
from veza_payments._errors import (
    APIConnectionError,
    AuthenticationError,
    BodyTooLargeError,
    ConnectorError,
    HyperswitchError,
    IdempotencyConflictError,
    InvalidIdempotencyKeyError,
    InvalidRequestError,
    MissingIdempotencyKeyError,
    NotFoundError,
    PaymentBlockedError,
    PaymentsConfigurationError,
    PaymentsError,
    ProviderError,
    RateLimitError,
    ServerError,
    StripeError,
    UnexpectedResponseError,
)
from veza_payments._hyperswitch import SANDBOX_URL, AsyncHyperswitchClient, HyperswitchClient
from veza_payments._ids import payment_id_for, refund_id_for
from veza_payments._limits import aread_limited, read_limited
from veza_payments._models import Payment, Refund
from veza_payments._money import check_amount, exponent, format_amount, normalise_currency
from veza_payments._probe import PaymentsCheck, PaymentsProbeReport, probe_payments
from veza_payments._retry import RetryPolicy
from veza_payments._secret import Secret
from veza_payments._signatures import (
    HYPERSWITCH_RETRY_WINDOW,
    SIGNATURE_HEADER,
    STRIPE_SIGNATURE_HEADER,
    sign_payload,
    stripe_signature_header,
    verify_signature,
    verify_stripe_signature,
)
from veza_payments._stripe import (
    AsyncStripeConnect,
    Payout,
    StripeConnect,
    Transfer,
    TransferReversal,
)
from veza_payments._version import __version__
from veza_payments._webhooks import (
    MAX_BODY,
    MAX_HEADERS,
    InMemoryWebhookLog,
    WebhookEvent,
    WebhookIntake,
    WebhookLog,
    WebhookOutcome,
    WebhookRecord,
)

__all__ = [
    "HYPERSWITCH_RETRY_WINDOW",
    "MAX_BODY",
    "MAX_HEADERS",
    "SANDBOX_URL",
    "SIGNATURE_HEADER",
    "STRIPE_SIGNATURE_HEADER",
    "APIConnectionError",
    "AsyncHyperswitchClient",
    "AsyncStripeConnect",
    "AsyncWebhookIntake",
    "AuthenticationError",
    "BodyTooLargeError",
    "ConnectorError",
    "HyperswitchClient",
    "HyperswitchError",
    "IdempotencyConflictError",
    "InMemoryWebhookLog",
    "InvalidIdempotencyKeyError",
    "InvalidRequestError",
    "MissingIdempotencyKeyError",
    "NotFoundError",
    "Payment",
    "PaymentBlockedError",
    "PaymentsCheck",
    "PaymentsConfig",
    "PaymentsConfigurationError",
    "PaymentsError",
    "PaymentsProbeReport",
    "Payout",
    "ProviderError",
    "RateLimitError",
    "Refund",
    "RetryPolicy",
    "Secret",
    "ServerError",
    "StripeConnect",
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
    "check_amount",
    "exponent",
    "format_amount",
    "normalise_currency",
    "payment_id_for",
    "probe_payments",
    "read_limited",
    "refund_id_for",
    "sign_payload",
    "stripe_signature_header",
    "verify_signature",
    "verify_stripe_signature",
]

# Names released in 0.1.0 without the ``Error`` suffix: kept one release as deprecated
# aliases (removed in 0.3.0). Resolved lazily so only a caller who uses one is warned.
_DEPRECATED_ALIASES = {
    "IdempotencyConflict": "IdempotencyConflictError",
    "MissingIdempotencyKey": "MissingIdempotencyKeyError",
}


def __getattr__(name: str) -> object:
    """The deprecated ``Error``-less names, with a ``DeprecationWarning``."""
    new = _DEPRECATED_ALIASES.get(name)
    if new is None:
        msg = f"module 'veza_payments' has no attribute {name!r}"
        raise AttributeError(msg)
    warnings.warn(
        f"veza_payments.{name} is deprecated, use veza_payments.{new} (removed in 0.3.0)",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
