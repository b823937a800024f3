"""The built-in sandbox payment provider: the demo runs with no account anywhere.

It is the same fake Hyperswitch and Stripe that veza-payments' tests use (real HTTP
servers on 127.0.0.1, the providers' idempotency rules and error shapes), plus what a
real provider does on its own: when a payment or refund changes status, a signed
webhook is delivered to the app a moment later, and retried while the app answers an
error, as Hyperswitch does. The "customer pays" step of the browser SDK is
``confirm_payment``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import httpx

from veza_payments.testing import FakeHyperswitch, FakeStripe

logger = logging.getLogger("veza_reference.sandbox")

PAYMENT_EVENTS = {
    "succeeded": "payment_succeeded",
    "failed": "payment_failed",
    "cancelled": "payment_cancelled",
}
REFUND_EVENTS = {"succeeded": "refund_succeeded", "failed": "refund_failed"}


class Sandbox:
    """Fake providers plus a webhook emitter thread."""

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
        self.interval = interval
        self._seen: dict[str, str] = {}
        self._pending: list[tuple[str, bytes, int]] = []  # (key, body, attempts)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered: list[tuple[str, int]] = []

    @classmethod
    def start(cls, *, webhook_url: str) -> Sandbox:
        """Start both fakes (the emitter starts with :meth:`run_emitter`)."""
        return cls(
            FakeHyperswitch().start(), FakeStripe().start(), webhook_url, secrets.token_urlsafe(32)
        )

    def environment(self) -> dict[str, str]:
        """The ``HYPERSWITCH_*``/``STRIPE_*`` variables pointing at the fakes."""
        return {
            "HYPERSWITCH_API_KEY": self.hyperswitch.api_key,
            "HYPERSWITCH_BASE_URL": self.hyperswitch.url,
            "HYPERSWITCH_WEBHOOK_KEYS": self.webhook_key,
            "STRIPE_SECRET_KEY": self.stripe.api_key,
            "STRIPE_API_BASE": self.stripe.url,
        }

    def confirm_payment(self, payment_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """What the customer's browser does with the client secret: pay (or fail)."""
        return self.hyperswitch.set_payment_status(payment_id, "succeeded" if succeed else "failed")

    def settle_refund(self, refund_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """What the connector does later to a pending refund."""
        return self.hyperswitch.set_refund_status(refund_id, "succeeded" if succeed else "failed")

    # ------------------------------------------------------------------ the emitter

    def run_emitter(self) -> None:
        """Deliver webhooks for status changes, in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the emitter and both fakes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.hyperswitch.stop()
        self.stripe.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                logger.exception("sandbox webhook emitter failed")

    def tick(self) -> None:
        """One pass: queue events for changed objects, try to deliver the queue."""
        with self.hyperswitch.lock:
            payments = {k: dict(v) for k, v in self.hyperswitch.payments.items()}
            refunds = {k: dict(v) for k, v in self.hyperswitch.refunds.items()}
        for kind, objects, events in (
            ("payment", payments, PAYMENT_EVENTS),
            ("refund", refunds, REFUND_EVENTS),
        ):
            for object_id, obj in objects.items():
                key = f"{kind}:{object_id}"
                status = str(obj.get("status"))
                if self._seen.get(key) == status:
                    continue
                self._seen[key] = status
                if status in events:
                    body = self.hyperswitch.webhook_body(
                        events[status], obj, event_id=f"evt_{key}_{status}"
                    )
                    self._pending.append((key, body, 0))
        still: list[tuple[str, bytes, int]] = []
        for key, body, attempts in self._pending:
            try:
                answered = self.hyperswitch.deliver_webhook(
                    self.webhook_url, self.webhook_key, body, timeout=5
                ).status_code
            except httpx.HTTPError:
                answered = 0
            self.delivered.append((key, answered))
            if not 200 <= answered < 300 and attempts < 20:
                still.append((key, body, attempts + 1))
        self._pending = still

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook was delivered (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pending:
                return True
            time.sleep(0.05)
        return False
