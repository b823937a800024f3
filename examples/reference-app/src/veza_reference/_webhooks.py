"""Webhook handlers: provider events into the ledger, nothing else.

``WebhookIntake`` (veza-payments) verifies, logs one record per delivery into the
ledger's SQL log and deduplicates; the handlers turn the event (payments, refunds and
disputes) into a ``ProviderEvent`` and let the ledger apply it (once, in order, with its
journal). When
an order becomes paid, its seller's transfer row is queued for the transfer worker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from veza_ledger import EventOutcome, event_from_hyperswitch, flows
from veza_payments import WebhookEvent

if TYPE_CHECKING:
    from veza_reference._services import Services

logger = logging.getLogger("veza_reference.webhooks")

PLATFORM = "platform"


def seller_account(seller_id: str) -> str:
    """The seller's Stripe connected account (a real app stores it on the user)."""
    return f"acct_{seller_id}"


def queue_seller_transfer(services: Services, order_id: str) -> None:
    """Queue the seller's transfer of ``seller_share`` for a paid order (once, by its id)."""
    order = services.ledger.orders.get(order_id)
    if order.seller_id == PLATFORM or services.stripe is None:
        return
    flows.queue_seller_transfer(
        services.ledger, order.id, destination=seller_account(order.seller_id)
    )


def register_handlers(services: Services) -> None:
    """Register the intake's handlers."""

    def apply(event: WebhookEvent) -> None:
        provider_event = event_from_hyperswitch(event.payload)
        if provider_event is None:
            logger.info(
                "webhook %s carries no object id; recorded, nothing to apply", event.event_id
            )
            return
        outcome = services.ledger.events.apply(provider_event)
        if outcome == EventOutcome.APPLIED and provider_event.event_type == "payment_succeeded":
            order = services.ledger.orders.by_payment_id(provider_event.object_id)
            queue_seller_transfer(services, order.id)

    services.intake.on("payment_*", apply)
    services.intake.on("refund_*", apply)
    # disputes: held, released or lost in the journal; a loss claws the seller's share back
    services.intake.on("dispute_*", apply)
