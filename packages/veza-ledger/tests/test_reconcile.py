"""The reconciliation pipeline on PostgreSQL and SQLite: sweeps, findings, workers, metrics."""

from __future__ import annotations

import collections
import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry

from veza_ledger import (
    Accounts,
    Ledger,
    LedgerConfigurationError,
    LedgerError,
    PaymentState,
    ReconcileSettings,
    RefundState,
    TransferState,
    create_engine,
    retry_transfer_now,
    run_forever,
    run_reversal_worker,
    run_sweep,
    run_transfer_worker,
    upgrade,
)
from veza_ledger.metrics import LedgerMetrics

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(hours=2)


class FakeView:
    """An in-memory ProviderView that counts what it is asked."""

    def __init__(self) -> None:
        self.payments: dict[str, PaymentState] = {}
        self.refunds: dict[str, RefundState] = {}
        self.transfers: dict[str, TransferState] = {}
        self.calls: collections.Counter[str] = collections.Counter()

    def payment(self, psp_payment_id: str) -> PaymentState | None:
        self.calls[f"payment:{psp_payment_id}"] += 1
        return self.payments.get(psp_payment_id)

    def payment_for_order(self, order_id: str) -> PaymentState | None:
        return self.payment(f"p_{order_id}")

    def refund(self, provider_refund_id: str) -> RefundState | None:
        self.calls[f"refund:{provider_refund_id}"] += 1
        return self.refunds.get(provider_refund_id)

    def refund_for_row(self, refund_row_id: str) -> RefundState | None:
        return self.refund(f"r_{refund_row_id}")

    def find_transfer(
        self, transfer_row_id: str, *, destination: str, created_after: dt.datetime | None
    ) -> TransferState | None:
        self.calls[f"transfer:{transfer_row_id}"] += 1
        return self.transfers.get(transfer_row_id)


@pytest.fixture
def view() -> FakeView:
    return FakeView()


def _seed(ledger: Ledger, view: FakeView) -> dict[str, str]:
    """One anomaly of each kind, plus a healthy paid order."""
    ids: dict[str, str] = {}
    # 1. stuck order the PSP says succeeded; and one still processing
    o = ledger.orders.create(
        order_id="stuck",
        buyer_id="b",
        seller_id="s",
        amount=1000,
        currency="EUR",
        fee_amount=100,
        psp_payment_id="p_stuck",
    )
    view.payments["p_stuck"] = PaymentState("p_stuck", "succeeded", 1000, 1000, "EUR")
    ledger.orders.create(
        order_id="slow",
        buyer_id="b",
        seller_id="s",
        amount=500,
        currency="EUR",
        psp_payment_id="p_slow",
    )
    view.payments["p_slow"] = PaymentState("p_slow", "processing", 500, None, "EUR")
    # a healthy paid order with a completed transfer and a refund pending at the PSP
    paid = ledger.orders.create(
        order_id="paid",
        buyer_id="b",
        seller_id="s",
        amount=2000,
        currency="EUR",
        fee_amount=200,
        psp_payment_id="p_paid",
    )
    ledger.orders.mark_paid(paid.id)
    view.payments["p_paid"] = PaymentState("p_paid", "succeeded", 2000, 2000, "EUR")
    t = ledger.transfers.create(
        seller_id="s",
        destination="acct_s",
        amount=1800,
        currency="EUR",
        order_id=paid.id,
        transfer_id="tr-row",
    )
    ledger.transfers.completed(t.id, "tr_stripe")
    # 2. a refund that succeeded at the PSP without a webhook
    r = ledger.refunds.create(paid.id, 500, refund_id="rf-pending")
    ledger.refunds.set_provider_id(r.id, "hr_1")
    view.refunds["hr_1"] = RefundState("hr_1", "succeeded", 500)
    # 3. a refund row whose provider id was never recorded (crash after the PSP's ACK)
    ledger.refunds.create(paid.id, 100, refund_id="rf-noid")
    view.refunds["r_rf-noid"] = RefundState("r_rf-noid", "pending", 100)
    # 4. a completed transfer without a Stripe id
    t2 = ledger.transfers.create(
        seller_id="s", destination="acct_s", amount=700, currency="EUR", transfer_id="legacy-row"
    )
    with ledger.engine.begin() as c:  # a legacy import: completed, id never recorded
        c.execute(
            sa.text("UPDATE ledger_seller_transfers SET status = 'completed' WHERE id = :i"),
            {"i": t2.id},
        )
    view.transfers["legacy-row"] = TransferState("tr_legacy", 700)
    # 6. an active subscription whose paying order got fully refunded
    sub_order = ledger.orders.create(
        order_id="sub",
        buyer_id="u",
        seller_id="platform",
        amount=990,
        currency="EUR",
        fee_amount=990,
        psp_payment_id="p_sub",
    )
    ledger.orders.mark_paid(sub_order.id)
    ledger.subscriptions.create(
        user_id="u", plan="creator", order_id=sub_order.id, subscription_id="sub-1"
    )
    view.payments["p_sub"] = PaymentState("p_sub", "succeeded", 990, 990, "EUR")
    ledger.refunds.succeeded(ledger.refunds.create(sub_order.id).id)
    assert ledger.subscriptions.get("sub-1").status == "past_due"  # at once since issue 15
    _imported_active(ledger.engine, "sub-1")  # a legacy row the rule must still catch
    ids.update(order=o.id, transfer=t.id, legacy=t2.id)
    return ids


