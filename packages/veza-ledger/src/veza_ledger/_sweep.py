"""``run_sweep``: every rule over its candidates, safely under any number of workers.

Each batch goes through three steps, and no row lock is held across a provider call:

1. **Claim** (a short transaction): candidate rows are locked (``SELECT … ORDER BY id
   LIMIT n FOR UPDATE SKIP LOCKED`` on PostgreSQL, keyset-paged), re-checked in a fresh
   snapshot, and leased: their examination mark is written so that it expires
   ``lease`` after the claim (``checked_at = claim time - recheck_after + lease``).
   The commit releases the locks; other workers skip the leased rows.
2. **Read the provider** for each row, holding no lock (a webhook for an order in the
   batch does not wait for the sweep).
3. **Apply** (a short transaction): each row is locked again and re-read; if it is
   still a candidate, the rule decides on the fresh row, fixes go through the state
   machines and the journal, findings are upserted, and the row's mark is stamped with
   the time it was examined (not the sweep's start), so a later sweep that overlaps a
   long one does not poll it again within ``recheck_after``.

Rules that read only the ledger are read in step 3, under the lock. A worker that dies
after step 1 leaves leases that expire: the rows are picked up again then. Objects with
open findings are examined again (second pass) so fixed problems resolve.

On SQLite there is one writer: every transaction begins ``IMMEDIATE``. Run a single
worker with small batches there; the result is the same, the concurrency is not.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veza_ledger._base import check_aware
from veza_ledger._errors import LedgerConfigurationError, LedgerError
from veza_ledger._findings import (
    finding_values,
    open_finding_objects,
    resolve_finding,
    resolve_findings,
    upsert_finding,
    upsert_findings,
)
from veza_ledger._journal import trial_balance
from veza_ledger._ledger import Ledger
from veza_ledger._machines import ORDER, REFUND, SUBSCRIPTION, TRANSFER
from veza_ledger._provider import ProviderView
from veza_ledger._rules import RULES, Context, Problem, ReconcileSettings, Rule
from veza_ledger._schema import Order, Refund, RuleCheck, SellerTransfer, Subscription
from veza_ledger._tracing import traced_run
from veza_ledger._types import utcnow

logger = logging.getLogger("veza_ledger.reconcile")

DEFAULT_LEASE = dt.timedelta(minutes=2)
"""How long a claimed batch is left to its worker (its provider reads included)."""

_FAILED = object()


class _Row(Protocol):
    """Any ledger row a rule claims: only its id is read here."""

    @property
    def id(self) -> str: ...


MAX_ITEMS = 1000
"""Problems a :class:`SweepReport` keeps in full (all are counted, and all are findings)."""


@attrs.frozen
class SweepItem:
    """One problem a sweep found (and what it did about it)."""

    rule: str
    object_type: str
    object_id: str
    severity: str
    summary: str
    action: str | None
    applied: bool
    error: str | None = None


@attrs.define
class SweepReport:
    """What a sweep did.

    Attributes:
        examined: Rows examined, per rule.
        problems: The first :data:`MAX_ITEMS` problems found (applied or not), in order;
            the counts below cover all of them, so a huge sweep keeps flat memory.
        problem_count: Problems found.
        applied: Fixes applied.
        resolved: Findings resolved because the problem went away.
        errors: Rows whose provider read failed (not marked examined: retried next sweep).
        skipped_rules: Rules skipped, with why (no provider view).
        dry_run: Nothing was written.
    """

    examined: dict[str, int] = attrs.field(factory=dict)
    problems: list[SweepItem] = attrs.field(factory=list)
    problem_count: int = 0
    applied: int = 0
    resolved: int = 0
    errors: int = 0
    skipped_rules: dict[str, str] = attrs.field(factory=dict)
    dry_run: bool = False

    def add(self, item: SweepItem) -> None:
        """Count a problem (and keep it, up to :data:`MAX_ITEMS`)."""
        self.problem_count += 1
        self.applied += item.applied
        if len(self.problems) < MAX_ITEMS:
            self.problems.append(item)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``veza-ledger reconcile --json``)."""
        return {
            "dry_run": self.dry_run,
            "examined": self.examined,
            "resolved": self.resolved,
            "errors": self.errors,
            "applied": self.applied,
            "problem_count": self.problem_count,
            "skipped_rules": self.skipped_rules,
            "problems": [attrs.asdict(p) for p in self.problems],
        }


