"""Hypothesis strategies for your own property-based tests of a veza-payments integration.

``pip install "veza-payments[hypothesis]"``, then::

    from veza_payments.strategies import money, webhook_sequences

Everything drawn is what the real providers produce or accept: amounts in minor units
valid for each currency's exponent as Hyperswitch counts it, idempotency keys in the
accepted alphabet, the exact payment and refund ids the client derives, and webhook
deliveries in the router's real shape (``event_id``, ``event_type``, ``content`` with
``type`` and ``object``, ``timestamp``), signed with your key — or, when asked, with
duplicates, out of order, and with bad signatures, as a hostile network delivers them.

The package registers :class:`~veza_payments.RetryPolicy` through hypothesis's
entry-point hook, so ``st.from_type(RetryPolicy)`` works without importing this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from veza_payments._ids import payment_id_for, refund_id_for
from veza_payments._money import ALL_CURRENCIES, exponent
from veza_payments._retry import RetryPolicy
from veza_payments._signatures import (
    SIGNATURE_HEADER,
    STRIPE_SIGNATURE_HEADER,
    sign_payload,
    stripe_signature_header,
)
from veza_payments._webhooks import EVENT_TYPES

__all__ = [
    "Delivery",
    "amounts",
    "currencies",
    "idempotency_keys",
    "money",
    "payment_ids",
    "refund_ids",
    "retry_policies",
    "webhook_deliveries",
    "webhook_events",
    "webhook_sequences",
]

_MAX_MAJOR = 1_000_000
_FROM, _UNTIL = 1_704_067_200, 1_893_456_000  # 2024-01-01 .. 2030-01-01 UTC
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_KEY_ALPHABET = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII, no space
_CONTENT_TYPE = {
    "payment_": "payment_details",
    "refund_": "refund_details",
    "dispute_": "dispute_details",
    "payout_": "payout_details",
    "mandate_": "mandate_details",
    "invoice_": "invoice_details",
    "action_required": "payment_details",
}
_PAYMENT_STATUS = {
    "payment_succeeded": "succeeded",
    "payment_failed": "failed",
    "payment_processing": "processing",
    "payment_cancelled": "cancelled",
    "payment_cancelled_post_capture": "cancelled_post_capture",
    "payment_authorized": "requires_capture",
    "payment_partially_authorized": "partially_authorized_and_requires_capture",
    "payment_captured": "succeeded",
    "payment_expired": "expired",
    "action_required": "requires_customer_action",
}


def currencies(*, exponents: Sequence[int] | None = None) -> st.SearchStrategy[str]:
    """ISO 4217 codes Hyperswitch accepts, optionally only those with these exponents.

    Args:
        exponents: e.g. ``(0,)`` for zero-decimal currencies (JPY, KRW, ...), ``(3,)``
            for three-decimal ones (KWD, BHD, ...). ``None``: all.
    """
    codes = sorted(ALL_CURRENCIES)
    if exponents is not None:
        codes = [c for c in codes if exponent(c) in exponents]
    return st.sampled_from(codes)


def amounts(currency: str, *, max_major: int = _MAX_MAJOR) -> st.SearchStrategy[int]:
    """Amounts in minor units for ``currency``: 1 up to ``max_major`` whole units.

    Small amounts (1 minor unit, the first whole unit) are drawn often: that is where
    rounding rules for fees and partial refunds break.
    """
    top = max_major * 10 ** exponent(currency)
    return st.one_of(
        st.sampled_from([1, 2, 10 ** exponent(currency), top]),
        st.integers(min_value=1, max_value=top),
    )


def money(*, max_major: int = _MAX_MAJOR) -> st.SearchStrategy[tuple[int, str]]:
    """``(amount, currency)`` pairs valid for the currency's exponent."""
    return currencies().flatmap(lambda c: amounts(c, max_major=max_major).map(lambda a: (a, c)))


def idempotency_keys() -> st.SearchStrategy[str]:
    """Keys the clients accept: 1 to 255 printable ASCII characters, no whitespace."""
    return st.text(alphabet=_KEY_ALPHABET, min_size=1, max_size=255)


def payment_ids(*, namespace: str = "") -> st.SearchStrategy[str]:
    """The ``payment_id`` values the client derives (``HyperswitchClient.payment_id_for``)."""
    return idempotency_keys().map(lambda key: payment_id_for(key, namespace=namespace))


def refund_ids(*, namespace: str = "") -> st.SearchStrategy[str]:
    """The ``refund_id`` values the client derives (``HyperswitchClient.refund_id_for``)."""
    return idempotency_keys().map(lambda key: refund_id_for(key, namespace=namespace))


def retry_policies() -> st.SearchStrategy[RetryPolicy]:
    """Valid retry policies (what ``st.from_type(RetryPolicy)`` draws)."""
    return st.builds(
        RetryPolicy,
        total=st.integers(min_value=0, max_value=8),
        backoff_base=st.floats(min_value=0.01, max_value=2.0),
        backoff_max=st.floats(min_value=2.0, max_value=30.0),
        max_elapsed=st.floats(min_value=0.5, max_value=600.0),
    )


def _family(event_type: str) -> str:
    return next(
        (content for prefix, content in _CONTENT_TYPE.items() if event_type.startswith(prefix)),
        "payment_details",
    )


