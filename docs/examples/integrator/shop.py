"""A small shop built on veza: the service an integrator writes, and tests with veza's strategies.

It takes payments through Hyperswitch (one idempotency key per checkout), marks orders
paid from verified webhooks (each event applied once), hands out signed download URLs
for its catalogue through a Bunny pull zone, and stores uploads. Nothing in it is
specific to a web framework: the routes of your app call these methods.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import quote

from veza_cdn import BunnySigner
from veza_payments import HyperswitchClient, InMemoryWebhookLog, WebhookEvent, WebhookIntake
from veza_storage import LocalStorage


class Shop:
    """Orders, payments, webhooks, downloads and uploads of one small shop."""

    def __init__(
        self,
        payments: HyperswitchClient,
        webhook_key: str,
        cdn_key: str,
        storage_root: Path,
        cdn_base: str = "https://shop.b-cdn.net",
    ) -> None:
        self.payments = payments
        self.paid: dict[str, int] = {}  # payment id -> times marked paid (must stay 1)
        self._lock = threading.Lock()
        self.intake = WebhookIntake(InMemoryWebhookLog(), (webhook_key,))
        self.intake.on("payment_succeeded", self._payment_succeeded)
        self.signer = BunnySigner(cdn_key)
        self.cdn_base = cdn_base
        self.storage = LocalStorage(storage_root)

    def checkout(self, checkout_key: str, amount: int, currency: str) -> str:
        """Start a payment; retrying with the same key never charges twice."""
        return self.payments.create_payment(
            checkout_key, amount=amount, currency=currency
        ).payment_id

    def webhook(self, headers: dict[str, str], body: bytes) -> int:
        """The webhook route: the status to answer."""
        return self.intake.handle(headers, body).status

    def _payment_succeeded(self, event: WebhookEvent) -> None:
        with self._lock:
            payment_id = str(event.object["payment_id"])
            self.paid[payment_id] = self.paid.get(payment_id, 0) + 1

    def download_url(self, path: str, *, expires: int) -> str:
        """A URL the pull zone serves until ``expires`` (``path`` decoded, ``/a b.mp3``)."""
        return self.signer.sign_url(self.cdn_base + _encode(path), expires=expires)

    def upload(self, key: str, data: bytes) -> None:
        """Store an upload under ``key`` (hostile keys raise ``InvalidKeyError``)."""
        self.storage.put(key, data, content_type="application/octet-stream")


def _encode(path: str) -> str:
    return quote(path, safe="/")
