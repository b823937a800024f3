"""The ledger's tables, as SQLAlchemy 2.x typed mapped classes.

Every table is prefixed ``ledger_`` and lives in its own ``MetaData`` so it never
clashes with the host application's tables or migrations. Money is ``BIGINT`` minor
units beside an ISO 4217 code, with ``CHECK (amount > 0)``; statuses are checked
against the state machines' tables. Provider ids are unique only where present:
partial unique indexes ``WHERE col IS NOT NULL AND col <> ''``, declared for both
PostgreSQL and SQLite (with only ``postgresql_where``, SQLite silently builds a full
unique index and the second row without an id fails).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from veza_ledger._errors import FrozenRowError
from veza_ledger._guards import JOURNAL_GUARDS, attach_triggers
from veza_ledger._machines import (
    DISPUTE,
    INTENT,
    ORDER,
    PAYOUT,
    REFUND,
    SUBSCRIPTION,
    TRANSFER,
    Machine,
)
from veza_ledger._subscription_guards import SUBSCRIPTION_GUARDS
from veza_ledger._types import BigIntPK, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


FROZEN = "_veza_frozen"
"""Key a committed row's ``__dict__`` carries once the ledger handed it out (see ``freeze``)."""


class Base(DeclarativeBase):
    """Declarative base of the ledger's tables (its own ``MetaData``).

    A row stays writable inside the transaction that loads it (the services' steps set
    values there); once the transaction commits, every row it touched is frozen: what the
    services return are read-only snapshots (:class:`FrozenRowError` on a write).
    """

    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}

    def __setattr__(self, name: str, value: object) -> None:
        if FROZEN in self.__dict__:
            raise _frozen(self, name)
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if FROZEN in self.__dict__:
            raise _frozen(self, name)
        super().__delattr__(name)


def _frozen(row: Base, name: str) -> FrozenRowError:
    kind = type(row).__name__
    return FrozenRowError(
        f"{kind}.{name}: rows the ledger returns are read-only snapshots of the committed "
        f"row; change a {kind} through its service (ledger.<service>.<step>) and read it again"
    )


def freeze(rows: Iterable[object]) -> None:
    """Mark committed rows read-only (``Base.__setattr__`` then refuses writes)."""
    for row in rows:
        if isinstance(row, Base):
            row.__dict__[FROZEN] = True


def _status_check(machine: Machine) -> sa.CheckConstraint:
    states = ", ".join(f"'{s}'" for s in sorted(machine.states))
    return sa.CheckConstraint(f"status IN ({states})", name="status")


def _present(column: str) -> sa.TextClause:
    return sa.text(f"{column} IS NOT NULL AND {column} <> ''")


def unique_when_present(table: str, column: str) -> sa.Index:
    """A partial unique index on a provider id, for PostgreSQL **and** SQLite."""
    return sa.Index(
        f"uq_{table}_{column}",
        column,
        unique=True,
        postgresql_where=_present(column),
        sqlite_where=_present(column),
    )


def _money_checks() -> tuple[sa.CheckConstraint, ...]:
    return (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("length(currency) = 3", name="currency_code"),
    )


