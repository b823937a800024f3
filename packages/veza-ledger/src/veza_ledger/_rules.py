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
from typing import Any, Protocol

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, Session

from veza_ledger._allocation import allocate_reversals, refunded_seller_share
from veza_ledger._late_captures import (
    CAPTURED_STATUSES,
    CLOSED_ORDER_STATUSES,
    LATE_CAPTURES_RULE,
    bookable_capture,
    capture_amount_problem,
    late_capture_evidence,
)
from veza_ledger._provider import (
    LegacyTransferFinder,
    PaymentState,
    ProviderView,
    RefundState,
    TransferState,
)
from veza_ledger._schema import (
    Dispute,
    Order,
    Refund,
    RuleCheck,
    SellerTransfer,
    Subscription,
)

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
        amount_lookback: Orders changed within this window are compared with the PSP
            every ``recheck_after``; older ones too, at the slower ``old_order_recheck``.
        old_order_recheck: The cadence for orders older than ``amount_lookback``
            (``money_mismatch`` covers every age; ``late_captures`` closed orders up to
            ``late_capture_lookback``). Paged by id like every claim, so a large backlog
            is spread over sweeps by the examination marks, never read at once.
        late_capture_lookback: Closed orders changed within this window are polled for a
            capture that landed after they closed.
        recheck_after: A rule examines one object at most once per this interval, which
            is what lets several workers share a sweep without doing work twice.
        dispute_open_after: A dispute still ``opened`` or ``challenged`` this long after
            it opened is a finding (critical past twice as long).
    """

    stuck_order_after: dt.timedelta = dt.timedelta(minutes=30)
    stale_order_after: dt.timedelta = dt.timedelta(hours=24)
    stuck_refund_after: dt.timedelta = attrs.field(default=dt.timedelta(minutes=15), kw_only=True)
    stale_refund_after: dt.timedelta = attrs.field(default=dt.timedelta(days=3), kw_only=True)
    missing_id_after: dt.timedelta = attrs.field(default=dt.timedelta(minutes=10), kw_only=True)
    amount_lookback: dt.timedelta = attrs.field(default=dt.timedelta(days=2), kw_only=True)
    recheck_after: dt.timedelta = attrs.field(default=dt.timedelta(minutes=5), kw_only=True)
    old_order_recheck: dt.timedelta = attrs.field(default=dt.timedelta(days=1), kw_only=True)
    late_capture_lookback: dt.timedelta = attrs.field(default=dt.timedelta(days=30), kw_only=True)
    dispute_open_after: dt.timedelta = attrs.field(default=dt.timedelta(days=45), kw_only=True)


@attrs.frozen
class Problem:
    """What a rule found.

    Attributes:
        severity: ``info``, ``warning`` or ``critical``.
        summary: One line for a human.
        evidence: What the ledger and the provider said.
        action: The fix the sweep applies outside dry-run (``None``: a human decides).
        params: The action's arguments.
        keep_open: The finding stays open after the fix (a human still has to decide,
            e.g. fulfil or refund a late capture).
    """

    severity: str
    summary: str
    evidence: Mapping[str, Any] = attrs.field(factory=dict)
    action: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    keep_open: bool = False


@attrs.frozen
class Context:
    """What ``fetch`` may read: the claim's session and the provider view."""

    session: Session
    provider: ProviderView | None

    @property
    def live_provider(self) -> ProviderView:
        """The provider view, for rules with ``needs_provider`` (the sweep gives them one)."""
        if self.provider is None:
            msg = "a rule that reads the provider ran without one (needs_provider not set?)"
            raise RuntimeError(msg)
        return self.provider


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
        claim: An extra condition for claiming candidates only (not for re-checking a
            claimed row under its lock): the cadence of old rows, read from the
            examination marks that the lease itself rewrites.
    """

    name: str
    model: Any
    object_type: str
    where: Callable[[dt.datetime, ReconcileSettings], Any]
    fetch: Callable[[Context, Any], Any]
    check: Check
    needs_provider: bool = True
    claim: Callable[[dt.datetime, ReconcileSettings], Any] | None = None


class _Updated(Protocol):
    @property
    def updated_at(self) -> dt.datetime: ...


def _age(row: _Updated, now: dt.datetime) -> dt.timedelta:
    return now - row.updated_at


def _missing(column: QueryableAttribute[str | None]) -> sa.ColumnElement[bool]:
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
        "partially_captured": "mark_paid",
        "failed": "mark_failed",
        "cancelled": "cancel_order",
        "expired": "expire_order",
    }
    if payment.status in ("succeeded", "partially_captured"):
        received = payment.amount_received
        problem = capture_amount_problem(order.amount, received)
        if received is not None and received <= 0:  # nothing to book; never a full capture
            return Problem("critical", f"{problem}: nothing booked", evidence)
        if problem is not None:  # booked up to the order; money_mismatch keeps both amounts
            return Problem(
                "critical",
                f"{problem}: book the order's amount, refund the excess",
                evidence | {"psp_received": received},
                "mark_paid",
                {
                    "captured_amount": bookable_capture(order.amount, received),
                    "psp_received": received,
                },
            )
    if payment.status in targets:
        params = (
            {"captured_amount": payment.amount_received}
            if targets[payment.status] == "mark_paid"
            else {}
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
    provider = ctx.live_provider
    if order.psp_payment_id:
        return provider.payment(order.psp_payment_id)
    return provider.payment_for_order(order.id)


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
    """A ``pending`` refund past the threshold (pending refunds send no webhook).

    What the PSP refunded is what is booked: a PSP amount other than the row's is booked
    (if it fits) and the finding stays open with both amounts until an operator
    acknowledges it (suppress); one that does not fit is booked nowhere.
    """
    age = _age(refund, now)
    evidence = {
        "refund_status": refund.status,
        "age_seconds": int(age.total_seconds()),
        "provider_status": state.status if state else None,
        "amount": refund.amount,
        "requested": refund.requested_amount or refund.amount,
        "psp_refunded": state.amount if state else None,
    }
    if refund.status == "succeeded" and refund.requested_amount is not None:
        return Problem(
            "critical", "the PSP refunded another amount than the row asked (booked)", evidence
        )
    if refund.status != "pending" or age < settings.stuck_refund_after:
        return None
    if state is None:
        return Problem(
            "critical" if age >= settings.stale_refund_after else "warning",
            "the PSP has no such refund",
            evidence,
        )
    if state.status == "succeeded" and state.amount != refund.amount:
        return Problem(
            "critical",
            "refund succeeded at the PSP with another amount than the row asked: "
            "book what the PSP refunded",
            evidence,
            "refund_succeeded",
            {"amount": state.amount},
            keep_open=True,
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
    provider = ctx.live_provider
    if refund.hyperswitch_refund_id:
        return provider.refund(refund.hyperswitch_refund_id)
    return provider.refund_for_row(refund.id)


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
"""Refunds booked with another amount than asked come back through their open finding."""

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
    lambda ctx, refund: ctx.live_provider.refund_for_row(refund.id),
    check_refund_without_id,
)

# ---------------------------------------------------------------- 4. transfers without id


def check_transfer_without_id(
    transfer: SellerTransfer,
    state: TransferState | None,
    now: dt.datetime,
    settings: ReconcileSettings,
) -> Problem | None:
    """A transfer Stripe made, with no Stripe id: find it by its key or legacy order id.

    Examined in every status where a Stripe transfer exists (``completed`` and, after a
    refund, ``reversal_pending`` / ``partially_reversed``): the reversal worker cannot
    reverse without the id, so the finding stays open until the id is recorded.
    """
    if transfer.status not in WITH_STRIPE_TRANSFER or transfer.stripe_transfer_id:
        return None
    evidence = {
        "amount": transfer.amount,
        "status": transfer.status,
        "order_id": transfer.order_id,
        "destination": transfer.destination,
        "found": state.transfer_id if state else None,
        "matched_by": (
            None
            if state is None
            else "veza_idempotency_key"
            if state.metadata.get("veza_idempotency_key") == transfer.id
            else "order_id"
            if transfer.order_id and state.metadata.get("order_id") == transfer.order_id
            else "veza_idempotency_key"
        ),
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


WITH_STRIPE_TRANSFER = ("completed", "reversal_pending", "partially_reversed")
"""Transfer statuses in which a Stripe transfer exists (its id is needed to reverse)."""


def _find_transfer(ctx: Context, transfer: SellerTransfer) -> TransferState | None:
    """By the row's key first; then, for a legacy row, by its order id in the metadata."""
    provider = ctx.live_provider
    after = transfer.created_at - dt.timedelta(days=1)
    found = provider.find_transfer(
        transfer.id, destination=transfer.destination, created_after=after
    )
    if found is None and transfer.order_id and isinstance(provider, LegacyTransferFinder):
        found = provider.find_transfer_by_order(
            transfer.order_id, destination=transfer.destination, created_after=after
        )
    return found


