"""What the providers return, as frozen values.

Statuses stay strings: a status this library does not know (providers add them) is
preserved, never a crash. Known ones are Hyperswitch's ``IntentStatus`` and
``RefundStatus`` as the API spells them, and ``conflicted``
(Hyperswitch could not reconcile the connector's answer) is surfaced as needing
attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

PAYMENT_STATUSES = frozenset(
    {
        "succeeded",
        "failed",
        "cancelled",
        "cancelled_post_capture",
        "processing",
        "requires_customer_action",
        "requires_merchant_action",
        "requires_payment_method",
        "requires_confirmation",
        "requires_capture",
        "partially_captured",
        "partially_captured_and_capturable",
        "partially_captured_and_processing",
        "partially_authorized_and_requires_capture",
        "conflicted",
        "expired",
    }
)
TERMINAL_PAYMENT_STATUSES = frozenset(
    {"succeeded", "failed", "cancelled", "cancelled_post_capture", "partially_captured", "expired"}
)
"""The router's ``IntentStatus::is_in_terminal_state``."""
REFUND_STATUSES = frozenset({"succeeded", "failed", "pending", "review"})


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@attrs.frozen
class Payment:
    """A Hyperswitch payment.

    Attributes:
        payment_id: The id (derived from the idempotency key for payments we created).
        status: The provider's status string.
        amount: Minor units.
        currency: ISO 4217 code.
        amount_capturable: Minor units still capturable.
        amount_received: Minor units captured.
        customer_id: The customer, if any.
        description: The description, if any.
        metadata: The metadata sent with the payment.
        connector: The connector that processed it.
        error_code: The connector's error code, for failed payments.
        error_message: Its message.
        created: The provider's creation timestamp (ISO 8601 text).
        client_secret: For the browser SDK; never shown in ``repr``.
        raw: The full response body; never shown in ``repr``.
    """

    payment_id: str
    status: str
    amount: int
    currency: str
    amount_capturable: int | None = None
    amount_received: int | None = None
    customer_id: str | None = None
    description: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    connector: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created: str | None = None
    client_secret: str | None = attrs.field(default=None, repr=False)
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def needs_attention(self) -> bool:
        """``conflicted`` or an unknown status: a human should look."""
        return self.status == "conflicted" or self.status not in PAYMENT_STATUSES

    @property
    def is_terminal(self) -> bool:
        """Whether the status will not change any more."""
        return self.status in TERMINAL_PAYMENT_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Payment:
        """Build from a Hyperswitch payments response."""
        return cls(
            payment_id=str(data["payment_id"]),
            status=str(data.get("status", "")),
            amount=_int(data.get("amount")) or 0,
            currency=str(data.get("currency", "")),
            amount_capturable=_int(data.get("amount_capturable")),
            amount_received=_int(data.get("amount_received")),
            customer_id=data.get("customer_id"),
            description=data.get("description"),
            metadata=dict(data.get("metadata") or {}),
            connector=data.get("connector"),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            created=data.get("created"),
            client_secret=data.get("client_secret"),
            raw=dict(data),
        )


@attrs.frozen
class Refund:
    """A Hyperswitch refund.

    Attributes:
        refund_id: The id (derived from the idempotency key).
        payment_id: The payment refunded.
        status: ``succeeded``, ``failed``, ``pending``, ``review`` (or a newer one).
        amount: Minor units.
        currency: ISO 4217 code.
        reason: The reason given.
        metadata: The metadata sent.
        error_code: The connector's error code, for failed refunds.
        error_message: Its message.
        created: The provider's creation timestamp.
        raw: The full response body.
    """

    refund_id: str
    payment_id: str
    status: str
    amount: int
    currency: str
    reason: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    created: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def is_terminal(self) -> bool:
        """``succeeded`` or ``failed``. Pending refunds send no webhook: poll them."""
        return self.status in ("succeeded", "failed")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Refund:
        """Build from a Hyperswitch refunds response."""
        return cls(
            refund_id=str(data["refund_id"]),
            payment_id=str(data.get("payment_id", "")),
            status=str(data.get("status", "")),
            amount=_int(data.get("amount")) or 0,
            currency=str(data.get("currency", "")),
            reason=data.get("reason"),
            metadata=dict(data.get("metadata") or {}),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            created=data.get("created_at") or data.get("created"),
            raw=dict(data),
        )