def _flag_excess(ledger: Ledger, session: Session, order: Order, problem: Problem) -> None:
    """Keep the part of a capture above what was booked an open ``money_mismatch`` finding.

    The rule's own finding cannot carry it: ``stuck_orders`` resolves once the order is
    paid, and an operator's decision resolves ``late_captures``.
    """
    params = problem.params
    ledger.captures._flag_excess(
        session,
        order,
        received=params.get("psp_received"),
        booked=params.get("captured_amount"),
        evidence=problem.evidence,
    )


_T = TypeVar("_T")


def _narrow(model: type[_T], row: object, action: str) -> _T:
    """``row`` as a ``model``: a rule proposing ``action`` for another kind of row is a bug."""
    if not isinstance(row, model):
        msg = f"{action!r} applies to {model.__name__}, not {type(row).__name__}"
        raise LedgerConfigurationError(msg)
    return row


_ORDER_TARGETS = {"mark_failed": "failed", "cancel_order": "cancelled", "expire_order": "expired"}


def _apply(ledger: Ledger, session: Session, row: object, problem: Problem) -> None:
    """Apply a rule's fix through the state machines and the journal."""
    action, params = problem.action or "", problem.params
    if action == "mark_paid":
        order = _narrow(Order, row, action)
        ledger.orders._mark_paid(session, order, params.get("captured_amount"))
        _flag_excess(ledger, session, order, problem)
    elif action in _ORDER_TARGETS:
        ledger._move(session, Order, ORDER, _narrow(Order, row, action), _ORDER_TARGETS[action])
    elif action == "book_late_capture":
        order = _narrow(Order, row, action)
        ledger.captures._book_late_capture(session, order, params.get("captured_amount"))
        _flag_excess(ledger, session, order, problem)
    elif action in ("refund_succeeded", "refund_failed", "set_refund_provider_id"):
        _apply_to_refund(ledger, session, _narrow(Refund, row, action), problem)
    elif action in ("set_stripe_transfer_id", "request_reversal"):
        _apply_to_transfer(ledger, session, _narrow(SellerTransfer, row, action), problem)
    elif action == "mark_past_due":
        ledger._move(
            session, Subscription, SUBSCRIPTION, _narrow(Subscription, row, action), "past_due"
        )
    else:  # pragma: no cover - the rules only propose the actions above
        msg = f"unknown action {action!r}"
        raise LedgerConfigurationError(msg)


def _apply_to_refund(ledger: Ledger, session: Session, refund: Refund, problem: Problem) -> None:
    if problem.action == "refund_succeeded":
        ledger.refunds._succeeded(session, refund, problem.params.get("amount"))
    elif problem.action == "refund_failed":
        ledger._move(session, Refund, REFUND, refund, "failed")
    else:
        session.execute(
            sa.update(Refund)
            .where(Refund.id == refund.id)
            .values(hyperswitch_refund_id=problem.params["provider_id"], updated_at=ledger.now())
        )


def _apply_to_transfer(
    ledger: Ledger, session: Session, transfer: SellerTransfer, problem: Problem
) -> None:
    params = problem.params
    if problem.action == "set_stripe_transfer_id":
        session.execute(
            sa.update(SellerTransfer)
            .where(SellerTransfer.id == transfer.id)
            .values(stripe_transfer_id=params["stripe_transfer_id"], updated_at=ledger.now())
        )
    else:
        ledger._move(
            session,
            SellerTransfer,
            TRANSFER,
            transfer,
            "reversal_pending",
            values={"reversal_due": params["reversal_due"], "attempts": 0, "next_attempt_at": None},
        )


def _unchecked(rule: Rule, since: dt.datetime) -> sa.ColumnElement[bool]:
    model = rule.model
    return ~sa.exists().where(
        RuleCheck.rule == rule.name, RuleCheck.object_id == model.id, RuleCheck.checked_at >= since
    )