def _imported_active(engine: sa.Engine, subscription_id: str) -> None:
    """An imported row: ``active`` on a refunded order, as only a restore can write it.

    The library moves such a subscription to ``past_due`` in the refund's transaction
    and PostgreSQL's activation trigger refuses the row, so the import skips triggers
    (the replica role, as ``pg_restore`` can).
    """
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(sa.text("SET LOCAL session_replication_role = replica"))
        c.execute(
            sa.text("UPDATE ledger_subscriptions SET status = 'active' WHERE id = :i"),
            {"i": subscription_id},
        )


def _row_counts(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as c:
        return {
            t: c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("ledger_findings", "ledger_rule_checks", "ledger_journal_entries")
        } | {
            "statuses": sorted(
                c.execute(
                    sa.text(
                        "SELECT id, status FROM ledger_orders UNION ALL "
                        "SELECT id, status FROM ledger_refunds UNION ALL "
                        "SELECT id, status FROM ledger_seller_transfers"
                    )
                ).all()
            )
        }


def test_dry_run_proposes_and_writes_nothing(
    ledger: Ledger, view: FakeView, engine: sa.Engine
) -> None:
    _seed(ledger, view)
    before = _row_counts(engine)
    report = run_sweep(ledger, view, dry_run=True, now=LATER)
    assert _row_counts(engine) == before
    proposed = {(p.rule, p.object_id): p.action for p in report.problems}
    assert proposed[("stuck_orders", "stuck")] == "mark_paid"
    assert proposed[("stuck_orders", "slow")] is None
    assert proposed[("stuck_refunds", "rf-pending")] == "refund_succeeded"
    assert proposed[("refunds_without_provider_id", "rf-noid")] == "set_refund_provider_id"
    assert proposed[("transfers_without_stripe_id", "legacy-row")] == "set_stripe_transfer_id"
    assert proposed[("unpaid_active_subscriptions", "sub-1")] == "mark_past_due"
    assert not any(p.applied for p in report.problems)


def test_sweep_fixes_through_the_machines_and_the_journal(
    ledger: Ledger, view: FakeView, engine: sa.Engine
) -> None:
    _seed(ledger, view)
    report = run_sweep(ledger, view, now=LATER)
    assert ledger.orders.get("stuck").status == "paid"
    assert ledger.refunds.get("rf-pending").status == "succeeded"
    assert ledger.refunds.get("rf-noid").hyperswitch_refund_id == "r_rf-noid"
    assert ledger.transfers.get("legacy-row").stripe_transfer_id == "tr_legacy"
    assert ledger.subscriptions.get("sub-1").status == "past_due"
    # the refund that settled made the seller's share due for reversal, in the same sweep
    transfer = ledger.transfers.get("tr-row")
    assert transfer.status == "reversal_pending" and transfer.reversal_due == 450
    assert ledger.journal.trial_balance() == {"EUR": 0}
    assert ledger.journal.balance(Accounts.PSP_CLEARING, "EUR") == 1000 + 2000 - 500
    assert report.applied >= 5
    open_ = {(f.rule, f.object_id) for f in ledger.reconciliation.findings(status="open")}
    assert ("stuck_orders", "slow") in open_  # info: still processing, nothing to do yet
    fixed = {(f.rule, f.object_id) for f in ledger.reconciliation.findings(status="resolved")}
    assert ("stuck_orders", "stuck") in fixed


def test_rerunning_updates_never_duplicates_and_fixed_problems_resolve(
    ledger: Ledger, view: FakeView, engine: sa.Engine
) -> None:
    _seed(ledger, view)
    run_sweep(ledger, view, now=LATER)
    count = len(ledger.reconciliation.findings())
    again = run_sweep(ledger, view, now=LATER + dt.timedelta(minutes=1))
    assert sum(again.examined.values()) == 0  # recheck window: nothing examined twice
    run_sweep(ledger, view, now=LATER + dt.timedelta(minutes=10))
    assert len(ledger.reconciliation.findings()) == count  # updated, not duplicated
    slow = next(f for f in ledger.reconciliation.findings() if f.object_id == "slow")
    assert slow.occurrences == 2 and slow.status == "open"
    view.payments["p_slow"] = PaymentState("p_slow", "succeeded", 500, 500, "EUR")
    run_sweep(ledger, view, now=LATER + dt.timedelta(minutes=20))
    slow = next(f for f in ledger.reconciliation.findings() if f.object_id == "slow")
    assert slow.status == "resolved" and ledger.orders.get("slow").status == "paid"


def test_suppressed_findings_stay_suppressed_until_fixed(ledger: Ledger, view: FakeView) -> None:
    _seed(ledger, view)
    run_sweep(ledger, view, now=LATER)
    slow = next(f for f in ledger.reconciliation.findings() if f.object_id == "slow")
    ledger.reconciliation.suppress(slow.id, reason="known PSP incident #42", actor="ops@veza")
    run_sweep(ledger, view, now=LATER + dt.timedelta(minutes=10))
    slow = next(f for f in ledger.reconciliation.findings() if f.object_id == "slow")
    assert (slow.status, slow.suppressed_reason) == ("suppressed", "known PSP incident #42")
    with pytest.raises(LedgerConfigurationError):
        ledger.reconciliation.suppress(slow.id, reason=" ", actor="x")


def test_without_a_provider_only_local_rules_run(ledger: Ledger, view: FakeView) -> None:
    _seed(ledger, view)
    report = run_sweep(ledger, None, now=LATER)
    assert "stuck_orders" in report.skipped_rules
    assert ledger.subscriptions.get("sub-1").status == "past_due"  # needs no provider
    with pytest.raises(LedgerConfigurationError, match="unknown rules"):
        run_sweep(ledger, None, rules=["no_such_rule"])


def test_provider_outages_are_errors_not_examinations(ledger: Ledger, view: FakeView) -> None:
    _seed(ledger, view)

    class Down(FakeView):
        def payment(self, psp_payment_id: str) -> PaymentState | None:
            raise ConnectionError("hyperswitch unreachable")

    report = run_sweep(ledger, Down(), rules=["stuck_orders"], now=LATER)
    assert report.errors == 2 and report.examined["stuck_orders"] == 0
    assert run_sweep(ledger, view, rules=["stuck_orders"], now=LATER).examined["stuck_orders"] == 2


def test_an_unbalanced_journal_is_a_critical_finding(
    ledger: Ledger, view: FakeView, engine: sa.Engine
) -> None:
    with engine.begin() as c:  # someone wrote around the ledger
        if engine.dialect.name == "postgresql":  # a superuser: the balance trigger (0003)
            c.execute(sa.text("SET LOCAL session_replication_role = replica"))
        c.execute(
            sa.text(
                "INSERT INTO ledger_journal_transactions (id, kind, content_hash, created_at) "
                "VALUES ('rogue', 'manual', 'x', :t)"
            ),
            {"t": T0},
        )
        c.execute(
            sa.text(
                "INSERT INTO ledger_journal_entries (transaction_id, account, currency, amount) "
                "VALUES ('rogue', 'cash', 'EUR', 100)"
            )
        )
    run_sweep(ledger, view, rules=["money_mismatch"], now=LATER)
    (finding,) = [
        f for f in ledger.reconciliation.findings(status="open") if f.object_type == "journal"
    ]
    assert finding.severity == "critical" and finding.evidence == {"EUR": 100}
    with engine.begin() as c:  # the offsetting leg the rogue writer forgot
        c.execute(
            sa.text(
                "INSERT INTO ledger_journal_entries (transaction_id, account, currency, "
                "amount) VALUES ('rogue', 'suspense', 'EUR', -100)"
            )
        )
    run_sweep(ledger, view, rules=["money_mismatch"], now=LATER + dt.timedelta(minutes=1))
    assert [f.status for f in ledger.reconciliation.findings() if f.object_type == "journal"] == [
        "resolved"
    ]


# --------------------------------------------------------------------------- workers


class Stripeish:
    """A TransferCreator/TransferReverser that counts, fails or "crashes" on request."""

    def __init__(self) -> None:
        self.transfers: dict[str, str] = {}
        self.reversals: dict[str, tuple[str, int]] = {}
        self.fail = 0
        self.created = 0

    def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
    ) -> object:
        if self.fail:
            self.fail -= 1
            raise TimeoutError("stripe timed out")
        if idempotency_key not in self.transfers:  # Stripe's idempotent replay
            self.created += 1
            self.transfers[idempotency_key] = f"tr_{len(self.transfers)}"
        return type("T", (), {"id": self.transfers[idempotency_key]})()

    def reverse_transfer(
        self, idempotency_key: str, transfer_id: str, *, amount: int | None = None
    ) -> object:
        if self.fail:
            self.fail -= 1
            raise TimeoutError("stripe timed out")
        self.reversals.setdefault(idempotency_key, (f"trr_{len(self.reversals)}", amount or 0))
        return type("R", (), {"id": self.reversals[idempotency_key][0]})()


