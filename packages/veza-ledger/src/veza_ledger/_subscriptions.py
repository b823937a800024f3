"""Subscriptions and the distribution eligibility check.

The original platform let a user subscribe and get ``active`` without paying, which then
passed the distribution gate. Here a subscription is always created
``pending_payment`` (there is no parameter to say otherwise), is activated only when the
order that pays for it is marked paid (by the payment webhook), and the schema refuses
an active subscription without a paying order. The eligibility check says *why* a user
is not eligible, so a user who has not finished paying is told to complete payment, not
that they need a plan they already chose.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger._base import check_id, new_id
from veza_ledger._errors import IllegalTransition, LedgerConfigurationError
from veza_ledger._machines import SUBSCRIPTION
from veza_ledger._orders import OrdersMixin
from veza_ledger._schema import Order, Subscription

DEFAULT_PLAN_RANKS: Mapping[str, int] = {"free": 0, "creator": 1, "pro": 2}
PAID_ORDER = frozenset({"paid", "partially_refunded"})


class EligibilityReason(enum.StrEnum):
    """Why a user may or may not use a feature."""

    OK = "ok"
    NO_PLAN = "no_plan"
    PLAN_TOO_LOW = "plan_too_low"
    PAYMENT_INCOMPLETE = "payment_incomplete"


@attrs.frozen
class Eligibility:
    """The answer of :meth:`SubscriptionsMixin.distribution_eligibility`.

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


class SubscriptionsMixin(OrdersMixin):
    """Subscriptions: pending until paid, and the eligibility gate."""

    plan_ranks: Mapping[str, int] = DEFAULT_PLAN_RANKS

    def create_subscription(
        self,
        *,
        user_id: str,
        plan: str,
        order_id: str | None = None,
        subscription_id: str | None = None,
    ) -> Subscription:
        """Create a subscription in ``pending_payment``, optionally with its paying order.

        When ``order_id``'s payment is confirmed (``mark_paid`` or the payment webhook),
        the subscription becomes ``active`` in the same transaction.
        """
        if plan not in self.plan_ranks:
            msg = f"unknown plan {plan!r}; known: {sorted(self.plan_ranks)}"
            raise LedgerConfigurationError(msg)
        subscription = Subscription(
            id=check_id(subscription_id or new_id(), "subscription_id"),
            user_id=check_id(user_id, "user_id"),
            plan=plan,
            status=SUBSCRIPTION.initial,
            pending_order_id=order_id,
            created_at=self.now(),
            updated_at=self.now(),
        )
        with self.transaction() as session:
            if order_id is not None:
                order = self._get(session, Order, order_id, lock=True)
                if order.status in PAID_ORDER:
                    session.add(subscription)
                    session.flush()
                    self._activate(session, subscription, order)
                    return subscription
            session.add(subscription)
        return subscription

    def subscription(self, subscription_id: str) -> Subscription:
        """Read a subscription."""
        with self.transaction() as session:
            return self._get(session, Subscription, subscription_id)

    def activate_subscription(self, subscription_id: str, *, order_id: str) -> Subscription:
        """Activate with a **paid** order (the only way to ``active``).

        Raises:
            IllegalTransition: The order is not paid, or the subscription cannot move.
        """
        with self.transaction() as session:
            subscription = self._get(session, Subscription, subscription_id, lock=True)
            order = self._get(session, Order, order_id, lock=True)
            self._activate(session, subscription, order)
            return subscription

    def _activate(self, session: Session, subscription: Subscription, order: Order) -> None:
        if order.status not in PAID_ORDER:
            raise IllegalTransition(
                "subscription",
                subscription.id,
                subscription.status,
                f"active (order {order.id} is {order.status}, not paid)",
            )
        self._move(
            session,
            Subscription,
            SUBSCRIPTION,
            subscription,
            "active",
            values={"payment_order_id": order.id, "pending_order_id": None},
        )

    def _activate_subscriptions_paid_by(self, session: Session, order: Order) -> None:
        waiting = session.scalars(
            sa.select(Subscription)
            .where(
                Subscription.pending_order_id == order.id,
                Subscription.status.in_(("pending_payment", "past_due")),
            )
            .execution_options(populate_existing=True)
        ).all()
        for subscription in waiting:
            self._activate(session, subscription, order)

    def mark_past_due(
        self, subscription_id: str, *, renewal_order_id: str | None = None
    ) -> Subscription:
        """``active -> past_due`` (a renewal failed); ``renewal_order_id`` re-activates it."""
        return self._subscription_to(subscription_id, "past_due", pending_order_id=renewal_order_id)

    def cancel_subscription(self, subscription_id: str) -> Subscription:
        """``-> canceled``."""
        return self._subscription_to(subscription_id, "canceled")

    def expire_subscription(self, subscription_id: str) -> Subscription:
        """``-> expired``."""
        return self._subscription_to(subscription_id, "expired")

    def _subscription_to(
        self, subscription_id: str, status: str, *, pending_order_id: str | None = None
    ) -> Subscription:
        with self.transaction() as session:
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
        with self.transaction() as session:
            subscriptions = session.scalars(
                sa.select(Subscription)
                .where(
                    Subscription.user_id == user_id,
                    Subscription.status.in_(("active", "past_due", "pending_payment")),
                )
                .order_by(Subscription.created_at.desc())
            ).all()
        high_enough = [s for s in subscriptions if self.plan_ranks.get(s.plan, -1) >= needed]
        for subscription in high_enough:
            if subscription.status == "active" and subscription.payment_order_id:
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
