"""The ledger's tables as SQLAlchemy models, and their ``metadata``.

The services return these rows as frozen snapshots: detached from their session, holding
what their transaction committed, and read-only (a write raises
:class:`~veza_ledger.errors.FrozenRowError`). Change them only through the services,
whose compare-and-set moves keep the machines honest, and read them again.
"""

from veza_ledger._schema import (
    Dispute,
    Finding,
    JournalEntry,
    JournalTransaction,
    Order,
    Override,
    ProcessedEvent,
    ProviderIntent,
    Refund,
    SellerPayout,
    SellerTransfer,
    SellerTransferReversal,
    Subscription,
    WebhookLogRow,
    metadata,
)

__all__ = [
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
]
