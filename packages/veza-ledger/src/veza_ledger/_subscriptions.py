"""Subscriptions and the distribution eligibility check.

The original platform let a user subscribe and get ``active`` without paying, which then
passed the distribution gate; later, any paid order (another user's, a 1-cent one)
activated any subscription, and one order activated several. Here a subscription is
always created ``pending_payment`` (there is no parameter to say otherwise) and becomes
``active`` only through an order that is

* the subscriber's own (``buyer_id == user_id``),
* paid, with at least the plan's price captured and not refunded, in its currency,
* not disputed (no open or lost dispute), and
* used by no other subscription, ever.

The library checks this on every activation (both databases); the schema enforces it
too: a partial unique index on ``payment_order_id`` (both) and a trigger (PostgreSQL).
The subscription follows its order **at once**, in the transaction that changes the
order: a refund that leaves less than the price, or a dispute, moves it ``active ->
past_due``; a dispute won or cancelled re-activates it. The eligibility check says *why*
a user is not eligible, so a user who has not finished paying is told to complete
payment, not that they need a plan they already chose.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veza_ledger._base import Core, Service, check_id, check_money, new_id
from veza_ledger._errors import IllegalTransitionError, LedgerConfigurationError
from veza_ledger._machines import SUBSCRIPTION
from veza_ledger._schema import Dispute, Order, Subscription
from veza_ledger._subscription_guards import DISPUTED_STATUSES

DEFAULT_PLAN_RANKS: Mapping[str, int] = {"free": 0, "creator": 1, "pro": 2}
PAID_ORDER = frozenset({"paid", "partially_refunded"})


class ActivationRefusedError(IllegalTransitionError):
    """The order cannot activate the subscription (not the subscriber's, too small...).

    Attributes:
        reason: Why, for a human (ids and amounts only).
    """

    def __init__(self, subscription_id: str, from_status: str, reason: str) -> None:
        super().__init__("subscription", subscription_id, from_status, f"active ({reason})")
        self.reason = reason


class EligibilityReason(enum.StrEnum):
    """Why a user may or may not use a feature."""

    OK = "ok"
    NO_PLAN = "no_plan"
    PLAN_TOO_LOW = "plan_too_low"
    PAYMENT_INCOMPLETE = "payment_incomplete"


@attrs.frozen
class Eligibility:
    """The answer of :meth:`Subscriptions.distribution_eligibility`.

    Attributes:
        eligible: Whether the feature is available.
        reason: The typed reason.
        message: What to show the user.
        subscription_id: The subscription the answer is about, if any.
    """

    eligible: bool
    reason: EligibilityReason
    message: str
    subscription_id: str | None = None


def order_problem(
    subscription: Subscription, order: Order, *, disputed: bool, used_by: str | None = None
) -> str | None:
    """Why ``order`` cannot keep (or make) ``subscription`` active; ``None`` if it can.

    Pure, so the rule, the activation and the eligibility check share one definition.

    Args:
        subscription: The subscription (its user, price and currency matter).
        order: The paying order.
        disputed: Whether the order has an open or lost dispute.
        used_by: Another subscription this order already activated, if any.
    """
    if order.buyer_id != subscription.user_id:
        return f"order {order.id} was paid by another user"
    if order.status not in PAID_ORDER:
        return f"order {order.id} is {order.status}, not paid"
    if subscription.price_currency and order.currency != subscription.price_currency:
        return f"order {order.id} is in {order.currency}, the plan in {subscription.price_currency}"
    held = order.captured_amount - order.refunded_amount
    price = subscription.price_amount or 0  # a row built in memory has no default yet
    if held < price:
        return f"order {order.id} holds {held} of the plan's price {price}"
    if disputed:
        return f"order {order.id} is disputed"
    if used_by is not None and used_by != subscription.id:
        return f"order {order.id} already activated subscription {used_by}"
    return None


class Subscriptions(Service):
    """Subscriptions, pending until paid for; the eligibility gate (``ledger.subscriptions``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        plan_ranks: Subscription plans and their order, for eligibility checks.
        plan_prices: ``{plan: (amount, currency)}``: what an activating order must
            cover (see :meth:`create`).
    """

    def __init__(
        self,
        core: Core,
        *,
        plan_ranks: Mapping[str, int] = DEFAULT_PLAN_RANKS,
        plan_prices: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(core)
        self.plan_ranks = dict(plan_ranks)
        self.plan_prices = dict(plan_prices or {})

    def create(
        self,
        *,
        user_id: str,
        plan: str,
        order_id: str | None = None,
        subscription_id: str | None = None,
        price: int | None = None,
        currency: str | None = None,
    ) -> Subscription:
        """Create a subscription in ``pending_payment``, optionally with its paying order.

        When ``order_id``'s payment is confirmed (``mark_paid`` or the payment webhook),
        the subscription becomes ``active`` in the same transaction, if the order
        qualifies (see the module's documentation; otherwise it stays pending).

        The price the activating order must cover is, in this order: ``price`` and
        ``currency``; the Ledger's ``plan_prices[plan]``; the amount and currency of
        ``order_id`` (the order the host created for the plan); none (0).

        Raises:
            LedgerConfigurationError: Unknown plan, or a price without a currency.
        """
        if plan not in self.plan_ranks:
            msg = f"unknown plan {plan!r}; known: {sorted(self.plan_ranks)}"
            raise LedgerConfigurationError(msg)
        row_id = check_id(subscription_id or new_id(), "subscription_id")
        check_id(user_id, "user_id")
        with self._transaction() as session:
            order = None if order_id is None else self._get(session, Order, order_id, lock=True)
            amount, code = self._plan_price(plan, price, currency, order)
            subscription = Subscription(
                id=row_id,
                user_id=user_id,
                plan=plan,
                status=SUBSCRIPTION.initial,
                pending_order_id=order_id,
                price_amount=amount,
                price_currency=code,
                created_at=self._now(),
                updated_at=self._now(),
            )
            session.add(subscription)
            session.flush()
            if order is not None and order.status in PAID_ORDER:
                self._activate(session, subscription, order)
        return subscription

    def _plan_price(
        self, plan: str, price: int | None, currency: str | None, order: Order | None
    ) -> tuple[int, str | None]:
        if price is not None:
            if price == 0 and currency is None:
                return 0, None
            if currency is None:
                msg = "a subscription price needs its currency"
                raise LedgerConfigurationError(msg)
            if price == 0:
                return 0, check_money(1, currency)[1]
            return check_money(price, currency, field="price")
        if plan in self.plan_prices:
            amount, code = self.plan_prices[plan]
            return (0, code.upper()) if amount == 0 else check_money(amount, code, field="price")
        if order is not None:
            return order.amount, order.currency
        return 0, None

    def get(self, subscription_id: str) -> Subscription:
        """Read a subscription."""
        with self._transaction() as session:
            return self._get(session, Subscription, subscription_id)

    def activate(self, subscription_id: str, *, order_id: str) -> Subscription:
        """Activate with the subscriber's own paid order (the only way to ``active``).

        Raises:
            ActivationRefusedError: The order is not the subscriber's, not paid, too small,
                in another currency, disputed, or already activated another
                subscription (also when a concurrent activation took it first).
            IllegalTransitionError: The subscription cannot move to ``active``.
        """
        try:
            with self._transaction() as session:
                # the order's lock first, as refunds and disputes take it (then the rows
                # it activated): the same order everywhere, so never a deadlock
                order = self._get(session, Order, order_id, lock=True)
                subscription = self._get(session, Subscription, subscription_id, lock=True)
                self._activate(session, subscription, order)
                return subscription
        except IntegrityError:
            # The unique index (both databases) or the trigger (PostgreSQL) refused it.
            with self._transaction() as session:
                current = self._get(session, Subscription, subscription_id)
            reason = f"the schema refuses order {order_id} for it (used or unfit)"
            raise ActivationRefusedError(subscription_id, current.status, reason) from None

    def _order_disputed(self, session: Session, order_id: str) -> bool:
        return (
            session.scalar(
                sa.select(sa.func.count()).where(
                    Dispute.order_id == order_id, Dispute.status.in_(DISPUTED_STATUSES)
                )
            )
            or 0
        ) > 0

    def _activation_problem(
        self, session: Session, subscription: Subscription, order: Order
    ) -> str | None:
        used_by = session.scalar(
            sa.select(Subscription.id).where(
                Subscription.payment_order_id == order.id, Subscription.id != subscription.id
            )
        )
        return order_problem(
            subscription,
            order,
            disputed=self._order_disputed(session, order.id),
            used_by=used_by,
        )

    def _activate(self, session: Session, subscription: Subscription, order: Order) -> None:
        problem = self._activation_problem(session, subscription, order)
        if problem is not None:
            raise ActivationRefusedError(subscription.id, subscription.status, problem)
        self._move(
            session,
            Subscription,
            SUBSCRIPTION,
            subscription,
            "active",
            values={"payment_order_id": order.id, "pending_order_id": None},
        )

    def _activate_paid_by(self, session: Session, order: Order) -> None:
        """Activate what ``order`` pays for; an unfit order leaves them pending.

        Never raises for an unfit order: the payment that called this must be booked
        whatever the subscription's fate (the eligibility check tells the user).
        """
        waiting = session.scalars(
            sa.select(Subscription)
            .where(
                Subscription.pending_order_id == order.id,
                Subscription.status.in_(("pending_payment", "past_due")),
            )
            .order_by(Subscription.created_at, Subscription.id)
            .execution_options(populate_existing=True)
        ).all()
        for subscription in waiting:
            if self._activation_problem(session, subscription, order) is None:
                self._activate(session, subscription, order)

    def _follow_order(self, session: Session, order: Order) -> None:
        """Make the subscriptions ``order`` activated follow its state, now.

        ``active`` ones whose order no longer qualifies move to ``past_due``: with the
        order as ``pending_order_id`` while only a dispute stands in the way (a dispute
        won or cancelled re-activates them through :meth:`_activate_paid_by`),
        without one after a refund (a refund is final). Called in the transaction that
        changed the order (refund, dispute), so eligibility never waits for a sweep.
        """
        disputed = self._order_disputed(session, order.id)
        rows = session.scalars(
            sa.select(Subscription)
            .where(Subscription.payment_order_id == order.id, Subscription.status == "active")
            .execution_options(populate_existing=True)
        ).all()
        for subscription in rows:
            if order_problem(subscription, order, disputed=disputed) is None:
                continue
            only_dispute = order_problem(subscription, order, disputed=False) is None
            self._move(
                session,
                Subscription,
                SUBSCRIPTION,
                subscription,
                "past_due",
                values={"pending_order_id": order.id if only_dispute else None},
            )
        if not disputed:
            self._activate_paid_by(session, order)

    def mark_past_due(
        self, subscription_id: str, *, renewal_order_id: str | None = None
    ) -> Subscription:
        """``active -> past_due`` (a renewal failed); ``renewal_order_id`` re-activates it."""
        return self._subscription_to(subscription_id, "past_due", pending_order_id=renewal_order_id)

    def cancel(self, subscription_id: str) -> Subscription:
        """``-> canceled``."""
        return self._subscription_to(subscription_id, "canceled")

    def expire(self, subscription_id: str) -> Subscription:
        """``-> expired``."""
        return self._subscription_to(subscription_id, "expired")

    def _subscription_to(
        self, subscription_id: str, status: str, *, pending_order_id: str | None = None
    ) -> Subscription:
        with self._transaction() as session:
            subscription = self._get(session, Subscription, subscription_id, lock=True)
            values = {"pending_order_id": pending_order_id} if pending_order_id else None
            self._move(session, Subscription, SUBSCRIPTION, subscription, status, values=values)
            return subscription

    def distribution_eligibility(
        self, user_id: str, *, required_plan: str = "creator"
    ) -> Eligibility:
        """May ``user_id`` distribute? With the reason, and the right message."""
        if required_plan not in self.plan_ranks:
            msg = f"unknown plan {required_plan!r}"
            raise LedgerConfigurationError(msg)
        needed = self.plan_ranks[required_plan]
        with self._transaction() as session:
            subscriptions = session.scalars(
                sa.select(Subscription)
                .where(
                    Subscription.user_id == user_id,
                    Subscription.status.in_(("active", "past_due", "pending_payment")),
                )
                .order_by(Subscription.created_at.desc())
            ).all()
            high_enough = [s for s in subscriptions if self.plan_ranks.get(s.plan, -1) >= needed]
            paid = [s for s in high_enough if self._still_paid(session, s)]
        for subscription in paid:
            if subscription.status == "active":
                return Eligibility(
                    eligible=True,
                    reason=EligibilityReason.OK,
                    message="Distribution is enabled.",
                    subscription_id=subscription.id,
                )
        if high_enough:
            subscription = high_enough[0]
            return Eligibility(
                eligible=False,
                reason=EligibilityReason.PAYMENT_INCOMPLETE,
                message=f"Your {subscription.plan} subscription is not linked to a payment: "
                "complete payment to enable distribution.",
                subscription_id=subscription.id,
            )
        active = [s for s in subscriptions if s.status == "active"]
        if active:
            return Eligibility(
                eligible=False,
                reason=EligibilityReason.PLAN_TOO_LOW,
                message=f"Your {active[0].plan} plan does not include distribution: upgrade to "
                f"{required_plan}.",
                subscription_id=active[0].id,
            )
        return Eligibility(
            eligible=False,
            reason=EligibilityReason.NO_PLAN,
            message=f"Distribution requires a {required_plan} plan.",
        )

    def _still_paid(self, session: Session, subscription: Subscription) -> bool:
        """Whether an ``active`` subscription's order still qualifies (read live)."""
        if subscription.status != "active" or not subscription.payment_order_id:
            return False
        order = session.get(Order, subscription.payment_order_id)
        if order is None:
            return False
        disputed = self._order_disputed(session, order.id)
        return order_problem(subscription, order, disputed=disputed) is None