def test_transfer_worker_pays_retries_with_backoff_and_never_twice(ledger: Ledger) -> None:
    stripe = Stripeish()
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=100
    )
    ledger.orders.mark_paid(order.id)
    t = ledger.transfers.create(
        seller_id="s", destination="acct_1", amount=900, currency="EUR", order_id=order.id
    )
    stripe.fail = 1
    report = run_transfer_worker(ledger, stripe, now=T0)
    assert report.failed == [t.id]
    failed = ledger.transfers.get(t.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.next_attempt_at == T0 + dt.timedelta(minutes=1)
    assert (
        run_transfer_worker(ledger, stripe, now=T0 + dt.timedelta(seconds=30)).done == []
    )  # backing off
    assert run_transfer_worker(ledger, stripe, now=T0 + dt.timedelta(minutes=2)).done == [t.id]
    done = ledger.transfers.get(t.id)
    assert (done.status, done.stripe_transfer_id) == ("completed", "tr_0")
    assert stripe.created == 1 and ledger.journal.balance(Accounts.seller_payable("s"), "EUR") == 0


def test_a_crash_between_the_providers_ack_and_the_commit_heals(ledger: Ledger) -> None:
    stripe = Stripeish()
    t = ledger.transfers.create(seller_id="s", destination="acct_1", amount=900, currency="EUR")

    class CrashAfterAck(Stripeish):
        def create_transfer(self, idempotency_key: str, **kw: object) -> object:
            stripe.create_transfer(idempotency_key, **kw)  # type: ignore[arg-type]
            raise SystemExit(
                "worker killed after Stripe answered"
            )  # not an Exception: no backoff path

    with pytest.raises(SystemExit):
        run_transfer_worker(ledger, CrashAfterAck(), now=T0)
    assert ledger.transfers.get(t.id).status == "pending"  # the outcome never committed
    assert run_transfer_worker(ledger, stripe, now=T0).done == []  # leased to the dead worker
    run_transfer_worker(ledger, stripe, now=T0 + dt.timedelta(minutes=10))  # the lease ran out
    assert ledger.transfers.get(t.id).stripe_transfer_id == "tr_0" and stripe.created == 1


def test_reversal_worker_reverses_what_is_due_once(ledger: Ledger) -> None:
    stripe = Stripeish()
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=1000, currency="EUR", fee_amount=100
    )
    ledger.orders.mark_paid(order.id)
    t = ledger.transfers.create(
        seller_id="s",
        destination="acct_1",
        amount=900,
        currency="EUR",
        order_id=order.id,
        transfer_id="tr-row-9",
    )
    ledger.transfers.completed(t.id, "tr_9")
    ledger.refunds.succeeded(ledger.refunds.create(order.id, 400).id)
    stripe.fail = 1
    assert run_reversal_worker(ledger, stripe, now=T0).failed == [t.id]
    pending = ledger.transfers.get(t.id)
    assert pending.status == "reversal_pending" and pending.attempts == 1
    assert run_reversal_worker(ledger, stripe, now=T0 + dt.timedelta(minutes=5)).done == [t.id]
    first = ledger.provider_intents.find(kind="reversal", object_id=t.id)
    assert [(i.amount, i.status) for i in first] == [(360, "succeeded")]
    assert list(stripe.reversals) == [first[0].id]  # keyed by its durable intent
    ledger.refunds.succeeded(ledger.refunds.create(order.id).id)
    run_reversal_worker(ledger, stripe, now=T0 + dt.timedelta(minutes=10))
    final = ledger.transfers.get(t.id)
    assert (final.status, final.reversed_amount) == ("reversed", 900)
    intents = ledger.provider_intents.find(kind="reversal", object_id=t.id)
    assert [(i.seq, i.amount, i.status) for i in intents] == [
        (1, 360, "succeeded"),
        (2, 540, "succeeded"),
    ]
    assert list(stripe.reversals) == [i.id for i in intents]
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_admin_retry_now(ledger: Ledger) -> None:
    stripe = Stripeish()
    t = ledger.transfers.create(seller_id="s", destination="acct_1", amount=5, currency="EUR")
    ledger.transfers.failed(t.id, "card declined")
    stripe.fail = 1
    with pytest.raises(LedgerError, match="failed again"):
        retry_transfer_now(ledger, stripe, transfer_id=t.id)
    assert retry_transfer_now(ledger, stripe, transfer_id=t.id).status == "completed"
    with pytest.raises(LedgerError):
        retry_transfer_now(ledger, stripe, transfer_id=t.id)  # completed: nothing to retry


