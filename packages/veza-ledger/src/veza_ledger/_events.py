"""Applying provider events (webhooks, polls) idempotently, and manual overrides.

``apply_event`` records the event id in ``ledger_processed_events`` **in the same
transaction** as its effect: a duplicate delivery finds the id and changes nothing; two
concurrent deliveries race on the primary key and one rolls back. An event older than
the last one applied to the same object (``last_event_at``) is recorded as ``stale``
and changes nothing, so an out-of-order delivery never regresses a newer state. An
event about an object the ledger does not know yet raises :class:`RecordNotFoundError` (nothing
is recorded): the webhook answers 500 and the provider delivers it again later.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veza_ledger._base import Core, Service, check_aware, check_id
from veza_ledger._compat import positional_deprecated
from veza_ledger._errors import AmountMismatchError, LedgerConfigurationError, LedgerError
from veza_ledger._findings import upsert_finding
from veza_ledger._late_captures import CLOSED_ORDER_STATUSES
from veza_ledger._machines import MACHINES
from veza_ledger._schema import (
    Order,
    Override,
    ProcessedEvent,
    Refund,
    SellerPayout,
    SellerTransfer,
    Subscription,
)
from veza_ledger._upsert import insert_ignore

MODELS: Mapping[str, Any] = {
    "order": Order,
    "refund": Refund,
    "transfer": SellerTransfer,
    "payout": SellerPayout,
    "subscription": Subscription,
}


class EventOutcome(enum.StrEnum):
    """What applying an event did."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    NO_CHANGE = "no_change"
    IGNORED = "ignored"
    FLAGGED = "flagged"
    """Recorded with an open finding: the provider's amount could not be booked as is."""


@attrs.frozen
class ProviderEvent:
    """A provider's statement about one object, from a webhook or a poll.

    Attributes:
        event_id: The provider's event id (the dedupe key).
        event_type: ``payment_succeeded``, ``payment_failed``, ``payment_cancelled``,
            ``payment_expired``, ``refund_succeeded``, ``refund_failed`` (others are
            recorded and ignored).
        object_id: The PSP payment id or refund id the event is about.
        occurred_at: When the provider says it happened (orders events per object).
        amount: The captured amount for payments (``amount_received``), the refunded
            amount for refunds, the disputed amount for disputes, if the provider stated it.
        payment_id: For disputes: the PSP payment disputed (finds the order).
        currency: For disputes: the disputed amount's currency.
        fee: For lost disputes: the chargeback fee, when the source reports one
            (Hyperswitch's dispute payload does not).
        reason: For disputes: the connector's reason.
        stage: For disputes: ``pre_dispute``, ``dispute`` or ``pre_arbitration``.
    """

    event_id: str
    event_type: str
    object_id: str
    occurred_at: dt.datetime
    amount: int | None = None
    payment_id: str | None = None
    currency: str | None = None
    fee: int | None = None
    reason: str | None = None
    stage: str | None = None


PAYMENT_TARGETS = {
    "payment_succeeded": "paid",
    "payment_captured": "paid",
    "payment_failed": "failed",
    "payment_cancelled": "cancelled",
    "payment_expired": "expired",
}
REFUND_TARGETS = {"refund_succeeded": "succeeded", "refund_failed": "failed"}
MAX_EVENT_ID = 255  # the processed-events key (Hyperswitch's ids are far shorter)


def event_from_hyperswitch(payload: Mapping[str, Any]) -> ProviderEvent | None:
    """Read a Hyperswitch webhook body into a :class:`ProviderEvent` (``None``: not ours).

    Only ids, types, statuses and amounts are read: the ledger knows nothing else about
    the provider.
    """
    event_id, event_type = payload.get("event_id"), payload.get("event_type")
    content = payload.get("content")
    obj = content.get("object") if isinstance(content, dict) else None
    if (
        not isinstance(event_id, str)
        or not isinstance(event_type, str)
        or not isinstance(obj, dict)
    ):
        return None
    if event_type.startswith("dispute_"):
        return _dispute_from_hyperswitch(event_id, event_type, payload, obj)
    if event_type in REFUND_TARGETS:
        object_id = obj.get("refund_id")
    elif event_type.startswith("payment_"):
        object_id = obj.get("payment_id")
    else:
        object_id = obj.get("payment_id") or obj.get("refund_id") or obj.get("dispute_id")
    if not isinstance(object_id, str) or not object_id:
        return None
    occurred = _parse_time(payload.get("timestamp")) or _parse_time(obj.get("updated"))
    amount = (
        obj.get("amount_received")
        if event_type in PAYMENT_TARGETS
        else obj.get("amount")
        if event_type in REFUND_TARGETS
        else None
    )
    return ProviderEvent(
        event_id=event_id,
        event_type=event_type,
        object_id=object_id,
        occurred_at=occurred or dt.datetime.now(dt.UTC),
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
    )


