"""Fakes of Hyperswitch and Stripe: real HTTP servers on 127.0.0.1 for your tests.

They behave like the providers where it matters for money: Hyperswitch enforces
unique ``payment_id``/``refund_id`` with ``400 HE_01`` (and ignores the
``Idempotency-Key`` header, as v1 does), answers ``422 HE_00`` while another request
holds the same payment, sends a blocklist rejection as HTTP 200 with an error body,
and uses its real error shape; Stripe replays idempotent requests (same key and
parameters: the first response; different parameters: ``idempotency_error``). Both
inject faults on either side of the commit (see :class:`Fault`). :class:`WebhookEmitter`
does what Hyperswitch does after a status change: it signs and POSTs the webhook to your
endpoint, retries on errors, and on request duplicates and reorders deliveries.

Example:
    >>> from veza_payments import HyperswitchClient
    >>> from veza_payments.testing import Fault, FakeHyperswitch
    >>> with FakeHyperswitch() as fake:
    ...     fake.inject(Fault("drop", after_commit=True, method="POST"))
    ...     client = HyperswitchClient(fake.api_key, base_url=fake.url, sleep=lambda s: None)
    ...     payment = client.create_payment("order-1", amount=1000, currency="EUR")
    ...     assert len(fake.payments) == 1 and payment.payment_id in fake.payments
    ...     client.close()
"""

from __future__ import annotations

from veza_payments._emitter import PAYMENT_EVENTS, REFUND_EVENTS, Delivery, WebhookEmitter
from veza_payments._fake_hyperswitch import FakeHyperswitch
from veza_payments._fake_stripe import FakeStripe
from veza_payments._fakeserver import Fault

__all__ = [
    "PAYMENT_EVENTS",
    "REFUND_EVENTS",
    "Delivery",
    "FakeHyperswitch",
    "FakeStripe",
    "Fault",
    "WebhookEmitter",
]
