"""Reconciliation rules: small, pure, documented functions with age bands and actions.

Each rule names the rows it examines (an indexed ``WHERE`` clause), how to read the
provider's side (``fetch``), and a pure ``check(row, state, now, settings)`` that returns
``None`` (healthy) or a :class:`Problem` with a severity, evidence and a proposed action.
Actions are applied by the sweep through the state machines and the journal, never
around them. The docs have one page per rule: what it detects, why it happens, what the
fix does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger._allocation import allocate_reversals, refunded_seller_share
from veza_ledger._provider import PaymentState, ProviderView, RefundState, TransferState
from veza_ledger._schema import Dispute, Order, Refund, SellerTransfer, Subscription

PAID = ("paid", "partially_refunded", "refunded")


@attrs.frozen
class ReconcileSettings:
    """Thresholds and windows of the rules (all documented on the rule pages).

    Attributes:
        stuck_order_after: A ``pending_payment`` order this old is polled.
        stale_order_after: Past this, a still-processing payment is critical.
        stuck_refund_after: A ``pending`` refund this old is polled.
        stale_refund_after: Past this, a still-pending refund is critical.
        missing_id_after: A row without its provider id this old is a finding.
        amount_lookback: Paid orders changed within this window are compared with the PSP.
        recheck_after: A rule examines one object at most once per this interval, which
            is what lets several workers share a sweep without doing work twice.
        dispute_open_after: A dispute still ``opened`` or ``challenged`` this long after
            it opened is a finding (critical past twice as long).
    """

    stuck_order_after: dt.timedelta = dt.timedelta(minutes=30)
    stale_order_after: dt.timedelta = dt.timedelta(hours=24)
    stuck_refund_after: dt.timedelta = dt.timedelta(minutes=15)
    stale_refund_after: dt.timedelta = dt.timedelta(days=3)
    missing_id_after: dt.timedelta = dt.timedelta(minutes=10)
    amount_lookback: dt.timedelta = dt.timedelta(days=2)
    recheck_after: dt.timedelta = dt.timedelta(minutes=5)
    dispute_open_after: dt.timedelta = dt.timedelta(days=45)


@attrs.frozen
class Problem:
    """What a rule found.

    Attributes:
        severity: ``info``, ``warning`` or ``critical``.
        summary: One line for a human.
        evidence: What the ledger and the provider said.
        action: The fix the sweep applies outside dry-run (``None``: a human decides).
        params: The action's arguments.
    """

    severity: str
    summary: str
    evidence: Mapping[str, Any] = attrs.field(factory=dict)
    action: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Context:
    """What ``fetch`` may read: the claim's session and the provider view."""

    session: Session
    provider: ProviderView | None


Check = Callable[[Any, Any, dt.datetime, ReconcileSettings], Problem | None]


@attrs.frozen
class Rule:
    """One reconciliation rule.

    Attributes:
        name: Stable identifier (findings' fingerprints use it).
        model: The table it examines.
        object_type: ``order``, ``refund``, ``transfer`` or ``subscription``.
        where: The indexed candidate condition, from ``now`` and the settings.
        fetch: Reads the other side (provider, related rows); ``None`` if none.
        check: The pure decision.
        needs_provider: Whether ``fetch`` calls the provider.
    """

    name: str
    model: Any
    object_type: str
    where: Callable[[dt.datetime, ReconcileSettings], Any]
    fetch: Callable[[Context, Any], Any]
    check: Check
    needs_provider: bool = True


def _age(row: Any, now: dt.datetime) -> dt.timedelta:  # noqa: ANN401 - any ledger row
    updated: dt.datetime = row.updated_at
    return now - updated


def _missing(column: Any) -> Any:  # noqa: ANN401 - SQL expression
    return sa.or_(column.is_(None), column == "")


# ---------------------------------------------------------------- 1. stuck orders


