"""The state machines, as data: each is a transition table, nothing more.

The docs draw each table as a diagram, and a test checks the diagrams against these
tables, so the picture cannot drift from the code. Every status change in the ledger
goes through :meth:`Machine.check` and then a compare-and-set ``UPDATE``; the only
bypass is ``Ledger.force_transition``, which writes an audit row.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from veza_ledger._compat import positional_deprecated
from veza_ledger._errors import IllegalTransitionError


@attrs.frozen
class Machine:
    """One state machine.

    Attributes:
        name: ``order``, ``refund``, ``transfer``, ``payout`` or ``subscription``.
        initial: The status rows are created in (the only one).
        transitions: ``from -> allowed targets``.
    """

    name: str
    initial: str
    transitions: Mapping[str, frozenset[str]]

    @property
    def states(self) -> frozenset[str]:
        """Every status of the machine."""
        out = set(self.transitions)
        for targets in self.transitions.values():
            out |= targets
        return frozenset(out)

    @property
    def terminal(self) -> frozenset[str]:
        """Statuses with no way out."""
        return frozenset(s for s in self.states if not self.transitions.get(s))

    def allows(self, from_status: str, to_status: str) -> bool:
        """Whether the table has ``from_status -> to_status``."""
        return to_status in self.transitions.get(from_status, frozenset())

    @positional_deprecated
    def check(self, object_id: str, from_status: str, *, to_status: str) -> None:
        """Raise :class:`IllegalTransitionError` unless the table allows the move."""
        if not self.allows(from_status, to_status):
            raise IllegalTransitionError(self.name, object_id, from_status, to_status)


def _table(**edges: str) -> dict[str, frozenset[str]]:
    return {state: frozenset(targets.split()) for state, targets in edges.items()}


ORDER = Machine(
    "order",
    "pending_payment",
    _table(
        pending_payment="paid failed cancelled expired",
        paid="partially_refunded refunded",
        partially_refunded="partially_refunded refunded",
        failed="paid",
        cancelled="paid",
        expired="paid",
        refunded="",
    ),
)
"""Orders: paid once, refunded in parts, never back to unpaid.

``failed``, ``cancelled`` and ``expired -> paid`` are **late captures** only: the PSP
captured money for an order the ledger had already closed (Hyperswitch lets a failed
payment be retried and succeed; the sweep expires orders itself). The money is booked,
the order remembers which closed status it came from (``late_capture_from``) and an
open ``late_captures`` finding asks an operator to fulfil or refund. Nothing else takes
these edges (``mark_paid`` still refuses anything but ``pending_payment``).
"""

REFUND = Machine(
    "refund",
    "pending",
    _table(pending="succeeded failed", succeeded="", failed=""),
)
"""Refunds: settle once. Pending ones must be polled (no webhook)."""

TRANSFER = Machine(
    "transfer",
    "pending",
    _table(
        pending="completed failed",
        failed="pending",
        completed="reversal_pending",
        reversal_pending="reversed partially_reversed",
        partially_reversed="reversal_pending",
        reversed="",
    ),
)
"""Seller transfers: retried after failure with the same key; reversed (in parts)."""

PAYOUT = Machine(
    "payout",
    "pending",
    _table(
        pending="in_transit paid failed canceled",
        in_transit="paid failed",
        failed="pending",
        paid="failed",
        canceled="",
    ),
)
"""Payouts from a connected account to its bank.

``paid -> failed`` is a bank return: Stripe reports ``payout.failed`` days after
``payout.paid`` when the seller's bank sends the money back to the connected account.
"""

SUBSCRIPTION = Machine(
    "subscription",
    "pending_payment",
    _table(
        pending_payment="active canceled expired",
        active="past_due canceled expired",
        past_due="active canceled expired",
        canceled="",
        expired="",
    ),
)
"""Subscriptions: created ``pending_payment``; only a payment confirmation activates."""

INTENT = Machine(
    "intent",
    "pending",
    _table(
        pending="succeeded parked",
        parked="pending written_off netted",
        succeeded="",
        written_off="",
        netted="",
    ),
)
"""Provider intents: one money-moving provider call (transfer, reversal, payout).

``pending`` from the moment the row is committed (before the call) until the outcome is
recorded: ``succeeded`` with the provider's object id, or ``parked`` after a permanent
error or the retry budget. A parked intent calls nobody until an operator acts: retry
(back to ``pending``, same key, same amount), write off, or net against the seller's
next transfer.
"""

DISPUTE = Machine(
    "dispute",
    "opened",
    _table(
        opened="challenged won lost accepted expired cancelled",
        challenged="won lost",
        won="",
        lost="",
        accepted="",
        expired="",
        cancelled="",
    ),
)
"""Disputes (chargebacks), with Hyperswitch's statuses and its own transition rule.

Hyperswitch's router accepts ``opened -> expired | accepted | cancelled | challenged |
won | lost`` and ``challenged -> won | lost``; every other status is final (a repeated
status is a no-op there and here). Money follows three outcomes: ``opened`` and
``challenged`` hold the disputed amount, ``won`` and ``cancelled`` release it, and
``lost``, ``accepted`` and ``expired`` lose it (Hyperswitch's Stripe-compatible API maps
all three to Stripe's ``lost``). Like :data:`INTENT` it is not in :data:`MACHINES`:
a dispute's status is moved only with its money (never by ``force_transition``).
"""

MACHINES: Mapping[str, Machine] = {
    m.name: m for m in (ORDER, REFUND, TRANSFER, PAYOUT, SUBSCRIPTION)
}
"""The row machines (``force_transition`` works on these). :data:`INTENT` is separate:
an intent's status is only ever moved by the workers and the operator actions."""