def _minor_units(value: object) -> int | None:
    """Hyperswitch's ``StringMinorUnit`` (``"1000"``) or an int; ``None`` if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dispute_from_hyperswitch(
    event_id: str, event_type: str, payload: Mapping[str, Any], obj: Mapping[str, Any]
) -> ProviderEvent | None:
    """A ``dispute_*`` body (``content.object`` is Hyperswitch's ``DisputeResponse``).

    Read: ``dispute_id`` (the object), ``payment_id``, ``amount`` (a string of minor
    units), ``currency``, ``dispute_stage``, ``connector_reason``. Hyperswitch sends no
    fee. The event time is the envelope's ``timestamp``, else ``connector_updated_at``.
    """
    object_id = _text(obj.get("dispute_id"))
    if object_id is None:
        return None
    occurred = (
        _parse_time(payload.get("timestamp"))
        or _parse_time(obj.get("connector_updated_at"))
        or _parse_time(obj.get("created_at"))
    )
    currency = _text(obj.get("currency"))
    return ProviderEvent(
        event_id=event_id,
        event_type=event_type,
        object_id=object_id,
        occurred_at=occurred or dt.datetime.now(dt.UTC),
        amount=_minor_units(obj.get("amount")),
        payment_id=_text(obj.get("payment_id")),
        currency=currency.upper() if currency else None,
        reason=_text(obj.get("connector_reason")),
        stage=_text(obj.get("dispute_stage")),
    )


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Events(Service):
    """Provider events, each applied exactly once (``ledger.events``).

    Args:
        core: The ledger's shared engine, sessions and clock.
        order_by_payment: The orders' step that finds (and locks) a payment's order.
        refund_by_provider: The refunds' step that finds (and locks) a PSP refund's row.
        book_refund: The refunds' step that books a succeeded refund, at the PSP's amount.
        apply_capture: The captures' step that books or flags a capture, whatever the
            order's status.
        dispute_event: The disputes' step for ``dispute_*`` events.
    """

    def __init__(
        self,
        core: Core,
        *,
        order_by_payment: Callable[[Session, str], Order],
        refund_by_provider: Callable[[Session, str], Refund],
        book_refund: Callable[[Session, Refund, int | None], None],
        apply_capture: Callable[[Session, Order, int | None], str],
        dispute_event: Callable[[Session, ProviderEvent], EventOutcome],
    ) -> None:
        super().__init__(core)
        self._order_by_payment = order_by_payment
        self._refund_by_provider = refund_by_provider
        self._book_refund = book_refund
        self._apply_capture = apply_capture
        self._dispute_event = dispute_event

    def apply(self, event: ProviderEvent) -> EventOutcome:
        """Apply ``event`` once; see the module's documentation for the rules.

        Raises:
            RecordNotFoundError: The object is unknown (yet); nothing was recorded.
            IllegalTransitionError: Never for events: impossible moves are ``no_change``.
        """
        check_id(event.object_id, "object_id")
        check_aware(event.occurred_at, "occurred_at")
        if not event.event_id.strip() or len(event.event_id) > MAX_EVENT_ID:
            msg = f"event_id must be 1 to {MAX_EVENT_ID} characters, got {event.event_id!r}"
            raise LedgerConfigurationError(msg)
        try:
            with self._transaction() as session:
                inserted = insert_ignore(
                    session,
                    ProcessedEvent,
                    {
                        "event_id": event.event_id,
                        "event_type": event.event_type,
                        "object_id": event.object_id,
                        "outcome": "applying",
                        "processed_at": self._now(),
                    },
                    index_elements=["event_id"],
                )
                if not inserted:
                    return EventOutcome.DUPLICATE
                outcome = self._dispatch(session, event)
                session.execute(
                    sa.update(ProcessedEvent)
                    .where(ProcessedEvent.event_id == event.event_id)
                    .values(outcome=outcome.value)
                )
                return outcome
        except IntegrityError:
            # A concurrent delivery of the same event committed first.
            with self._transaction() as session:
                if session.get(ProcessedEvent, event.event_id) is not None:
                    return EventOutcome.DUPLICATE
            raise

    def _dispatch(self, session: Session, event: ProviderEvent) -> EventOutcome:
        if event.event_type in PAYMENT_TARGETS:
            order = self._order_by_payment(session, event.object_id)
            # A capture is never stale: ``succeeded`` is terminal at the PSP, so an older
            # capture than the failure we applied is money captured all the same.
            capture = PAYMENT_TARGETS[event.event_type] == "paid" and (
                order.status in CLOSED_ORDER_STATUSES or order.status == "pending_payment"
            )
            return self._apply_to(
                session,
                order,
                event,
                lambda: self._payment_effect(session, order, event),
                never_stale=capture,
            )
        if event.event_type in REFUND_TARGETS:
            refund = self._refund_by_provider(session, event.object_id)
            return self._apply_to(
                session, refund, event, lambda: self._refund_effect(session, refund, event)
            )
        if event.event_type.startswith("dispute_"):
            return self._dispute_event(session, event)
        return EventOutcome.IGNORED

    def _apply_to(
        self,
        session: Session,
        row: Order | Refund,
        event: ProviderEvent,
        effect: Callable[[], EventOutcome],
        *,
        never_stale: bool = False,
    ) -> EventOutcome:
        last = row.last_event_at
        if last is not None and event.occurred_at < last and not never_stale:
            return EventOutcome.STALE
        outcome = effect()
        model = type(row)
        newest = event.occurred_at if last is None else max(last, event.occurred_at)
        session.execute(sa.update(model).where(model.id == row.id).values(last_event_at=newest))
        return outcome

    def _payment_effect(self, session: Session, order: Order, event: ProviderEvent) -> EventOutcome:
        target = PAYMENT_TARGETS[event.event_type]
        if target == "paid":  # booked or flagged, whatever the order's status (late captures)
            return EventOutcome(self._apply_capture(session, order, event.amount))
        if order.status != "pending_payment":
            return EventOutcome.NO_CHANGE
        self._move(session, Order, MACHINES["order"], order, target)
        return EventOutcome.APPLIED

    def _refund_effect(
        self, session: Session, refund: Refund, event: ProviderEvent
    ) -> EventOutcome:
        target = REFUND_TARGETS[event.event_type]
        if refund.status != "pending":
            if (
                target == "succeeded"
                and refund.status == "succeeded"
                and event.amount is not None
                and event.amount != refund.amount
            ):
                self._flag_refund_amount(session, refund, event.amount)
                return EventOutcome.FLAGGED
            return EventOutcome.NO_CHANGE
        if target == "succeeded":
            try:
                with session.begin_nested():
                    self._book_refund(session, refund, event.amount)
            except AmountMismatchError:
                session.expire(refund)
                self._flag_refund_amount(session, refund, event.amount or 0)
                return EventOutcome.FLAGGED
            if refund.requested_amount is not None:
                self._flag_refund_amount(session, refund, refund.amount)
        else:
            self._move(session, Refund, MACHINES["refund"], refund, "failed")
        return EventOutcome.APPLIED

    def _flag_refund_amount(self, session: Session, refund: Refund, provider_amount: int) -> None:
        """A refund whose PSP amount differs from what veza asked: a finding, both amounts."""
        upsert_finding(
            session,
            rule="stuck_refunds",
            object_type="refund",
            object_id=refund.id,
            severity="critical",
            summary="the PSP refunded another amount than the row asked",
            evidence={
                "refund_status": refund.status,
                "requested": refund.requested_amount or refund.amount,
                "booked": refund.amount if refund.status == "succeeded" else 0,
                "psp_refunded": provider_amount,
                "currency": refund.currency,
            },
            proposed_action=None,
            applied_action=None,
            now=self._now(),
        )

    def processed(self, event_id: str) -> ProcessedEvent | None:
        """The record of an applied event, if any."""
        with self._transaction() as session:
            return session.get(ProcessedEvent, event_id)


class Operator(Service):
    """Manual overrides with their audit trail (``ledger.operator``)."""

    @positional_deprecated
    def force_transition(
        self, machine: str, object_id: str, *, to_status: str, reason: str, actor: str
    ) -> Override:
        """Move a row to any status of its machine, bypassing the table, with an audit row.

        The only bypass. It changes the status only: money effects of the override
        (if any) are posted separately with ``ledger.journal.post_correction``. The schema still
        refuses an active subscription without a paying order, even here.

        Raises:
            LedgerConfigurationError: Unknown machine or status, or no reason or actor.
            TransitionConflictError: The row moved while the override was being applied.
        """
        if machine not in MACHINES:
            msg = f"unknown machine {machine!r}; known: {sorted(MACHINES)}"
            raise LedgerConfigurationError(msg)
        if to_status not in MACHINES[machine].states:
            msg = f"{to_status!r} is not a {machine} status"
            raise LedgerConfigurationError(msg)
        if not reason or not reason.strip() or not actor or not actor.strip():
            msg = "an override needs a reason and an actor (they go to the audit trail)"
            raise LedgerConfigurationError(msg)
        model = MODELS[machine]
        try:
            with self._transaction() as session:
                row = self._get(session, model, object_id, lock=True)
                from_status = row.status
                self._cas(session, model, row, from_status, to_status)
                override = Override(
                    machine=machine,
                    object_id=object_id,
                    from_status=from_status,
                    to_status=to_status,
                    reason=reason.strip()[:1000],
                    actor=actor.strip()[:128],
                    at=self._now(),
                )
                session.add(override)
                session.flush()
                return override
        except IntegrityError as exc:
            msg = f"the schema refuses {machine} {object_id} -> {to_status}: {exc.orig}"
            raise LedgerError(msg) from None

    def overrides(self, object_id: str | None = None) -> list[Override]:
        """The audit trail, newest first (optionally for one object)."""
        with self._transaction() as session:
            query = sa.select(Override).order_by(Override.id.desc())
            if object_id is not None:
                query = query.where(Override.object_id == object_id)
            return list(session.scalars(query))
