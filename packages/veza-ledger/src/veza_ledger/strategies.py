"""Hypothesis strategies for your own property-based tests of a veza-ledger integration.

``pip install "veza-ledger[hypothesis]"``, then::

    from veza_ledger.strategies import orders, refund_plans

``orders`` draws the arguments of :meth:`Ledger.create_order` (amount, currency, a fee
no larger than the amount, ids within the ledger's limits); ``captures`` a captured
amount for an order (partial captures included: the fee policy scales the fee);
``refund_plans`` a sequence of partial refunds that never exceeds what was captured,
ending in a full refund or not, as buyers and support agents produce them — the
inputs on which fee and seller-share rounding goes wrong; ``legs`` balanced journal
postings.

The package registers :class:`~veza_ledger.Leg` through hypothesis's entry-point
hook, so ``st.from_type(Leg)`` works without importing this module.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from veza_ledger._base import MAX_AMOUNT, Accounts
from veza_ledger._journal import Leg

__all__ = ["amounts", "captures", "currencies", "ids", "legs", "orders", "refund_plans"]

_CURRENCIES = ("EUR", "USD", "GBP", "JPY", "KWD", "CHF", "SEK")


def ids() -> st.SearchStrategy[str]:
    """Row ids the ledger accepts (1 to 64 characters, not blank)."""
    return st.text(
        alphabet=st.characters(categories=("L", "N"), include_characters="-_.:"),
        min_size=1,
        max_size=64,
    )


def currencies() -> st.SearchStrategy[str]:
    """Three-letter codes, zero- and three-decimal ones included."""
    return st.sampled_from(_CURRENCIES)


def amounts(*, max_value: int = 10_000_000) -> st.SearchStrategy[int]:
    """Positive minor-unit amounts; 1, 2 and 3 drawn often (rounding lives there)."""
    top = min(max_value, MAX_AMOUNT)
    return st.one_of(st.sampled_from([1, 2, 3, 99, 100, top]), st.integers(1, top))


@st.composite
def orders(draw: st.DrawFn, *, max_amount: int = 10_000_000) -> dict[str, Any]:
    """Keyword arguments for :meth:`Ledger.create_order` (buyer, seller, amount, fee...)."""
    amount = draw(amounts(max_value=max_amount))
    fee = draw(st.one_of(st.sampled_from([0, amount]), st.integers(0, amount)))
    buyer, seller = draw(st.lists(ids(), min_size=2, max_size=2, unique=True))
    return {
        "buyer_id": buyer,
        "seller_id": seller,
        "amount": amount,
        "currency": draw(currencies()),
        "fee_amount": fee,
    }


def captures(amount: int) -> st.SearchStrategy[int]:
    """A captured amount for an order of ``amount``: usually all of it, sometimes part."""
    return st.one_of(st.just(amount), st.integers(1, amount))


@st.composite
def refund_plans(draw: st.DrawFn, captured: int, *, max_refunds: int = 6) -> list[int]:
    """Partial refunds whose total never exceeds ``captured``; sometimes exactly it."""
    plan: list[int] = []
    left = captured
    for _ in range(draw(st.integers(1, max_refunds))):
        if left == 0:
            break
        plan.append(draw(st.one_of(st.just(left), st.just(1), st.integers(1, left))))
        left -= plan[-1]
    return plan


@st.composite
def legs(draw: st.DrawFn, *, currency: str | None = None) -> list[Leg]:
    """A balanced posting: debits and credits in one currency that sum to zero."""
    code = currency or draw(currencies())
    debits = draw(st.lists(amounts(max_value=1_000_000), min_size=1, max_size=3))
    total = sum(debits)
    split = draw(st.integers(1, min(3, total)))
    owed = [total // split] * split
    owed[0] += total - sum(owed)
    accounts = st.sampled_from(
        [
            Accounts.PSP_CLEARING,
            Accounts.PLATFORM_FEES,
            Accounts.STRIPE_BALANCE,
            Accounts.seller_payable("s1"),
        ]
    )
    return [Leg(draw(accounts), code, d) for d in debits] + [
        Leg(draw(accounts), code, -c) for c in owed
    ]


def _hypothesis_setup_hook() -> None:
    """Hypothesis's entry-point hook: ``st.from_type`` for veza-ledger's value types."""
    st.register_type_strategy(
        Leg,
        st.builds(
            Leg,
            st.sampled_from([Accounts.PSP_CLEARING, Accounts.PLATFORM_FEES]),
            currencies(),
            amounts(),
        ),
    )
