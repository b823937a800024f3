"""The ledger's tables as SQLAlchemy models, and their ``metadata``.

The services return these rows, detached from their session (read them freely; change
them only through the services, whose compare-and-set moves keep the machines honest).
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
