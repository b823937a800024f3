"""The services a :class:`~veza_ledger.Ledger` is composed of, for type annotations.

Build a :class:`~veza_ledger.Ledger` and use its attributes (``ledger.orders``,
``ledger.refunds``...); the services share its engine, sessions and clock, and receive
from it, explicitly, what they set off in one another.
"""

from veza_ledger._disputes import Disputes
from veza_ledger._events import Events, Operator
from veza_ledger._findings import Reconciliation
from veza_ledger._intents import ProviderIntents
from veza_ledger._journal import Journal
from veza_ledger._late_captures import Captures
from veza_ledger._orders import Orders, Refunds
from veza_ledger._subscriptions import Subscriptions
from veza_ledger._transfers import Payouts, Transfers

__all__ = [
    "Captures",
    "Disputes",
    "Events",
    "Journal",
    "Operator",
    "Orders",
    "Payouts",
    "ProviderIntents",
    "Reconciliation",
    "Refunds",
    "Subscriptions",
    "Transfers",
]
