"""Sweeps and worker batches as spans with their counts; the provider call spans nest inside."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from veza_ledger import Ledger, create_engine, run_sweep, run_transfer_worker, upgrade
from veza_ledger._tracing import _counts, traced_run


@pytest.fixture(scope="module")
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # the library uses the application's global provider, as OpenTelemetry libraries do
    trace.set_tracer_provider(provider)
    return exporter


class _Creator:
    def __init__(self) -> None:
        self.calls = 0

    def create_transfer(self, **kwargs):
        self.calls += 1
        with trace.get_tracer("fake-stripe").start_as_current_span("stripe create transfer"):
            return f"tr_{self.calls}"


def test_a_worker_batch_and_a_sweep_are_spans_with_counts(tmp_path, exporter):
    exporter.clear()
    engine = create_engine(f"sqlite:///{tmp_path}/l.db")
    upgrade(engine)
    ledger = Ledger(engine)
    run_sweep(ledger, None)
    sweep = next(s for s in exporter.get_finished_spans() if s.name == "ledger sweep")
    assert sweep.attributes["veza.ledger.run"] == "ledger sweep"
    assert "veza.ledger.problem_count" in sweep.attributes
    exporter.clear()
    report = run_transfer_worker(ledger, _Creator())
    batch = next(s for s in exporter.get_finished_spans() if s.name == "ledger transfer worker")
    assert batch.attributes["veza.ledger.done"] == len(report.done)
    engine.dispose()


def test_counts_read_attrs_reports():
    import attrs

    @attrs.define
    class Report:
        done: list[str] = attrs.field(factory=list)
        examined: dict[str, int] = attrs.field(factory=dict)
        applied: int = 0
        dry_run: bool = False

    assert _counts(Report(["a", "b"], {"x": 2, "y": 3}, 4)) == {
        "done": 2,
        "examined": 5,
        "applied": 4,
    }


def test_the_decorator_keeps_the_function_and_nests_children(exporter):
    exporter.clear()

    @traced_run("ledger test run")
    def work(n: int) -> list[int]:
        with trace.get_tracer("t").start_as_current_span("inner"):
            return list(range(n))

    assert work(3) == [0, 1, 2]
    assert work.__name__ == "work"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["inner"].parent.span_id == spans["ledger test run"].context.span_id
