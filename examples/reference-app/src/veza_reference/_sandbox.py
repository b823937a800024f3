"""The built-in sandbox payment provider: the demo runs with no account anywhere.

It is the same fake Hyperswitch and Stripe that veza-payments' tests use (real HTTP
servers on 127.0.0.1, the providers' idempotency rules and error shapes), plus what a
real provider does on its own, through veza-payments' :class:`WebhookEmitter`: when a
payment or refund changes status, a signed webhook is delivered to the app a moment
later, and retried while the app answers an error, as Hyperswitch does. The "customer
pays" step of the browser SDK is ``confirm_payment``.
"""

from __future__ import annotations

import secrets
from typing import Any

from veza_payments import PaymentsConfig
from veza_payments.testing import Delivery, FakeHyperswitch, FakeStripe, WebhookEmitter


class Sandbox:
    """Fake providers plus their webhook emitter."""

    def __init__(
        self,
        hyperswitch: FakeHyperswitch,
        stripe: FakeStripe,
        webhook_url: str,
        webhook_key: str,
        *,
        interval: float = 0.2,
    ) -> None:
        self.hyperswitch = hyperswitch
        self.stripe = stripe
        self.webhook_url = webhook_url
        self.webhook_key = webhook_key
        self.emitter = WebhookEmitter(hyperswitch, webhook_url, key=webhook_key, interval=interval)

    @classmethod
    def start(cls, *, webhook_url: str) -> Sandbox:
        """Start both fakes (the emitter starts with :meth:`run_emitter`)."""
        return cls(
            FakeHyperswitch().start(), FakeStripe().start(), webhook_url, secrets.token_urlsafe(32)
        )

    def payments_config(self) -> PaymentsConfig:
        """veza-payments' config pointing at the fakes (a typed value, not variables).

        In sandbox mode the providers are these fakes: the ``HYPERSWITCH_*`` and
        ``STRIPE_*`` variables are not read.
        """
        return PaymentsConfig(
            hyperswitch_api_key=self.hyperswitch.api_key,
            webhook_keys=(self.webhook_key,),
            hyperswitch_base_url=self.hyperswitch.url,
            stripe_secret_key=self.stripe.api_key,
            stripe_api_base=self.stripe.url,
        )

    def confirm_payment(self, payment_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """What the customer's browser does with the client secret: pay (or fail)."""
        return self.hyperswitch.set_payment_status(payment_id, "succeeded" if succeed else "failed")

    def settle_refund(self, refund_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """What the connector does later to a pending refund."""
        return self.hyperswitch.set_refund_status(refund_id, "succeeded" if succeed else "failed")

    @property
    def delivered(self) -> list[Delivery]:
        """Every webhook POST the emitter made."""
        return self.emitter.delivered

    def run_emitter(self) -> None:
        """Deliver webhooks for status changes, in a daemon thread."""
        self.emitter.start()

    def tick(self) -> None:
        """One pass of the emitter (tests call it to deliver now)."""
        self.emitter.tick()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook was delivered (tests)."""
        return self.emitter.wait_idle(timeout)

    def stop(self) -> None:
        """Stop the emitter and both fakes."""
        self.emitter.stop()
        self.hyperswitch.stop()
        self.stripe.stop()