def check_stuck_order(
    order: Order, payment: PaymentState | None, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """A ``pending_payment`` order past the threshold, against the PSP's payment status."""
    age = _age(order, now)
    evidence = {
        "order_status": order.status,
        "age_seconds": int(age.total_seconds()),
        "psp_payment_id": order.psp_payment_id,
        "psp_status": payment.status if payment else None,
    }
    if order.status != "pending_payment" or age < settings.stuck_order_after:
        return None
    if payment is None:
        if age >= settings.stale_order_after:
            return Problem(
                "warning",
                "no payment at the PSP for a day: expire the order",
                evidence,
                "expire_order",
            )
        return Problem("info", "no payment at the PSP yet", evidence)
    targets = {
        "succeeded": "mark_paid",
        "failed": "mark_failed",
        "cancelled": "cancel_order",
        "expired": "expire_order",
    }
    if payment.status in targets:
        params = (
            {"captured_amount": payment.amount_received} if payment.status == "succeeded" else {}
        )
        return Problem(
            "warning",
            f"the PSP says {payment.status} but the order is pending",
            evidence,
            targets[payment.status],
            params,
        )
    if payment.status == "conflicted":
        return Problem(
            "critical", "the PSP could not reconcile this payment (conflicted)", evidence
        )
    if age >= settings.stale_order_after:
        return Problem("critical", f"payment still {payment.status} after a day", evidence)
    return Problem("info", f"payment still {payment.status}", evidence)


def _fetch_payment(ctx: Context, order: Order) -> PaymentState | None:
    assert ctx.provider is not None  # noqa: S101 - the sweep checks needs_provider
    if order.psp_payment_id:
        return ctx.provider.payment(order.psp_payment_id)
    return ctx.provider.payment_for_order(order.id)


STUCK_ORDERS = Rule(
    "stuck_orders",
    Order,
    "order",
    lambda now, s: sa.and_(
        Order.status == "pending_payment", Order.updated_at < now - s.stuck_order_after
    ),
    _fetch_payment,
    check_stuck_order,
)

# ---------------------------------------------------------------- 2. stuck refunds


def check_stuck_refund(
    refund: Refund, state: RefundState | None, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """A ``pending`` refund past the threshold (pending refunds send no webhook)."""
    age = _age(refund, now)
    if refund.status != "pending" or age < settings.stuck_refund_after:
        return None
    evidence = {
        "refund_status": refund.status,
        "age_seconds": int(age.total_seconds()),
        "provider_status": state.status if state else None,
        "amount": refund.amount,
    }
    if state is None:
        return Problem(
            "critical" if age >= settings.stale_refund_after else "warning",
            "the PSP has no such refund",
            evidence,
        )
    if state.status == "succeeded":
        return Problem(
            "warning", "refund succeeded at the PSP, pending here", evidence, "refund_succeeded"
        )
    if state.status == "failed":
        return Problem(
            "warning", "refund failed at the PSP, pending here", evidence, "refund_failed"
        )
    if age >= settings.stale_refund_after:
        return Problem("critical", f"refund still {state.status} after days", evidence)
    return Problem("info", f"refund still {state.status}", evidence)


def _fetch_refund(ctx: Context, refund: Refund) -> RefundState | None:
    assert ctx.provider is not None  # noqa: S101
    if refund.hyperswitch_refund_id:
        return ctx.provider.refund(refund.hyperswitch_refund_id)
    return ctx.provider.refund_for_row(refund.id)


STUCK_REFUNDS = Rule(
    "stuck_refunds",
    Refund,
    "refund",
    lambda now, s: sa.and_(
        Refund.status == "pending", Refund.updated_at < now - s.stuck_refund_after
    ),
    _fetch_refund,
    check_stuck_refund,
)

# ---------------------------------------------------------------- 3. refunds without id


def check_refund_without_id(
    refund: Refund, state: RefundState | None, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """A refund row whose PSP refund id was never recorded (a crash after the PSP's ACK)."""
    if refund.hyperswitch_refund_id or _age(refund, now) < settings.missing_id_after:
        return None
    evidence = {
        "refund_status": refund.status,
        "amount": refund.amount,
        "provider_refund": state.refund_id if state else None,
    }
    if state is None:
        return Problem(
            "warning", "no provider refund for this row (the call never landed)", evidence
        )
    if state.amount != refund.amount:
        return Problem("critical", "the provider's refund amount differs from the row", evidence)
    return Problem(
        "warning",
        "provider refund found: record its id",
        evidence,
        "set_refund_provider_id",
        {"provider_id": state.refund_id},
    )


REFUNDS_WITHOUT_PROVIDER_ID = Rule(
    "refunds_without_provider_id",
    Refund,
    "refund",
    lambda now, s: sa.and_(
        Refund.status.in_(("pending", "succeeded")),
        _missing(Refund.hyperswitch_refund_id),
        Refund.updated_at < now - s.missing_id_after,
    ),
    lambda ctx, refund: ctx.provider.refund_for_row(refund.id),  # type: ignore[union-attr]
    check_refund_without_id,
)

# ---------------------------------------------------------------- 4. transfers without id


def check_transfer_without_id(
    transfer: SellerTransfer,
    state: TransferState | None,
    now: dt.datetime,
    settings: ReconcileSettings,
) -> Problem | None:
    """A completed transfer with no Stripe id: find it by its row id in Stripe's metadata."""
    if transfer.status != "completed" or transfer.stripe_transfer_id:
        return None
    evidence = {
        "amount": transfer.amount,
        "destination": transfer.destination,
        "found": state.transfer_id if state else None,
    }
    if state is None:
        return Problem(
            "critical", "completed without a Stripe transfer id, none found at Stripe", evidence
        )
    if state.amount != transfer.amount:
        return Problem("critical", "the Stripe transfer's amount differs from the row", evidence)
    return Problem(
        "warning",
        "Stripe transfer found by metadata: backfill its id",
        evidence,
        "set_stripe_transfer_id",
        {"stripe_transfer_id": state.transfer_id},
    )


TRANSFERS_WITHOUT_STRIPE_ID = Rule(
    "transfers_without_stripe_id",
    SellerTransfer,
    "transfer",
    lambda now, s: sa.and_(
        SellerTransfer.status == "completed", _missing(SellerTransfer.stripe_transfer_id)
    ),
    lambda ctx, t: ctx.provider.find_transfer(  # type: ignore[union-attr]
        t.id, destination=t.destination, created_after=t.created_at - dt.timedelta(days=1)
    ),
    check_transfer_without_id,
)

# ---------------------------------------------------------------- 5. unreversed refunds


@attrs.frozen
class OrderTransfers:
    """An order with all its transfers (oldest first), for the allocation rule."""

    order: Order
    transfers: tuple[tuple[str, int], ...]


def expected_reversal(
    order: Order, transfer: SellerTransfer, transfers: Sequence[tuple[str, int]] | None = None
) -> int:
    """This transfer's part of the order's refunded seller share (:func:`allocate_reversals`).

    ``transfers`` are the order's ``(id, amount)`` oldest first; without them the
    transfer is taken as the order's only one.
    """
    siblings = list(transfers) if transfers is not None else [(transfer.id, transfer.amount)]
    return allocate_reversals(refunded_seller_share(order), siblings).get(transfer.id, 0)


def check_unreversed_refund(
    transfer: SellerTransfer,
    order: Order | OrderTransfers | None,
    now: dt.datetime,
    settings: ReconcileSettings,
) -> Problem | None:
    """A refunded order whose seller transfer was never (fully) set for reversal."""
    if order is None or transfer.status not in ("completed", "partially_reversed"):
        return None
    if isinstance(order, OrderTransfers):
        due = expected_reversal(order.order, transfer, order.transfers)
        order = order.order
    else:
        due = expected_reversal(order, transfer)
    if due <= transfer.reversal_due:
        return None
    evidence = {
        "order_refunded": order.refunded_amount,
        "fee_refunded": order.fee_refunded,
        "reversal_due": transfer.reversal_due,
        "expected": due,
        "reversed_amount": transfer.reversed_amount,
    }
    return Problem(
        "critical",
        "refunded, but the seller's transfer was not set for reversal",
        evidence,
        "request_reversal",
        {"reversal_due": due},
    )


def _order_and_transfers(ctx: Context, transfer: SellerTransfer) -> OrderTransfers | None:
    order = _order_of(ctx, transfer)
    if order is None:
        return None
    rows = ctx.session.execute(
        sa.select(SellerTransfer.id, SellerTransfer.amount)
        .where(SellerTransfer.order_id == order.id)
        .order_by(SellerTransfer.created_at, SellerTransfer.id)
    ).all()
    return OrderTransfers(order, tuple((str(i), int(a)) for i, a in rows))


def _order_of(ctx: Context, transfer: SellerTransfer) -> Order | None:
    if transfer.order_id is None:
        return None
    return ctx.session.get(Order, transfer.order_id)


UNREVERSED_REFUNDS = Rule(
    "unreversed_refunds",
    SellerTransfer,
    "transfer",
    lambda now, s: sa.and_(
        SellerTransfer.status.in_(("completed", "partially_reversed")),
        SellerTransfer.order_id.in_(
            sa.select(Order.id).where(Order.status.in_(("partially_refunded", "refunded")))
        ),
    ),
    _order_and_transfers,
    check_unreversed_refund,
    needs_provider=False,
)

# ---------------------------------------------------------------- 6. unpaid subscriptions


def check_unpaid_subscription(
    subscription: Subscription, order: Order | None, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """An ``active`` subscription without a succeeded payment (the original bypass)."""
    if subscription.status != "active":
        return None
    if order is not None and order.status in ("paid", "partially_refunded"):
        return None
    evidence = {
        "payment_order_id": subscription.payment_order_id,
        "order_status": order.status if order else None,
        "plan": subscription.plan,
    }
    return Problem("critical", "active without a succeeded payment", evidence, "mark_past_due")


UNPAID_ACTIVE_SUBSCRIPTIONS = Rule(
    "unpaid_active_subscriptions",
    Subscription,
    "subscription",
    lambda now, s: Subscription.status == "active",
    lambda ctx, sub: ctx.session.get(Order, sub.payment_order_id) if sub.payment_order_id else None,
    check_unpaid_subscription,
    needs_provider=False,
)

# ---------------------------------------------------------------- 7. money mismatch


@attrs.frozen
class MoneyState:
    """The other side of a paid order: the PSP's payment and the refund rows' sum."""

    payment: PaymentState | None
    succeeded_refunds: int


def check_money(
    order: Order, state: MoneyState, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """Money that does not add up on a paid order (a human decides)."""
    evidence: dict[str, Any] = {
        "captured": order.captured_amount,
        "refunded": order.refunded_amount,
        "succeeded_refunds": state.succeeded_refunds,
        "currency": order.currency,
    }
    if (
        state.succeeded_refunds != order.refunded_amount
        or order.refunded_amount > order.captured_amount
    ):
        return Problem(
            "critical", "refund rows do not add up to the order's refunded amount", evidence
        )
    payment = state.payment
    if payment is None:
        return Problem("critical", "paid here, unknown at the PSP", evidence)
    evidence |= {
        "psp_status": payment.status,
        "psp_received": payment.amount_received,
        "psp_currency": payment.currency,
    }
    if payment.status == "conflicted":
        return Problem("critical", "the PSP marks this payment conflicted", evidence)
    if payment.amount_received is not None and payment.amount_received != order.captured_amount:
        return Problem("critical", "the PSP captured a different amount", evidence)
    if payment.currency and payment.currency.upper() != order.currency:
        return Problem("critical", "the PSP charged another currency", evidence)
    return None


def _fetch_money(ctx: Context, order: Order) -> MoneyState:
    assert ctx.provider is not None  # noqa: S101
    total = ctx.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
            Refund.order_id == order.id, Refund.status == "succeeded"
        )
    )
    payment = ctx.provider.payment(order.psp_payment_id) if order.psp_payment_id else None
    return MoneyState(payment, int(total or 0))


MONEY_MISMATCH = Rule(
    "money_mismatch",
    Order,
    "order",
    lambda now, s: sa.and_(Order.status.in_(PAID), Order.updated_at >= now - s.amount_lookback),
    _fetch_money,
    check_money,
)

# ---------------------------------------------------------------- 8. open disputes


def check_open_dispute(
    dispute: Dispute, state: None, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """A dispute still open past the configured age (a lost webhook, or a forgotten case)."""
    if dispute.status not in ("opened", "challenged"):
        return None
    age = now - dispute.opened_at
    if age < settings.dispute_open_after:
        return None
    evidence = {
        "psp_dispute_id": dispute.psp_dispute_id,
        "order_id": dispute.order_id,
        "status": dispute.status,
        "amount": dispute.amount,
        "currency": dispute.currency,
        "age_days": age.days,
    }
    severity = "critical" if age >= 2 * settings.dispute_open_after else "warning"
    return Problem(
        severity,
        f"dispute {dispute.status} for {age.days} days: its funds are still held",
        evidence,
    )


OPEN_DISPUTES = Rule(
    "open_disputes",
    Dispute,
    "dispute",
    lambda now, s: sa.and_(
        Dispute.status.in_(("opened", "challenged")),
        Dispute.opened_at < now - s.dispute_open_after,
    ),
    lambda ctx, dispute: None,
    check_open_dispute,
    needs_provider=False,
)

RULES: Mapping[str, Rule] = {
    r.name: r
    for r in (
        STUCK_ORDERS,
        STUCK_REFUNDS,
        REFUNDS_WITHOUT_PROVIDER_ID,
        TRANSFERS_WITHOUT_STRIPE_ID,
        UNREVERSED_REFUNDS,
        UNPAID_ACTIVE_SUBSCRIPTIONS,
        MONEY_MISMATCH,
        OPEN_DISPUTES,
    )
}
"""Every rule, by name, in the order a sweep runs them."""