TRANSFERS_WITHOUT_STRIPE_ID = Rule(
    "transfers_without_stripe_id",
    SellerTransfer,
    "transfer",
    lambda now, s: sa.and_(
        SellerTransfer.status.in_(WITH_STRIPE_TRANSFER),
        _missing(SellerTransfer.stripe_transfer_id),
    ),
    _find_transfer,
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
    """The other side of a paid order: the PSP's payment and the refund rows.

    Attributes:
        payment: The PSP's payment (``None``: it has none).
        succeeded_refunds: The sum of the order's succeeded refund rows.
        refund_ids: The PSP refund ids the ledger's rows carry.
        refunds_without_id: Rows (pending or succeeded) whose PSP id is not recorded
            yet: that many unknown PSP refunds may be theirs.
    """

    payment: PaymentState | None
    succeeded_refunds: int
    refund_ids: frozenset[str] = frozenset()
    refunds_without_id: int = 0


def check_money(
    order: Order, state: MoneyState, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """Money that does not add up on a paid order (a human decides).

    Every amount the PSP states is compared with the ledger's: what it captured, in
    which currency, its status (a payment ``failed`` at the PSP is no capture), and the
    refunds it lists (one the ledger lacks was made in the PSP's dashboard).
    """
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
    if payment.status not in CAPTURED_STATUSES:
        return Problem(
            "critical", f"paid here, {payment.status} at the PSP (nothing captured)", evidence
        )
    if payment.amount_received is not None and payment.amount_received != order.captured_amount:
        return Problem("critical", "the PSP captured a different amount", evidence)
    if payment.currency and payment.currency.upper() != order.currency:
        return Problem("critical", "the PSP charged another currency", evidence)
    if payment.refunds is not None:
        unknown = [
            r
            for r in payment.refunds
            if r.refund_id not in state.refund_ids and r.status in ("succeeded", "pending")
        ]
        if len(unknown) > state.refunds_without_id:
            evidence["psp_refunds_unknown_here"] = [
                {"refund_id": r.refund_id, "status": r.status, "amount": r.amount} for r in unknown
            ]
            return Problem(
                "critical",
                "the PSP lists refunds the ledger lacks (made outside veza)",
                evidence,
            )
    return None


def _fetch_money(ctx: Context, order: Order) -> MoneyState:
    provider = ctx.live_provider
    rows = ctx.session.execute(
        sa.select(Refund.amount, Refund.status, Refund.hyperswitch_refund_id).where(
            Refund.order_id == order.id, Refund.status.in_(("pending", "succeeded"))
        )
    ).all()
    total = sum(int(a) for a, status, _ in rows if status == "succeeded")
    ids = frozenset(str(i) for _, _, i in rows if i)
    payment = provider.payment(order.psp_payment_id) if order.psp_payment_id else None
    return MoneyState(payment, total, ids, sum(1 for _, _, i in rows if not i))


def _not_examined_since(rule: str, since: dt.datetime) -> sa.ColumnElement[bool]:
    return ~sa.exists().where(
        RuleCheck.rule == rule, RuleCheck.object_id == Order.id, RuleCheck.checked_at >= since
    )


MONEY_MISMATCH = Rule(
    "money_mismatch",
    Order,
    "order",
    lambda now, s: Order.status.in_(PAID),
    _fetch_money,
    check_money,
    claim=lambda now, s: sa.or_(
        Order.updated_at >= now - s.amount_lookback,
        _not_examined_since("money_mismatch", now - s.old_order_recheck),
    ),
)
"""Every paid order, whatever its age: recent ones each ``recheck_after``, older ones
each ``old_order_recheck`` (keyset-paged by id like every claim)."""

# ---------------------------------------------------------------- 8. late captures


def check_late_capture(
    order: Order, payment: PaymentState | None, now: dt.datetime, settings: ReconcileSettings
) -> Problem | None:
    """A closed order the PSP captured money for: booked, then open until an operator decides.

    Policy (``late-captures.md``): book and flag. The capture is posted (the books follow
    the money) and the finding stays open until ``decide_late_capture`` records
    ``fulfil`` or ``refund``.
    """
    evidence = late_capture_evidence(order, now) | {
        "order_amount": order.amount,
        "psp_payment_id": order.psp_payment_id,
        "psp_status": payment.status if payment else None,
        "psp_received": payment.amount_received if payment else None,
    }
    if order.late_capture_from is not None and order.late_capture_decision is None:
        return Problem(
            "warning",
            f"captured after the order was {order.late_capture_from}: fulfil or refund",
            evidence,
        )
    if order.status not in CLOSED_ORDER_STATUSES:
        return None
    if payment is None or payment.status not in CAPTURED_STATUSES:
        return None
    received = payment.amount_received
    if received is not None and received <= 0:
        problem = capture_amount_problem(order.amount, received)
        return Problem("critical", f"{problem} on a {order.status} order: nothing booked", evidence)
    return Problem(
        "critical",
        f"the PSP captured money for a {order.status} order: booked, fulfil or refund",
        evidence,
        "book_late_capture",
        {"captured_amount": bookable_capture(order.amount, received), "psp_received": received},
        keep_open=True,
    )


LATE_CAPTURES = Rule(
    LATE_CAPTURES_RULE,
    Order,
    "order",
    lambda now, s: sa.or_(
        sa.and_(
            Order.status.in_(tuple(CLOSED_ORDER_STATUSES)),
            Order.updated_at >= now - s.late_capture_lookback,
        ),
        sa.and_(Order.late_capture_from.is_not(None), Order.late_capture_decision.is_(None)),
    ),
    _fetch_payment,
    check_late_capture,
    claim=lambda now, s: sa.or_(
        Order.updated_at >= now - s.amount_lookback,
        Order.late_capture_from.is_not(None),
        _not_examined_since(LATE_CAPTURES_RULE, now - s.old_order_recheck),
    ),
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
        LATE_CAPTURES,
        MONEY_MISMATCH,
        OPEN_DISPUTES,
    )
}
"""Every rule, by name, in the order a sweep runs them."""
