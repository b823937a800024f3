# ruff: noqa: SLF001 - the composition root wires the services' session-level steps
"""``Ledger``: the one object an application holds, composed of small services.

Each service holds one concern over the same :class:`~veza_ledger._base.Core` (engine,
session factory, clock): ``ledger.orders``, ``ledger.refunds``, ``ledger.captures``,
``ledger.subscriptions``, ``ledger.disputes``, ``ledger.events``, ``ledger.transfers``,
``ledger.payouts``, ``ledger.provider_intents``, ``ledger.journal``,
``ledger.reconciliation``, ``ledger.operator`` and ``ledger.webhook_log``. What one service
sets off in another (a paid order activates its subscriptions, an event reaches the
disputes) is passed to its constructor here, explicitly: no part talks to another
through an overridden method. Every public method is one database transaction.

The 0.1 flat spellings (``ledger.create_order(...)``) remain one release as deprecated
delegates that name their new spelling.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_ledger._base import Core, M
from veza_ledger._disputes import Disputes
from veza_ledger._events import Events, Operator
from veza_ledger._findings import Reconciliation
from veza_ledger._intents import ProviderIntents
from veza_ledger._journal import Journal
from veza_ledger._late_captures import Captures
from veza_ledger._machines import Machine
from veza_ledger._orders import Orders, Refunds
from veza_ledger._subscriptions import DEFAULT_PLAN_RANKS, Subscriptions
from veza_ledger._transfers import Payouts, Transfers
from veza_ledger._types import utcnow
from veza_ledger._webhook_log import SQLWebhookLog

REMOVED_IN = "0.3.0"


class _Moved:
    """A 0.1 flat method kept one release: warns, naming the new spelling, then delegates."""

    def __init__(self, service: str, method: str) -> None:
        self._service = service
        self._method = method
        self._old = method

    def __set_name__(self, owner: type, name: str) -> None:
        self._old = name

    @overload
    def __get__(self, instance: None, owner: type) -> _Moved: ...
    @overload
    def __get__(self, instance: Ledger, owner: type) -> Callable[..., Any]: ...
    def __get__(self, instance: Ledger | None, owner: type) -> _Moved | Callable[..., Any]:
        if instance is None:
            return self
        target = getattr(getattr(instance, self._service), self._method)
        message = (
            f"Ledger.{self._old}() is deprecated, use ledger.{self._service}.{self._method}() "
            f"(removed in {REMOVED_IN})"
        )

        @functools.wraps(target)
        def delegate(*args: object, **kwargs: object) -> object:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            return target(*args, **kwargs)

        return delegate


class Ledger:
    """The money ledger over a SQLAlchemy engine (PostgreSQL, or SQLite embedded).

    Args:
        engine: Where the ledger's tables live (run ``veza-ledger db upgrade`` first;
            :func:`check_schema` tells you at start-up if you did not). SQLite engines
            are configured to lock properly (see :func:`configure_engine`).
        clock: Returns the current UTC time (tests pass a fake one).
        plan_ranks: Subscription plans and their order, for eligibility checks.
        plan_prices: ``{plan: (amount, currency)}``: what an activating order must
            cover (see ``ledger.subscriptions.create``).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        plan_ranks: Mapping[str, int] = DEFAULT_PLAN_RANKS,
        plan_prices: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        core = Core(engine, clock=clock)
        self._core = core
        self.engine = core.engine
        subscriptions = Subscriptions(core, plan_ranks=plan_ranks, plan_prices=plan_prices)
        refunds = Refunds(core, on_refunded=subscriptions._follow_order)
        orders = Orders(core, on_paid=subscriptions._activate_paid_by)
        captures = Captures(
            core, book_capture=orders._book_capture, mark_paid=orders._mark_paid, refunds=refunds
        )
        disputes = Disputes(
            core,
            order_by_payment=orders._by_payment,
            book_refund=refunds._succeeded,
            follow_order=subscriptions._follow_order,
        )
        transfers = Transfers(core)
        self.orders = orders
        """Orders and their payment."""
        self.refunds = refunds
        """Refunds, booked at the amount the PSP refunded."""
        self.captures = captures
        """Captures on closed orders (late captures) and the operator's decision."""
        self.subscriptions = subscriptions
        """Subscriptions and the distribution eligibility gate."""
        self.disputes = disputes
        """Disputes (chargebacks)."""
        self.events = Events(
            core,
            order_by_payment=orders._by_payment,
            refund_by_provider=refunds._by_provider,
            book_refund=refunds._succeeded,
            apply_capture=captures._apply,
            dispute_event=disputes._apply_event,
        )
        """Provider events, applied exactly once."""
        self.operator = Operator(core)
        """Manual overrides and their audit trail."""
        self.transfers = transfers
        """Seller transfers and their reversals."""
        self.payouts = Payouts(core)
        """Seller payouts."""
        self.provider_intents = ProviderIntents(core, settle_transfer=transfers._settle_transfer)
        """Provider call intents and the operator's actions on parked ones."""
        self.journal = Journal(core)
        """Balances and manual corrections."""
        self.reconciliation = Reconciliation(core)
        """Reconciliation findings."""
        self.webhook_log = SQLWebhookLog(core.engine)
        """The SQL webhook log on this engine (veza-payments' ``WebhookLog`` protocol)."""

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def plan_ranks(self) -> Mapping[str, int]:
        """The subscription plans and their order (``ledger.subscriptions.plan_ranks``).

        Settable, as in 0.1: both properties write through to ``ledger.subscriptions``,
        which is what checks activations.
        """
        return self.subscriptions.plan_ranks

    @plan_ranks.setter
    def plan_ranks(self, value: Mapping[str, int]) -> None:
        self.subscriptions.plan_ranks = dict(value)

    @property
    def plan_prices(self) -> Mapping[str, tuple[int, str]]:
        """What an activating order must cover per plan (``ledger.subscriptions``)."""
        return self.subscriptions.plan_prices

    @plan_prices.setter
    def plan_prices(self, value: Mapping[str, tuple[int, str]]) -> None:
        self.subscriptions.plan_prices = dict(value)

    def now(self) -> dt.datetime:
        """The ledger's clock (UTC, aware); a clock returning naive times is refused."""
        return self._core.now()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction, for workers and sweeps that compose steps."""
        with self._core.transaction() as session:
            yield session

    # Session-level steps the package's own workers and sweeps compose in one claim's
    # transaction (the same state machines as the services use).

    @property
    def _pg(self) -> bool:
        return self._core.pg

    def _get(self, session: Session, model: type[M], object_id: str, *, lock: bool = False) -> M:
        return self._core.get(session, model, object_id, lock=lock)

    def _move(
        self,
        session: Session,
        model: type[M],
        machine: Machine,
        row: M,
        to_status: str,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self._core.move(session, model, machine, row, to_status, values=values)

    # The 0.1 flat methods, deprecated: each warns and delegates to its service.

    create_order = _Moved("orders", "create")
    order = _Moved("orders", "get")
    order_by_payment_id = _Moved("orders", "by_payment_id")
    set_psp_payment_id = _Moved("orders", "set_psp_payment_id")
    mark_paid = _Moved("orders", "mark_paid")
    mark_failed = _Moved("orders", "mark_failed")
    cancel_order = _Moved("orders", "cancel")
    expire_order = _Moved("orders", "expire")
    create_refund = _Moved("refunds", "create")
    refund = _Moved("refunds", "get")
    refunds_of = _Moved("refunds", "of_order")
    set_refund_provider_id = _Moved("refunds", "set_provider_id")
    refund_by_provider_id = _Moved("refunds", "by_provider_id")
    refund_succeeded = _Moved("refunds", "succeeded")
    refund_failed = _Moved("refunds", "failed")
    late_captures = _Moved("captures", "late")
    decide_late_capture = _Moved("captures", "decide")
    create_subscription = _Moved("subscriptions", "create")
    subscription = _Moved("subscriptions", "get")
    activate_subscription = _Moved("subscriptions", "activate")
    mark_past_due = _Moved("subscriptions", "mark_past_due")
    cancel_subscription = _Moved("subscriptions", "cancel")
    expire_subscription = _Moved("subscriptions", "expire")
    distribution_eligibility = _Moved("subscriptions", "distribution_eligibility")
    open_dispute = _Moved("disputes", "open")
    update_dispute = _Moved("disputes", "update")
    dispute = _Moved("disputes", "get")
    dispute_by_provider_id = _Moved("disputes", "by_provider_id")
    disputes_of = _Moved("disputes", "of_order")
    apply_event = _Moved("events", "apply")
    processed_event = _Moved("events", "processed")
    force_transition = _Moved("operator", "force_transition")
    overrides = _Moved("operator", "overrides")
    create_transfer = _Moved("transfers", "create")
    transfer = _Moved("transfers", "get")
    transfers_of = _Moved("transfers", "of_order")
    transfer_completed = _Moved("transfers", "completed")
    transfer_failed = _Moved("transfers", "failed")
    retry_transfer = _Moved("transfers", "retry")
    reversals_of = _Moved("transfers", "reversals_of")
    reversal_completed = _Moved("transfers", "reversal_completed")
    reversal_failed = _Moved("transfers", "reversal_failed")
    create_payout = _Moved("payouts", "create")
    payout = _Moved("payouts", "get")
    payout_available = _Moved("payouts", "available")
    payout_submitted = _Moved("payouts", "submitted")
    payout_paid = _Moved("payouts", "paid")
    payout_failed = _Moved("payouts", "failed")
    retry_payout = _Moved("payouts", "retry")
    apply_payout_event = _Moved("payouts", "apply_event")
    intents = _Moved("provider_intents", "find")
    intent = _Moved("provider_intents", "get")
    retry_intent = _Moved("provider_intents", "retry")
    write_off_intent = _Moved("provider_intents", "write_off")
    net_intent = _Moved("provider_intents", "net")
    balance = _Moved("journal", "balance")
    trial_balance = _Moved("journal", "trial_balance")
    balances = _Moved("journal", "balances")
    post_correction = _Moved("journal", "post_correction")
    findings = _Moved("reconciliation", "findings")
    suppress_finding = _Moved("reconciliation", "suppress")