@st.composite
def webhook_events(
    draw: st.DrawFn, *, event_types: Sequence[str] | None = None, merchant_id: str = "merchant_1"
) -> dict[str, Any]:
    """One event in the router's outgoing-webhook shape (a decoded JSON body).

    Payment events carry a payment object whose status matches the event
    (``payment_succeeded`` → ``succeeded``, with ``amount_received``); refund events a
    refund object on a payment. Ids are the ones the client derives, so a test can
    link an event to the call that caused it.
    """
    event_type = draw(st.sampled_from(sorted(event_types or EVENT_TYPES)))
    amount, currency = draw(money(max_major=10_000))
    payment_id = draw(payment_ids())
    created = dt.datetime.fromtimestamp(draw(st.integers(_FROM, _UNTIL)), tz=dt.UTC)
    obj: dict[str, Any] = {
        "payment_id": payment_id,
        "merchant_id": merchant_id,
        "amount": amount,
        "currency": currency,
    }
    if event_type.startswith("refund_"):
        obj = {
            "refund_id": draw(refund_ids()),
            "payment_id": payment_id,
            "amount": draw(st.integers(min_value=1, max_value=amount)),
            "currency": currency,
            "status": "succeeded" if event_type == "refund_succeeded" else "failed",
        }
    elif event_type.startswith("dispute_"):
        obj = {
            "dispute_id": f"dp_{draw(st.uuids()).hex[:20]}",
            "payment_id": payment_id,
            "amount": str(amount),
            "currency": currency,
            "dispute_status": event_type,
        }
    elif event_type in _PAYMENT_STATUS:
        status = _PAYMENT_STATUS[event_type]
        obj["status"] = status
        obj["amount_received"] = amount if status == "succeeded" else None
    event_id = f"evt_{draw(st.uuids()).hex}"
    return {
        "merchant_id": merchant_id,
        "event_id": event_id,
        "event_type": event_type,
        "content": {"type": _family(event_type), "object": obj},
        "timestamp": created.strftime(_TIME_FORMAT),
    }


@attrs.frozen
class Delivery:
    """One webhook delivery as the endpoint receives it.

    Attributes:
        headers: The request headers (signature included).
        body: The raw body bytes (exactly what was signed).
        event: The decoded event.
        signed_right: Whether the signature was made with the endpoint's key over this
            body; an intake must refuse (401) every delivery where this is false.
    """

    headers: dict[str, str]
    body: bytes
    event: dict[str, Any]
    signed_right: bool


@st.composite
def webhook_deliveries(
    draw: st.DrawFn,
    key: str,
    *,
    bad_signatures: bool = True,
    stripe_compatible: bool = False,
    event_types: Sequence[str] | None = None,
) -> Delivery:
    """A delivery signed with ``key`` (or, when ``bad_signatures``, sometimes not).

    Bad signatures take the forms attacks and bugs produce: another key, another body
    (a byte changed after signing), a truncated or empty signature.

    Args:
        draw: Supplied by hypothesis (``st.composite``); callers pass only the rest.
        key: The payment response hash key your intake verifies with.
        bad_signatures: Also draw deliveries whose signature must be refused.
        stripe_compatible: Sign in Stripe's ``Stripe-Signature`` form instead.
        event_types: Restrict the event types drawn.
    """
    event = draw(webhook_events(event_types=event_types))
    body = json.dumps(event, separators=(",", ":")).encode()
    how = draw(
        st.sampled_from(["right", "other_key", "changed_body", "truncated", "empty"])
        if bad_signatures
        else st.just("right")
    )
    signing_key = "another-key-entirely" if how == "other_key" else key
    signed_body = body.replace(b'"amount"', b'"amounT"', 1) if how == "changed_body" else body
    if stripe_compatible:
        stamped = dt.datetime.strptime(event["timestamp"], _TIME_FORMAT).replace(tzinfo=dt.UTC)
        timestamp = int(stamped.timestamp())
        name = STRIPE_SIGNATURE_HEADER
        value = stripe_signature_header(signed_body, signing_key, timestamp=timestamp)
    else:
        name = SIGNATURE_HEADER
        value = sign_payload(signed_body, signing_key)
    if how == "truncated":
        value = value[: len(value) // 2]
    elif how == "empty":
        value = ""
    headers = {"content-type": "application/json", name: value}
    return Delivery(headers, body, event, signed_right=how == "right" and signed_body == body)


@st.composite
def webhook_sequences(
    draw: st.DrawFn,
    key: str,
    *,
    min_events: int = 1,
    max_events: int = 8,
    bad_signatures: bool = True,
    event_types: Sequence[str] | None = None,
) -> list[Delivery]:
    """Deliveries as the network brings them: duplicated, reordered, some forged.

    Hyperswitch retries a delivery with the same body for about a day, so every event
    may arrive several times, in any order relative to the others. An intake fed this
    sequence must apply each correctly signed event exactly once.
    """
    distinct = draw(
        st.lists(
            webhook_deliveries(key, bad_signatures=bad_signatures, event_types=event_types),
            min_size=min_events,
            max_size=max_events,
            unique_by=lambda d: d.event["event_id"],
        )
    )
    repeated = [d for d in distinct for _ in range(draw(st.integers(min_value=1, max_value=3)))]
    return draw(st.permutations(repeated))


def _hypothesis_setup_hook() -> None:
    """Hypothesis's entry-point hook: ``st.from_type`` for veza-payments' value types."""
    st.register_type_strategy(RetryPolicy, retry_policies())