class Order(Base):
    """A buyer's order: what was charged, through which PSP payment, and refunded."""

    __tablename__ = "ledger_orders"
    __table_args__ = (
        *_money_checks(),
        _status_check(ORDER),
        sa.CheckConstraint("fee_amount >= 0 AND fee_amount <= amount", name="fee_range"),
        sa.CheckConstraint("captured_amount >= 0 AND captured_amount <= amount", name="captured"),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount", name="refunded"
        ),
        unique_when_present("ledger_orders", "psp_payment_id"),
        sa.Index("ix_ledger_orders_status_updated_at", "status", "updated_at"),
        sa.Index("ix_ledger_orders_status_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(sa.String(64))
    seller_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    fee_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    status: Mapped[str] = mapped_column(sa.String(32), default=ORDER.initial)
    psp_payment_id: Mapped[str | None] = mapped_column(sa.String(64))
    captured_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    fee_refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_event_at: Mapped[dt.datetime | None]
    # Late captures (0004): the closed status a capture landed on, when it was booked,
    # and the operator's decision (``fulfil`` or ``refund``); NULL for ordinary orders.
    late_capture_from: Mapped[str | None] = mapped_column(sa.String(32))
    late_capture_at: Mapped[dt.datetime | None]
    late_capture_decision: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Refund(Base):
    """A refund of (part of) an order, keyed by its own id at the PSP."""

    __tablename__ = "ledger_refunds"
    __table_args__ = (
        *_money_checks(),
        _status_check(REFUND),
        unique_when_present("ledger_refunds", "hyperswitch_refund_id"),
        sa.Index("ix_ledger_refunds_status_updated_at", "status", "updated_at"),
        sa.Index("ix_ledger_refunds_status_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("ledger_orders.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(32), default=REFUND.initial)
    hyperswitch_refund_id: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    # 0004: what veza asked for, kept when the PSP refunded another amount (``amount``
    # is then what the PSP refunded, which is what the journal books); NULL otherwise.
    requested_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_event_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SellerTransfer(Base):
    """A Stripe Connect transfer of the seller's share of an order.

    ``reversal_due`` is the part of the order's refunded seller share allocated to this
    transfer; ``reversed_amount`` is the sum of its recorded reversals
    (:class:`SellerTransferReversal`, recomputed under the row lock, never incremented).
    ``netted_amount`` is what was withheld from this transfer to settle parked reversals
    of the seller's earlier transfers. ``leased_until`` keeps other workers off a row
    while its provider call is under way (no lock is held across the call).
    """

    __tablename__ = "ledger_seller_transfers"
    __table_args__ = (
        *_money_checks(),
        _status_check(TRANSFER),
        sa.CheckConstraint(
            "reversed_amount >= 0 AND reversed_amount <= amount", name="reversed_range"
        ),
        sa.CheckConstraint("reversal_due >= 0 AND reversal_due <= amount", name="due_range"),
        unique_when_present("ledger_seller_transfers", "stripe_transfer_id"),
        unique_when_present("ledger_seller_transfers", "stripe_reversal_id"),
        sa.Index("ix_ledger_seller_transfers_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_ledger_seller_transfers_status_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(sa.ForeignKey("ledger_orders.id"), index=True)
    seller_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    destination: Mapped[str] = mapped_column(sa.String(64))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(32), default=TRANSFER.initial)
    stripe_transfer_id: Mapped[str | None] = mapped_column(sa.String(64))
    stripe_reversal_id: Mapped[str | None] = mapped_column(sa.String(64))
    reversal_due: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reversed_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    netted_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    leased_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProviderIntent(Base):
    """One provider call that moves money, written and committed before the call.

    Its ``id`` is the call's idempotency key; ``id``, ``kind``, ``object_id``, ``seq``,
    ``amount`` and ``currency`` never change once committed (a refund that lands while
    the call is in flight makes the *next* intent, never a bigger one). The outcome is
    recorded against it: the provider's object id (unique: one ledger record per
    provider object), or the errors until it is parked.
    """

    __tablename__ = "ledger_provider_intents"
    __table_args__ = (
        *_money_checks(),
        _status_check(INTENT),
        sa.CheckConstraint("kind IN ('transfer', 'reversal', 'payout')", name="kind"),
        sa.UniqueConstraint("kind", "object_id", "seq"),
        unique_when_present("ledger_provider_intents", "provider_object_id"),
        sa.Index("ix_ledger_provider_intents_status_kind", "status", "kind"),
        sa.Index("ix_ledger_provider_intents_seller_id_status", "seller_id", "status"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    object_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    seq: Mapped[int]
    seller_id: Mapped[str] = mapped_column(sa.String(64))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16), default=INTENT.initial)
    provider_object_id: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    first_sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    error_class: Mapped[str | None] = mapped_column(sa.String(16))
    netted_into: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SellerTransferReversal(Base):
    """A reversal the provider made, keyed by its id: recording it twice changes nothing."""

    __tablename__ = "ledger_transfer_reversals"
    __table_args__ = (*_money_checks(),)

    provider_reversal_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(
        sa.ForeignKey("ledger_seller_transfers.id"), index=True
    )
    intent_id: Mapped[str | None] = mapped_column(sa.String(64))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SellerPayout(Base):
    """A payout from a seller's connected account to their bank.

    Its Stripe calls are :class:`ProviderIntent` rows (kind ``payout``); the first one's
    id is the row's id. ``leased_until`` keeps other payout workers off the row while
    its call is under way (no lock is held across the call); ``next_attempt_at`` is when
    a call that failed transiently may be made again.
    """

    __tablename__ = "ledger_seller_payouts"
    __table_args__ = (
        *_money_checks(),
        _status_check(PAYOUT),
        unique_when_present("ledger_seller_payouts", "external_payout_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    stripe_account: Mapped[str] = mapped_column(sa.String(64))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(32), default=PAYOUT.initial)
    external_payout_id: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    leased_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A creator's plan. ``payment_order_id`` is the order whose payment activated it.

    ``price_amount``/``price_currency`` are the plan's price when it was subscribed: the
    activating order must be the subscriber's own, in that currency, with at least that
    much captured and not refunded, and used by no other subscription (a unique index;
    on PostgreSQL a trigger checks the rest, on SQLite the library does).
    """

    __tablename__ = "ledger_subscriptions"
    __table_args__ = (
        _status_check(SUBSCRIPTION),
        sa.Index("ix_ledger_subscriptions_status", "status"),
        # The original platform's worst bug, made impossible in the schema too. Only the
        # paid statuses need the order: a pending subscription may be canceled or expire.
        sa.CheckConstraint(
            "status NOT IN ('active', 'past_due') OR payment_order_id IS NOT NULL",
            name="paid_to_activate",
        ),
        sa.CheckConstraint("price_amount >= 0", name="price_range"),
        # One order activates one subscription, ever (a canceled one keeps its order).
        unique_when_present("ledger_subscriptions", "payment_order_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    plan: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(32), default=SUBSCRIPTION.initial)
    payment_order_id: Mapped[str | None] = mapped_column(sa.ForeignKey("ledger_orders.id"))
    pending_order_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("ledger_orders.id"), index=True
    )
    price_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    price_currency: Mapped[str | None] = mapped_column(sa.String(3))
    last_event_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Dispute(Base):
    """A dispute (chargeback) of an order's payment, keyed by the PSP's dispute id.

    ``amount`` is what the PSP took from the platform's balance when it opened (held in
    ``psp_disputed`` until the outcome). On a loss, ``refund_id`` is the chargeback's
    refund row (the seller's share is clawed back through the refund path),
    ``unrefundable_amount`` the part the order had no room for (already refunded: the
    buyer got the money twice) and ``fee_amount`` the chargeback fee, both platform
    losses.
    """

    __tablename__ = "ledger_disputes"
    __table_args__ = (
        *_money_checks(),
        _status_check(DISPUTE),
        sa.CheckConstraint("fee_amount >= 0", name="fee_range"),
        sa.CheckConstraint(
            "unrefundable_amount >= 0 AND unrefundable_amount <= amount", name="unrefundable"
        ),
        sa.UniqueConstraint("psp_dispute_id"),
        sa.Index("ix_ledger_disputes_status_opened_at", "status", "opened_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    psp_dispute_id: Mapped[str] = mapped_column(sa.String(64))
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("ledger_orders.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(32), default=DISPUTE.initial)
    stage: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    fee_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    unrefundable_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refund_id: Mapped[str | None] = mapped_column(sa.String(64))
    opened_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    last_event_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookLogRow(Base):
    """One webhook delivery (field names shared with veza-payments' ``WebhookRecord``)."""

    __tablename__ = "ledger_webhook_log"
    __table_args__ = (
        # "Show me attack attempts" reads only the (few) invalid rows.
        sa.Index(
            "ix_ledger_webhook_log_invalid_signature",
            "received_at",
            postgresql_where=sa.text("signature_valid = false"),
            sqlite_where=sa.text("signature_valid = 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    payload: Mapped[str] = mapped_column(sa.Text)
    signature_valid: Mapped[bool]
    processing_result: Mapped[str] = mapped_column(sa.String(1024))
    source_ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    request_id: Mapped[str] = mapped_column(sa.String(128))
    event_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    event_type: Mapped[str | None] = mapped_column(sa.String(128))
    received_at: Mapped[dt.datetime] = mapped_column(index=True)


class ProcessedEvent(Base):
    """A provider event applied to the ledger (inserted with its effect, in one transaction)."""

    __tablename__ = "ledger_processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(sa.String(128))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(32))
    processed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Override(Base):
    """The audit trail of manual overrides (``force_transition``)."""

    __tablename__ = "ledger_overrides"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    machine: Mapped[str] = mapped_column(sa.String(32))
    object_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    from_status: Mapped[str] = mapped_column(sa.String(32))
    to_status: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(1000))
    actor: Mapped[str] = mapped_column(sa.String(128))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JournalTransaction(Base):
    """A balanced journal transaction; its id is its idempotency key."""

    __tablename__ = "ledger_journal_transactions"

    id: Mapped[str] = mapped_column(sa.String(160), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JournalEntry(Base):
    """One leg: positive ``amount`` is a debit, negative a credit (they sum to zero)."""

    __tablename__ = "ledger_journal_entries"
    __table_args__ = (
        sa.CheckConstraint("amount <> 0", name="amount_nonzero"),
        sa.CheckConstraint("length(currency) = 3", name="currency_code"),
        sa.Index("ix_ledger_journal_entries_account_currency", "account", "currency"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(
        sa.ForeignKey("ledger_journal_transactions.id"), index=True
    )
    account: Mapped[str] = mapped_column(sa.String(160))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(sa.BigInteger)


FINDING_STATUSES = ("open", "resolved", "suppressed")
SEVERITIES = ("info", "warning", "critical")


class Finding(Base):
    """A problem reconciliation found: durable, updated by every sweep, never duplicated.

    ``fingerprint`` is ``rule:object_type:object_id``; re-running a sweep updates the row
    (``last_seen``, ``occurrences``, evidence) and a problem that went away is marked
    ``resolved`` by the next sweep that looks at the object.
    """

    __tablename__ = "ledger_findings"
    __table_args__ = (
        sa.CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in FINDING_STATUSES)})", name="status"
        ),
        sa.CheckConstraint(
            f"severity IN ({', '.join(repr(s) for s in SEVERITIES)})", name="severity"
        ),
        sa.Index("ix_ledger_findings_status_rule", "status", "rule"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(200), unique=True)
    rule: Mapped[str] = mapped_column(sa.String(64))
    object_type: Mapped[str] = mapped_column(sa.String(32))
    object_id: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    summary: Mapped[str] = mapped_column(sa.String(500))
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    proposed_action: Mapped[str | None] = mapped_column(sa.String(64))
    applied_action: Mapped[str | None] = mapped_column(sa.String(64))
    occurrences: Mapped[int] = mapped_column(default=1)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    suppressed_reason: Mapped[str | None] = mapped_column(sa.String(500))
    suppressed_by: Mapped[str | None] = mapped_column(sa.String(128))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``veza-ledger findings --json``, admin pages)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "severity": self.severity,
            "status": self.status,
            "summary": self.summary,
            "evidence": self.evidence,
            "proposed_action": self.proposed_action,
            "applied_action": self.applied_action,
            "occurrences": self.occurrences,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "suppressed_reason": self.suppressed_reason,
            "suppressed_by": self.suppressed_by,
        }


class RuleCheck(Base):
    """When a rule last examined an object: how many workers share a sweep safely."""

    __tablename__ = "ledger_rule_checks"

    rule: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    object_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    checked_at: Mapped[dt.datetime]


metadata = Base.metadata


# --------------------------------------------------------------------------------------
# Trigger DDL hooks for ``metadata.create_all`` (the migrations create the same triggers;
# ``check_schema`` compares the live database with this list). The definitions live in
# ``_guards`` and ``_subscription_guards``, apart from the models above.
attach_triggers(metadata, JOURNAL_GUARDS)
attach_triggers(metadata, SUBSCRIPTION_GUARDS)
