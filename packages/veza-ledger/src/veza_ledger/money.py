"""The money rules and the journal's vocabulary: accounts, legs, shares, allocations.

Pure functions over rows and amounts, the ones the services use, for callers that must
show or check the same numbers.
"""

from veza_ledger._allocation import allocate_reversals
from veza_ledger._base import Accounts
from veza_ledger._disputes import DisputeAccounts
from veza_ledger._journal import Leg, credit, debit
from veza_ledger._late_captures import bookable_capture, capture_amount_problem
from veza_ledger._orders import fee_captured, refund_split, seller_share
from veza_ledger._transfers import reversal_key

__all__ = [
    "Accounts",
    "DisputeAccounts",
    "Leg",
    "allocate_reversals",
    "bookable_capture",
    "capture_amount_problem",
    "credit",
    "debit",
    "fee_captured",
    "refund_split",
    "reversal_key",
    "seller_share",
]
