"""Ledger health metrics, in a prometheus-client registry the caller passes.

Nothing is registered at import. :class:`LedgerMetrics` adds one collector (gauges read
from the database at scrape time) and a few counters (fed by sweep reports) to *your*
registry. A second ledger in the same process uses its own registry (a second
``LedgerMetrics`` on the same registry is refused with a clear error, never a silent
mix); ``ledger_name`` adds a ``ledger`` label for when the registries are aggregated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from veza_ledger._errors import LedgerConfigurationError
from veza_ledger._schema import (
    Finding,
    Order,
    ProviderIntent,
    Refund,
    SellerTransfer,
    WebhookLogRow,
)
from veza_ledger._sweep import SweepReport
from veza_ledger._types import utcnow

PREFIX = "veza_ledger"


class _HealthCollector(Collector):
    def __init__(
        self, engine: sa.Engine, labels: dict[str, str], clock: Callable[[], dt.datetime]
    ) -> None:
        self.engine = engine
        self.labels = labels
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # collected lazily: no query at registration

    def _gauge(self, name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=[*self.labels, *(extra or [])])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        base = list(self.labels.values())
        with self.engine.connect() as connection:
            findings = self._gauge(
                "open_findings", "Open reconciliation findings.", ["rule", "severity"]
            )
            for rule, severity, count in connection.execute(
                sa.select(Finding.rule, Finding.severity, sa.func.count())
                .where(Finding.status == "open")
                .group_by(Finding.rule, Finding.severity)
            ):
                findings.add_metric([*base, rule, severity], count)
            yield findings
            for name, model, status, doc in (
                (
                    "oldest_stuck_order_seconds",
                    Order,
                    "pending_payment",
                    "Age of the oldest order still pending payment.",
                ),
                (
                    "oldest_stuck_refund_seconds",
                    Refund,
                    "pending",
                    "Age of the oldest refund still pending.",
                ),
            ):
                oldest = connection.execute(
                    sa.select(sa.func.min(model.updated_at)).where(model.status == status)
                ).scalar()
                gauge = self._gauge(name, doc)
                if isinstance(oldest, dt.datetime):
                    stamp = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
                    gauge.add_metric(base, max(0.0, (now - stamp).total_seconds()))
                else:
                    gauge.add_metric(base, 0.0)
                yield gauge
            for name, condition, doc in (
                (
                    "reversal_backlog",
                    SellerTransfer.status == "reversal_pending",
                    "Transfers waiting for a reversal.",
                ),
                (
                    "transfer_retry_backlog",
                    SellerTransfer.status.in_(("pending", "failed")),
                    "Transfers not yet paid (pending or failed).",
                ),
            ):
                gauge = self._gauge(name, doc)
                count = connection.execute(sa.select(sa.func.count()).where(condition)).scalar_one()
                gauge.add_metric(base, count)
                yield gauge
            parked = self._gauge(
                "parked_intents",
                "Provider intents parked until an operator acts (retry, write off, net).",
                ["kind"],
            )
            counts = dict(
                connection.execute(
                    sa.select(ProviderIntent.kind, sa.func.count())
                    .where(ProviderIntent.status == "parked")
                    .group_by(ProviderIntent.kind)
                ).all()
            )
            for kind in ("transfer", "reversal", "payout"):
                parked.add_metric([*base, kind], counts.get(kind, 0))
            yield parked
            invalid = connection.execute(
                sa.select(sa.func.count()).where(
                    WebhookLogRow.signature_valid.is_(False),
                    WebhookLogRow.received_at >= now - dt.timedelta(hours=1),
                )
            ).scalar_one()
            gauge = self._gauge(
                "invalid_webhook_signatures_last_hour",
                "Webhook deliveries with an invalid signature in the last hour.",
            )
            gauge.add_metric(base, invalid)
            yield gauge


class LedgerMetrics:
    """Register the ledger's health metrics in ``registry``.

    Args:
        engine: The ledger's engine (gauges query it at scrape time).
        registry: Your ``CollectorRegistry`` (never the global default).
        ledger_name: Value of a ``ledger`` label on every metric (tells ledgers apart once
            scraped into one place).
        clock: Current time (tests).

    Raises:
        LedgerConfigurationError: The registry already holds veza-ledger metrics.
    """

    def __init__(
        self,
        engine: sa.Engine,
        registry: CollectorRegistry,
        *,
        ledger_name: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        labels = {"ledger": ledger_name} if ledger_name else {}
        names = [*labels]
        self._labels = list(labels.values())
        try:
            self.sweep_problems = Counter(
                f"{PREFIX}_sweep_problems",
                "Problems found by reconciliation sweeps.",
                [*names, "rule", "severity"],
                registry=registry,
            )
            self.sweep_fixes = Counter(
                f"{PREFIX}_sweep_fixes",
                "Fixes applied by reconciliation sweeps.",
                [*names, "rule", "action"],
                registry=registry,
            )
            self.last_sweep = Gauge(
                f"{PREFIX}_last_sweep_timestamp_seconds",
                "When the last sweep finished.",
                names,
                registry=registry,
            )
        except ValueError as exc:
            msg = (
                "veza-ledger metrics are already registered in this registry: give each ledger "
                f"its own CollectorRegistry ({exc})"
            )
            raise LedgerConfigurationError(msg) from None
        registry.register(_HealthCollector(engine, labels, clock))

    def observe_sweep(self, report: SweepReport) -> None:
        """Count a sweep's problems and fixes."""
        for item in report.problems:
            self.sweep_problems.labels(*self._labels, item.rule, item.severity).inc()
            if item.applied and item.action:
                self.sweep_fixes.labels(*self._labels, item.rule, item.action).inc()
        if self._labels:
            self.last_sweep.labels(*self._labels).set_to_current_time()
        else:
            self.last_sweep.set_to_current_time()
