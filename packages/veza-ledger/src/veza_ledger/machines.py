"""The state machines: each row's statuses and the moves between them."""

from veza_ledger._machines import (
    DISPUTE,
    INTENT,
    MACHINES,
    ORDER,
    PAYOUT,
    REFUND,
    SUBSCRIPTION,
    TRANSFER,
    Machine,
)

__all__ = [
    "DISPUTE",
    "INTENT",
    "MACHINES",
    "ORDER",
    "PAYOUT",
    "REFUND",
    "SUBSCRIPTION",
    "TRANSFER",
    "Machine",
]
