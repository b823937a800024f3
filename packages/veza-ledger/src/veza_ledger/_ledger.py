"""``Ledger``: the one object an application holds.

It is composed of parts that each hold one concern (orders and refunds, transfers and
payouts, subscriptions, provider events and overrides) over the same engine, and adds
the journal's reads. Every public method is one database transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping

import sqlalchemy as sa

from veza_ledger import _journal
from veza_ledger._disputes import DisputesMixin
from veza_ledger._errors import LedgerConfigurationError, RecordNotFoundError
from veza_ledger._intents import IntentsMixin
from veza_ledger._journal import Leg
from veza_ledger._schema import Finding
from veza_ledger._subscriptions import DEFAULT_PLAN_RANKS, SubscriptionsMixin
from veza_ledger._types import utcnow
from veza_ledger._webhook_log import SQLWebhookLog


class Ledger(DisputesMixin, SubscriptionsMixin, IntentsMixin):
    """The money ledger over a SQLAlchemy engine (PostgreSQL, or SQLite embedded).

    Args:
        engine: Where the ledger's tables live (run ``veza-ledger db upgrade`` first;
            :func:`check_schema` tells you at start-up if you did not). SQLite engines
            are configured to lock properly (see :func:`configure_engine`).
        clock: Returns the current UTC time (tests pass a fake one).
        plan_ranks: Subscription plans and their order, for eligibility checks.
        plan_prices: ``{plan: (amount, currency)}``: what an activating order must
            cover (see :meth:`create_subscription`).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        plan_ranks: Mapping[str, int] = DEFAULT_PLAN_RANKS,
        plan_prices: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(engine, clock=clock)
        self.plan_ranks = dict(plan_ranks)
        self.plan_prices = dict(plan_prices or {})

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def webhook_log(self) -> SQLWebhookLog:
        """The SQL webhook log on this engine (veza-payments' ``WebhookLog`` protocol)."""
        return SQLWebhookLog(self.engine)

    # ------------------------------------------------------------------ findings

    def findings(
        self, *, status: str | None = None, rule: str | None = None, limit: int = 500
    ) -> list[Finding]:
        """Reconciliation findings, most recently seen first."""
        query = sa.select(Finding).order_by(Finding.last_seen.desc(), Finding.id.desc())
        if status is not None:
            query = query.where(Finding.status == status)
        if rule is not None:
            query = query.where(Finding.rule == rule)
        with self.transaction() as session:
            return list(session.scalars(query.limit(limit)))

    def suppress_finding(self, finding_id: int, *, reason: str, actor: str) -> Finding:
        """Silence a known finding (kept, with who and why; it resolves when fixed)."""
        if not reason.strip() or not actor.strip():
            msg = "suppressing a finding needs a reason and an actor"
            raise LedgerConfigurationError(msg)
        with self.transaction() as session:
            finding = session.get(Finding, finding_id)
            if finding is None:
                msg = f"no finding {finding_id}"
                raise RecordNotFoundError(msg)
            finding.status = "suppressed"
            finding.suppressed_reason = reason.strip()[:500]
            finding.suppressed_by = actor.strip()[:128]
            return finding

    # ------------------------------------------------------------------ journal

    def balance(self, account: str, currency: str) -> int:
        """Debits minus credits of ``account`` in ``currency`` (derived from entries)."""
        with self.transaction() as session:
            return _journal.balance(session, account, currency)

    def trial_balance(self) -> Mapping[str, int]:
        """Net of all entries per currency: every value is zero, or the books are broken."""
        with self.transaction() as session:
            return _journal.trial_balance(session)

    def balances(self, *, prefix: str = "") -> Mapping[tuple[str, str], int]:
        """Every account's balance by ``(account, currency)``."""
        with self.transaction() as session:
            return _journal.balances(session, prefix=prefix)

    def post_correction(
        self, transaction_id: str, legs: Iterable[Leg], *, description: str
    ) -> bool:
        """Post a manual, balanced correction (entries are never edited; see the guide).

        Returns:
            Whether it was posted (``False``: the same correction was already there).
        """
        with self.transaction() as session:
            return _journal.post(
                session,
                f"correction:{transaction_id}",
                "correction",
                legs,
                description=description,
            )