def test_run_forever_keeps_going_and_stops_at_once() -> None:
    cancel = threading.Event()
    runs: list[int] = []
    errors: list[BaseException] = []

    def job() -> None:
        runs.append(1)
        if len(runs) == 2:
            raise RuntimeError("one bad run")
        if len(runs) == 4:
            cancel.set()

    run_forever(job, interval=0.01, cancel=cancel, on_error=errors.append)
    assert len(runs) == 4 and len(errors) == 1


# --------------------------------------------------------------------------- metrics


def test_metrics_live_in_the_callers_registry(tmp_path: Path, view: FakeView) -> None:
    engines = []
    for name in ("a", "b"):
        engine = create_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(engine)
        engines.append(engine)
    before = {m.name for m in REGISTRY.collect()}
    registries = [CollectorRegistry(), CollectorRegistry()]
    metrics = [
        LedgerMetrics(e, r, ledger_name=n, clock=lambda: LATER)
        for e, r, n in zip(engines, registries, "ab", strict=True)
    ]
    ledger_a = Ledger(engines[0], clock=lambda: T0)
    _seed(ledger_a, view)
    metrics[0].observe_sweep(run_sweep(ledger_a, view, now=LATER))
    a, b = registries
    assert a.get_sample_value("veza_ledger_reversal_backlog", {"ledger": "a"}) == 1
    assert b.get_sample_value("veza_ledger_reversal_backlog", {"ledger": "b"}) == 0
    assert (
        a.get_sample_value(
            "veza_ledger_open_findings", {"ledger": "a", "rule": "stuck_orders", "severity": "info"}
        )
        == 1
    )
    assert a.get_sample_value(
        "veza_ledger_oldest_stuck_order_seconds", {"ledger": "a"}
    ) == pytest.approx(7200, abs=60)
    assert (
        a.get_sample_value(
            "veza_ledger_sweep_fixes_total",
            {"ledger": "a", "rule": "stuck_orders", "action": "mark_paid"},
        )
        == 1
    )
    assert {m.name for m in REGISTRY.collect()} == before  # nothing global
    with pytest.raises(LedgerConfigurationError, match="own CollectorRegistry"):
        LedgerMetrics(engines[1], a)
    for engine in engines:
        engine.dispose()


