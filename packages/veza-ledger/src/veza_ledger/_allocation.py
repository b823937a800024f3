"""How an order's refunded seller share is spread over the order's transfers.

The rule (documented in the guide): the order's transfers are taken oldest first
(``created_at``, then ``id``), and each is made due for reversal up to its own amount
until the refunded seller share is used up. So the total due across the transfers is
exactly the refunded seller share (when they add up to at least that much), no
transfer is asked for more than it paid, and a later refund only ever adds to what is
due. The refund path (:meth:`Ledger.refund_succeeded`) and the ``unreversed_refunds``
rule both use this one function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from veza_ledger._schema import Order


def refunded_seller_share(order: Order) -> int:
    """The seller's share of the order's succeeded refunds (refunded minus fee refunded)."""
    return order.refunded_amount - order.fee_refunded


def allocate_reversals(share: int, transfers: Iterable[tuple[str, int]]) -> Mapping[str, int]:
    """What is due for reversal on each transfer, ``{transfer id: amount}``.

    Args:
        share: The order's refunded seller share (minor units, >= 0).
        transfers: ``(id, amount)`` of the order's transfers, oldest first.

    Returns:
        Every transfer id, with ``0 <= due <= amount``; the dues sum to
        ``min(share, sum of amounts)``.
    """
    remaining = max(0, share)
    dues: dict[str, int] = {}
    for transfer_id, amount in transfers:
        take = min(remaining, amount)
        dues[transfer_id] = take
        remaining -= take
    return dues
