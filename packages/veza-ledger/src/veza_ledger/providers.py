"""What the ledger needs from payment providers, as structural protocols.

``veza_ledger.adapters`` implements them over veza-payments; any object with the same
methods takes part (a fake in your tests, another provider).
"""

from veza_ledger._intents import PARKED_RULE, classify_provider_error
from veza_ledger._payout_worker import PayoutCreator, PayoutFinder
from veza_ledger._provider import (
    LegacyTransferFinder,
    PaymentState,
    ProviderView,
    RefundState,
    ReversalFinder,
    TransferCreator,
    TransferFinder,
    TransferReverser,
    TransferState,
)

__all__ = [
    "PARKED_RULE",
    "LegacyTransferFinder",
    "PaymentState",
    "PayoutCreator",
    "PayoutFinder",
    "ProviderView",
    "RefundState",
    "ReversalFinder",
    "TransferCreator",
    "TransferFinder",
    "TransferReverser",
    "TransferState",
    "classify_provider_error",
]