# --------------------------------------------------------------------------- CLI


def test_cli_reconcile_and_findings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = create_engine(url)
    upgrade(engine)
    ledger = Ledger(engine)
    o = ledger.orders.create(buyer_id="u", seller_id="platform", amount=5, currency="EUR")
    ledger.orders.mark_paid(o.id)
    ledger.subscriptions.create(user_id="u", plan="creator", order_id=o.id, subscription_id="s1")
    ledger.refunds.succeeded(ledger.refunds.create(o.id).id)
    _imported_active(engine, "s1")
    engine.dispose()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "veza_ledger._cli", *args, "--database-url", url],
            capture_output=True,
            text=True,
            check=False,
        )

    dry = run("reconcile", "--no-provider", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    body = json.loads(dry.stdout)
    assert body["dry_run"] and body["problems"][0]["action"] == "mark_past_due"
    assert json.loads(run("findings", "--json").stdout) == []
    applied = run("reconcile", "--no-provider", "--rules", "unpaid_active_subscriptions")
    assert "1 fixed" in applied.stdout
    listed = json.loads(run("findings", "--json").stdout)
    assert [(f["rule"], f["status"]) for f in listed] == [
        ("unpaid_active_subscriptions", "resolved")
    ]
    needs = run("reconcile", "--rules", "stuck_orders")
    assert needs.returncode == 1 and "HYPERSWITCH_API_KEY" in needs.stderr


def test_settings_are_values() -> None:
    settings = ReconcileSettings(stuck_order_after=dt.timedelta(minutes=1))
    assert settings.recheck_after == dt.timedelta(minutes=5)


def test_claim_queries_can_use_an_index_on_postgresql(pg_only: sa.Engine) -> None:
    """No rule needs a sequential scan of its table (the benchmark shows it at 1,000,000 rows)."""
    from veza_ledger import RULES
    from veza_ledger._sweep import candidate_query

    settings = ReconcileSettings()
    with pg_only.begin() as connection:
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        for rule in RULES.values():
            query = candidate_query(rule, rule.where(LATER, settings), LATER, lock=True)
            sql = query.compile(pg_only, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r for (r,) in connection.execute(sa.text(f"EXPLAIN {sql}")))
            assert f"Seq Scan on {rule.model.__tablename__}" not in plan, (rule.name, plan)