def candidate_query(
    rule: Rule,
    condition: sa.ColumnExpressionArgument[bool],
    since: dt.datetime,
    *,
    after: str = "",
    limit: int = 100,
    lock: bool = False,
    claim: sa.ColumnExpressionArgument[bool] | None = None,
) -> sa.Select[Any]:
    """The keyset-paged claim of a rule's candidates (``EXPLAIN`` it to see the index used).

    Args:
        rule: The rule.
        condition: Its candidate condition (``rule.where(now, settings)``).
        since: Rows examined by this rule since then are excluded.
        after: The last id of the previous batch.
        limit: The batch size.
        lock: ``FOR UPDATE SKIP LOCKED`` (PostgreSQL).
        claim: The rule's claim-only condition (the cadence of old rows), if any.
    """
    model = rule.model
    if claim is not None:
        condition = sa.and_(condition, claim)
    query = (
        sa.select(model)
        .where(condition, model.id > after, _unchecked(rule, since))
        .order_by(model.id)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True, of=model) if lock else query


class _Sweeper:
    def __init__(
        self,
        ledger: Ledger,
        provider: ProviderView | None,
        settings: ReconcileSettings,
        now: dt.datetime,
        *,
        dry_run: bool,
        batch_size: int,
        cancel: threading.Event,
        lease: dt.timedelta = DEFAULT_LEASE,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.lease = lease
        started = time.monotonic()
        self.clock = clock or (lambda: now + dt.timedelta(seconds=time.monotonic() - started))
        self.provider = provider
        self.settings = settings
        self.now = now
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.cancel = cancel
        self.pg = ledger.engine.dialect.name == "postgresql"
        self.report = SweepReport(dry_run=dry_run)
        self._examined_ids: list[tuple[str, dt.datetime]] = []
        self._healthy_ids: list[str] = []
        self._findings: list[dict[str, Any]] = []

    def _claim(
        self,
        session: Session,
        rule: Rule,
        condition: sa.ColumnExpressionArgument[bool],
        after: str,
        claim: sa.ColumnExpressionArgument[bool] | None = None,
    ) -> tuple[list[Any], str | None]:
        """Lock the next batch; return the rows to examine and the last id claimed."""
        lock = self.pg and not self.dry_run
        query = candidate_query(
            rule,
            condition,
            self.now - self.settings.recheck_after,
            after=after,
            limit=self.batch_size,
            lock=lock,
            claim=claim,
        )
        rows = list(session.scalars(query.execution_options(populate_existing=True)))
        if not rows:
            return [], None
        last = rows[-1].id
        if lock:
            # The claim's snapshot predates our locks: a worker that committed in between
            # may have examined some of these rows. A new statement sees its marks.
            model = rule.model
            ids = [r.id for r in rows]
            fresh = set(
                session.scalars(
                    sa.select(model.id).where(
                        model.id.in_(ids), _unchecked(rule, self.now - self.settings.recheck_after)
                    )
                )
            )
            rows = [r for r in rows if r.id in fresh]
        return rows, last

    def run_rule(self, rule: Rule) -> None:
        if rule.needs_provider and self.provider is None:
            self.report.skipped_rules[rule.name] = "no provider view"
            return
        self.report.examined.setdefault(rule.name, 0)
        claim = rule.claim(self.now, self.settings) if rule.claim is not None else None
        self._pass(rule, rule.where(self.now, self.settings), claim)
        ids = self._open_finding_ids(rule)
        if ids:
            self._pass(rule, rule.model.id.in_(ids))

    def _open_finding_ids(self, rule: Rule) -> list[str]:
        with self.ledger.transaction() as session:
            return open_finding_objects(session, rule.name, limit=10_000)

    def _pass(
        self,
        rule: Rule,
        condition: sa.ColumnExpressionArgument[bool],
        claim: sa.ColumnExpressionArgument[bool] | None = None,
    ) -> None:
        after = ""
        while not self.cancel.is_set():
            with self.ledger.transaction() as session:
                rows, last = self._claim(session, rule, condition, after, claim)
                if last is None:
                    return
                after = last
                if rows and not self.dry_run:
                    self._lease(session, rule, [r.id for r in rows])
            # committed: the rows are leased and no lock is held while the provider is read
            read = [(row, self._fetch(rule, row) if rule.needs_provider else None) for row in rows]
            with self.ledger.transaction() as session:
                for row, state in read:
                    if state is not _FAILED:
                        self._examine(session, rule, condition, row, state)
                if not self.dry_run:
                    failed = [row.id for row, state in read if state is _FAILED]
                    if failed:  # not examined: free for the next sweep at once
                        session.execute(
                            sa.delete(RuleCheck).where(
                                RuleCheck.rule == rule.name, RuleCheck.object_id.in_(failed)
                            )
                        )
                    self._flush(session, rule)

    def _lease(self, session: Session, rule: Rule, ids: list[str]) -> None:
        """Mark claimed rows so that other workers skip them for ``lease``."""
        expires = self.clock() - self.settings.recheck_after + self.lease
        self._marks(session, rule, [(i, expires) for i in ids])

    def _fetch(self, rule: Rule, row: _Row) -> object:
        try:
            with self.ledger.transaction() as session:
                return rule.fetch(Context(session, self.provider), row)
        except Exception as exc:  # noqa: BLE001 - a provider outage must not stop the sweep
            self.report.errors += 1
            logger.warning(
                "%s: reading the other side of %s %s failed: %s",
                rule.name,
                rule.object_type,
                row.id,
                type(exc).__name__,
            )
            return _FAILED

    def _examine(
        self,
        session: Session,
        rule: Rule,
        condition: sa.ColumnExpressionArgument[bool],
        claimed: _Row,
        state: object,  # what the provider said (None: read it now)
    ) -> None:
        model = rule.model
        query = (
            sa.select(model)
            .where(model.id == claimed.id, condition)
            .execution_options(populate_existing=True)
        )
        if self.pg and not self.dry_run:
            query = query.with_for_update(of=model)
        row = session.scalars(query).one_or_none()
        if row is None:  # settled meanwhile (a webhook, another worker): nothing to decide
            self.report.examined[rule.name] += 1
            if not self.dry_run:
                self._examined_ids.append((claimed.id, self.clock()))
            return
        if not rule.needs_provider:
            try:
                state = rule.fetch(Context(session, self.provider), row)
            except LedgerError as exc:
                self.report.errors += 1
                logger.warning("%s: reading %s failed: %s", rule.name, row.id, exc)
                return
        self.report.examined[rule.name] += 1
        problem = rule.check(row, state, self.now, self.settings)
        if self.dry_run:
            if problem is not None:
                self.report.add(
                    SweepItem(
                        rule.name,
                        rule.object_type,
                        row.id,
                        problem.severity,
                        problem.summary,
                        problem.action,
                        applied=False,
                    )
                )
            return
        if problem is None:
            self._healthy_ids.append(row.id)
        else:
            self._record(session, rule, row, problem)
        self._examined_ids.append((row.id, self.clock()))

    def _record(self, session: Session, rule: Rule, row: _Row, problem: Problem) -> None:
        applied, error = False, None
        if problem.action is not None:
            try:
                with session.begin_nested():
                    _apply(self.ledger, session, row, problem)
                applied = True
            except (LedgerError, IntegrityError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                session.expire(row)
        self._findings.append(
            finding_values(
                rule=rule.name,
                object_type=rule.object_type,
                object_id=row.id,
                severity=problem.severity,
                summary=problem.summary + (f" (fix failed: {error})" if error else ""),
                evidence=problem.evidence,
                proposed_action=problem.action,
                applied_action=problem.action if applied else None,
                now=self.now,
                # fixed: the finding stays as a record, resolved (open if a human decides)
                resolved=applied and not problem.keep_open,
            )
        )
        self.report.add(
            SweepItem(
                rule.name,
                rule.object_type,
                row.id,
                problem.severity,
                problem.summary,
                problem.action,
                applied,
                error,
            )
        )

    def _flush(self, session: Session, rule: Rule) -> None:
        """Write the batch's findings, resolutions and examined marks (three statements)."""
        upsert_findings(session, self._findings)
        self._findings.clear()
        self.report.resolved += resolve_findings(
            session,
            rule=rule.name,
            object_type=rule.object_type,
            object_ids=self._healthy_ids,
            now=self.now,
        )
        self._healthy_ids.clear()
        self._marks(session, rule, self._examined_ids)
        self._examined_ids.clear()

    def _marks(self, session: Session, rule: Rule, marks: list[tuple[str, dt.datetime]]) -> None:
        """Upsert examination marks (one statement)."""
        if not marks:
            return
        dialect = postgresql if self.pg else sqlite
        statement = dialect.insert(RuleCheck).values(
            [{"rule": rule.name, "object_id": i, "checked_at": at} for i, at in marks]
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["rule", "object_id"],
                set_={"checked_at": statement.excluded.checked_at},
            )
        )

    def journal(self) -> None:
        """The books as a whole: the trial balance nets to zero per currency."""
        summary = "the journal does not balance"
        with self.ledger.transaction() as session:
            totals = {c: t for c, t in trial_balance(session).items() if t}
            if totals:
                self.report.add(
                    SweepItem(
                        "money_mismatch",
                        "journal",
                        "trial_balance",
                        "critical",
                        summary,
                        None,
                        applied=False,
                    )
                )
            if self.dry_run:
                return
            if totals:
                upsert_finding(
                    session,
                    rule="money_mismatch",
                    object_type="journal",
                    object_id="trial_balance",
                    severity="critical",
                    summary=summary,
                    evidence=totals,
                    proposed_action=None,
                    applied_action=None,
                    now=self.now,
                )
            elif resolve_finding(
                session,
                rule="money_mismatch",
                object_type="journal",
                object_id="trial_balance",
                now=self.now,
            ):
                self.report.resolved += 1


@traced_run("ledger sweep")
def run_sweep(
    engine: sa.Engine | Ledger,
    provider: ProviderView | None,
    *,
    rules: Iterable[str] | None = None,
    batch_size: int = 100,
    cancel: threading.Event | None = None,
    dry_run: bool = False,
    settings: ReconcileSettings | None = None,
    now: dt.datetime | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    clock: Callable[[], dt.datetime] | None = None,
) -> SweepReport:
    """Run the reconciliation rules once.

    Args:
        engine: The ledger's engine (or a :class:`Ledger`).
        provider: How rules read the providers; ``None`` runs only the rules that need
            none (the others are reported as skipped).
        rules: Rule names (default: all, in :data:`RULES` order).
        batch_size: Rows claimed per transaction.
        cancel: Set it to stop between batches.
        dry_run: Propose, write nothing (no findings, no fixes, no marks).
        settings: Thresholds and windows.
        now: The current time (tests); rules judge ages from it.
        lease: How long a claimed batch is left to this worker before others may take
            it (longer than its provider reads).
        clock: When each item is examined (default: ``now`` plus the time elapsed);
            examination marks carry it.

    Raises:
        LedgerConfigurationError: An unknown rule name or a bad batch size.
    """
    ledger = engine if isinstance(engine, Ledger) else Ledger(engine)
    names = list(RULES) if rules is None else list(rules)
    unknown = [n for n in names if n not in RULES]
    if unknown:
        msg = f"unknown rules {unknown}; known: {list(RULES)}"
        raise LedgerConfigurationError(msg)
    if batch_size <= 0:
        msg = f"batch_size must be positive, got {batch_size}"
        raise LedgerConfigurationError(msg)
    sweeper = _Sweeper(
        ledger,
        provider,
        settings or ReconcileSettings(),
        check_aware(now, "now") or utcnow(),
        dry_run=dry_run,
        batch_size=batch_size,
        cancel=cancel or threading.Event(),
        lease=lease,
        clock=clock,
    )
    for name in names:
        if sweeper.cancel.is_set():
            break
        sweeper.run_rule(RULES[name])
    if "money_mismatch" in names and not sweeper.cancel.is_set():
        sweeper.journal()
    return sweeper.report


def rule_names() -> Mapping[str, str]:
    """Every rule and the first line of its check's documentation."""
    return {
        name: (rule.check.__doc__ or "").strip().splitlines()[0] for name, rule in RULES.items()
    }
