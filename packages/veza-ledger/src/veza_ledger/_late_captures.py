"""Late captures and provider amounts: money the PSP captured is booked or flagged, never dropped.

A capture can land on an order the ledger already closed: Hyperswitch lets a ``failed``
payment be retried until it succeeds, asynchronous methods settle days later, and the
sweep expires orders itself. The policy (``docs/ledger/late-captures.md``) is **book and
flag**: the money the PSP holds is posted to the journal at once (the books follow the
money), the order moves to ``paid`` remembering the closed status it came from
(``late_capture_from``), subscriptions are *not* activated, and an open
``late_captures`` finding asks an operator to ``fulfil`` or ``refund``
(:meth:`Captures.decide`). Refunding automatically was rejected:
a retried payment is usually a buyer who still wants the goods, and a refund is a
money-moving decision the host's business rules own.

Provider amounts are checked, never trusted blindly (:func:`capture_amount_problem`):
a capture of 0 books nothing; more than the order books the order's amount and opens a
``money_mismatch`` finding with both amounts (the excess must go back to the buyer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger._base import Core, Service
from veza_ledger._errors import LedgerConfigurationError, RefundExceedsCapturedError
from veza_ledger._findings import resolve_finding, upsert_finding
from veza_ledger._orders import Refunds
from veza_ledger._schema import Order, Override, Refund

CLOSED_ORDER_STATUSES = frozenset({"failed", "cancelled", "expired"})
"""Order statuses a late capture can land on (each has an edge to ``paid``)."""

CAPTURED_STATUSES = frozenset(
    {"succeeded", "partially_captured", "partially_captured_and_capturable"}
)
"""Hyperswitch payment statuses that mean money was captured."""

LATE_CAPTURE_DECISIONS = ("fulfil", "refund")
"""What an operator may decide about a late capture."""

LATE_CAPTURES_RULE = "late_captures"


def capture_amount_problem(order_amount: int, received: int | None) -> str | None:
    """Why a provider's captured amount cannot be booked as it stands (``None``: it can).

    ``None`` received means the provider did not state an amount (the order's amount is
    booked and ``money_mismatch`` compares it with the PSP's on its next poll).

    Args:
        order_amount: The order's amount.
        received: The provider's ``amount_received``.
    """
    if received is None:
        return None
    if received <= 0:
        return f"the PSP reports a capture with {received} received"
    if received > order_amount:
        return f"the PSP captured {received}, more than the order's {order_amount}"
    return None


def bookable_capture(order_amount: int, received: int | None) -> int | None:
    """What the ledger books for a provider capture: never more than the order.

    A capture above the order's amount books the order's amount (the CHECK keeps
    ``captured_amount <= amount``) *and* is reported by the caller with both amounts.
    """
    if received is None:
        return None
    return min(received, order_amount)


class BookCapture(Protocol):
    """The orders' step that moves an order to ``paid`` and posts the capture."""

    def __call__(
        self,
        session: Session,
        order: Order,
        captured_amount: int | None,
        *,
        values: dict[str, object] | None = None,
    ) -> None: ...


MarkPaid = Callable[[Session, Order, int | None], None]
"""The orders' ``pending_payment -> paid`` step (what a paid order sets off included)."""


class Captures(Service):
    """Captures booked whatever the order's state, and late-capture decisions (``ledger.captures``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        book_capture: The orders' step that books a capture (``late_capture_*`` values).
        mark_paid: The orders' step for an ordinary capture of a pending order.
        refunds: Where a ``refund`` decision creates its refund.
    """

    def __init__(
        self, core: Core, *, book_capture: BookCapture, mark_paid: MarkPaid, refunds: Refunds
    ) -> None:
        super().__init__(core)
        self._book_capture = book_capture
        self._mark_paid = mark_paid
        self._refunds = refunds

    def _book_late_capture(self, session: Session, order: Order, captured: int | None) -> None:
        """Book a capture on a closed order: ``<closed> -> paid``, flagged for an operator."""
        if order.status not in CLOSED_ORDER_STATUSES:
            msg = f"order {order.id} is {order.status}: only a closed order takes a late capture"
            raise LedgerConfigurationError(msg)
        self._book_capture(
            session,
            order,
            captured,
            values={
                "late_capture_from": order.status,
                "late_capture_at": self._now(),
                "late_capture_decision": None,
            },
        )

    def _flag(
        self,
        session: Session,
        rule: str,
        order: Order,
        *,
        severity: str,
        summary: str,
        evidence: dict[str, Any],
    ) -> None:
        """Open (or update) a finding from an event, in the event's transaction."""
        upsert_finding(
            session,
            rule=rule,
            object_type="order",
            object_id=order.id,
            severity=severity,
            summary=summary,
            evidence=evidence,
            proposed_action=None,
            applied_action=None,
            now=self._now(),
        )

    def _apply(self, session: Session, order: Order, received: int | None) -> str:
        """Apply a provider's capture to ``order``, whatever its status.

        Returns:
            ``applied`` (booked), ``flagged`` (a finding, possibly beside a booking that
            could not take the whole amount: then ``applied`` wins only if nothing is
            wrong) or ``no_change`` (already booked, same amount).
        """
        evidence: dict[str, Any] = {
            "order_status": order.status,
            "order_amount": order.amount,
            "ledger_captured": order.captured_amount,
            "psp_received": received,
            "currency": order.currency,
            "psp_payment_id": order.psp_payment_id,
        }
        if order.status not in CLOSED_ORDER_STATUSES and order.status != "pending_payment":
            if received is not None and received != order.captured_amount:
                self._flag(
                    session,
                    "money_mismatch",
                    order,
                    severity="critical",
                    summary="the PSP captured a different amount",
                    evidence=evidence,
                )
                return "flagged"
            return "no_change"
        problem = capture_amount_problem(order.amount, received)
        late = order.status in CLOSED_ORDER_STATUSES
        if received is not None and received <= 0:
            rule = LATE_CAPTURES_RULE if late else "stuck_orders"
            self._flag(
                session,
                rule,
                order,
                severity="critical",
                summary=f"{problem}: nothing booked",
                evidence=evidence,
            )
            return "flagged"
        booked = bookable_capture(order.amount, received)
        if late:
            self._book_late_capture(session, order, booked)
            self._flag(
                session,
                LATE_CAPTURES_RULE,
                order,
                severity="warning",
                summary=f"captured after the order was {evidence['order_status']}: "
                "fulfil or refund",
                evidence=evidence
                | {"late_capture_from": evidence["order_status"], "booked": booked},
            )
        else:
            self._mark_paid(session, order, booked)
        if problem is not None:
            self._flag_excess(session, order, received=received, booked=booked, evidence=evidence)
            return "flagged"
        return "applied"

    def _flag_excess(
        self,
        session: Session,
        order: Order,
        *,
        received: int | None,
        booked: int | None,
        evidence: Mapping[str, Any],
    ) -> bool:
        """Open a ``money_mismatch`` finding for captured money the journal cannot hold.

        The schema keeps ``captured_amount <= amount``, so the part of an over-capture
        above the order is booked nowhere: this finding is its only record, on every
        path that books a capture (webhook or sweep). It is a separate rule from
        ``late_captures`` on purpose: an operator's decision resolves the late capture,
        while the excess is money the buyer paid that stays at the PSP until someone
        refunds it there (a ``refund`` decision returns only what was booked).

        Returns:
            Whether a finding was opened (the PSP captured more than was booked).
        """
        if received is None or booked is None or received <= booked:
            return False
        self._flag(
            session,
            "money_mismatch",
            order,
            severity="critical",
            summary=f"the PSP captured {received}, {booked} booked: "
            f"refund the excess {received - booked} at the PSP",
            evidence=dict(evidence)
            | {"psp_received": received, "booked": booked, "excess": received - booked},
        )
        return True

    # ------------------------------------------------------------------ operators

    def late(self, *, undecided_only: bool = True) -> list[Order]:
        """Orders paid by a late capture (by default, those still waiting for a decision)."""
        with self._transaction() as session:
            query = sa.select(Order).where(Order.late_capture_from.is_not(None))
            if undecided_only:
                query = query.where(Order.late_capture_decision.is_(None))
            return list(session.scalars(query.order_by(Order.late_capture_at, Order.id)))

    def decide(self, order_id: str, decision: str, *, actor: str, reason: str) -> Refund | None:
        """Record an operator's decision on a late capture (audited, resolves its finding).

        ``fulfil`` keeps the money: the order is an ordinary paid order from now on.
        ``refund`` creates a ``pending`` refund of everything not yet refunded and
        returns it: send it to the PSP as any refund (its id is the idempotency key).
        Only the late capture's finding is resolved: the part of an over-capture above
        the order was never booked, so it cannot be in that refund and its
        ``money_mismatch`` finding stays open until the excess is refunded at the PSP.

        Args:
            order_id: The late-captured order.
            decision: ``fulfil`` or ``refund``.
            actor: Who decided (audit trail).
            reason: Why (audit trail).

        Raises:
            LedgerConfigurationError: Unknown decision, no actor/reason, or the order has
                no undecided late capture.
        """
        if decision not in LATE_CAPTURE_DECISIONS:
            msg = f"decision must be one of {LATE_CAPTURE_DECISIONS}, got {decision!r}"
            raise LedgerConfigurationError(msg)
        if not actor or not actor.strip() or not reason or not reason.strip():
            msg = "a late-capture decision needs an actor and a reason (audit trail)"
            raise LedgerConfigurationError(msg)
        with self._transaction() as session:
            order = self._get(session, Order, order_id, lock=True)
            if order.late_capture_from is None or order.late_capture_decision is not None:
                msg = f"order {order_id} has no late capture waiting for a decision"
                raise LedgerConfigurationError(msg)
            session.execute(
                sa.update(Order)
                .where(Order.id == order.id)
                .values(late_capture_decision=decision, updated_at=self._now())
            )
            session.add(
                Override(
                    machine="order",
                    object_id=order.id,
                    from_status=order.status,
                    to_status=order.status,
                    reason=f"late capture: {decision}: {reason.strip()}"[:1000],
                    actor=actor.strip()[:128],
                    at=self._now(),
                )
            )
            resolve_finding(
                session,
                rule=LATE_CAPTURES_RULE,
                object_type="order",
                object_id=order.id,
                now=self._now(),
            )
        if decision == "refund":
            try:
                return self._refunds.create(order_id, reason="late capture refunded")
            except RefundExceedsCapturedError:  # refunded already (by hand, or in the PSP)
                return None
        return None


def late_capture_evidence(order: Order, now: dt.datetime) -> dict[str, Any]:
    """The ledger's side of a late capture, for findings."""
    return {
        "order_status": order.status,
        "late_capture_from": order.late_capture_from,
        "late_capture_at": order.late_capture_at,
        "ledger_captured": order.captured_amount,
        "currency": order.currency,
        "age_seconds": int((now - order.late_capture_at).total_seconds())
        if order.late_capture_at
        else None,
    }
