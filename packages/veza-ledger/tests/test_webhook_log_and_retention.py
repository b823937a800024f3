"""The SQL webhook log behind veza-payments' intake, and its retention sweep."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from veza_ledger import (
    DEFAULT_RETENTION_DAYS,
    EventOutcome,
    Ledger,
    LedgerConfigurationError,
    SQLWebhookLog,
    WebhookLogRow,
    event_from_hyperswitch,
    retention_days_from_env,
    sweep_webhook_log,
)
from veza_payments import InMemoryWebhookLog, WebhookIntake, WebhookLog, WebhookRecord, sign_payload

KEY = "hash-key"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _record(**changes: object) -> WebhookRecord:
    base: dict[str, object] = {
        "payload": '{"event_type":"payment_succeeded"}',
        "signature_valid": True,
        "processing_result": "ok",
        "source_ip": "203.0.113.1",
        "user_agent": "hs",
        "request_id": "req-1",
        "event_id": "evt_1",
        "event_type": "payment_succeeded",
        "received_at": NOW,
    }
    return WebhookRecord(**{**base, **changes})  # type: ignore[arg-type]


def test_the_sql_log_satisfies_the_payments_protocol(ledger: Ledger) -> None:
    assert isinstance(ledger.webhook_log, WebhookLog)
    assert isinstance(InMemoryWebhookLog(), WebhookLog)  # the same contract, two owners


def test_records_round_trip_with_every_field(ledger: Ledger, engine: sa.Engine) -> None:
    log = ledger.webhook_log
    log.record(_record(payload="caf\u00e9 \x00 nul", user_agent="u" * 600))
    log.record(_record(event_id="evt_2", processing_result="error: boom"))
    with sa.orm.Session(engine) as session:
        rows = session.scalars(sa.select(WebhookLogRow).order_by(WebhookLogRow.id)).all()
    assert len(rows) == 2
    assert rows[0].payload == "caf\u00e9 \ufffd nul"  # NUL cannot live in PostgreSQL text
    assert len(rows[0].user_agent or "") == 512 and rows[0].received_at == NOW
    assert log.processed_successfully("evt_1") and not log.processed_successfully("evt_2")


def test_intake_into_the_ledger_end_to_end(ledger: Ledger, engine: sa.Engine) -> None:
    """veza-payments' intake writes through the SQL log; the handler applies the event."""
    order = ledger.orders.create(
        buyer_id="b", seller_id="s", amount=500, currency="EUR", psp_payment_id="pay_9"
    )
    intake = WebhookIntake(ledger.webhook_log, KEY)

    @intake.on("payment_*")
    def handle(event: object) -> None:
        provider_event = event_from_hyperswitch(event.payload)  # type: ignore[attr-defined]
        assert provider_event is not None
        ledger.events.apply(provider_event)

    body = (
        b'{"event_id":"evt_9","event_type":"payment_succeeded","timestamp":"2026-11-26T12:00:00Z",'
        b'"content":{"type":"payment_details","object":{"payment_id":"pay_9","amount_received":500}}}'
    )
    headers = {"x-webhook-signature-512": sign_payload(body, KEY)}
    assert intake.handle(headers, body, source_ip="198.51.100.7").status == 200
    again = intake.handle(headers, body, source_ip="198.51.100.7")  # the provider's retry
    assert again.processing_result == "skipped"
    assert intake.handle({"x-webhook-signature-512": "0" * 128}, body).status == 401
    assert ledger.orders.get(order.id).status == "paid"
    assert ledger.events.processed("evt_9").outcome == EventOutcome.APPLIED  # type: ignore[union-attr]
    with engine.connect() as connection:
        results = [
            r
            for (r,) in connection.execute(
                sa.text("SELECT processing_result FROM ledger_webhook_log ORDER BY id")
            )
        ]
    assert results == ["ok", "skipped", "signature_invalid"]
    assert ledger.webhook_log.invalid_signatures_since(NOW - dt.timedelta(days=3650)) == 1


def test_invalid_signature_lookups_use_the_partial_index(
    pg_ledger: Ledger, pg_only: sa.Engine
) -> None:
    engine = pg_only
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r
            for (r,) in connection.execute(
                sa.text(
                    "EXPLAIN SELECT count(*) FROM ledger_webhook_log "
                    "WHERE signature_valid = false AND received_at >= now() - interval '1 day'"
                )
            )
        )
    assert "ix_ledger_webhook_log_invalid_signature" in plan


# --------------------------------------------------------------------------- retention


def _fill(engine: sa.Engine, count: int, age_days: float) -> None:
    at = NOW - dt.timedelta(days=age_days)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(WebhookLogRow),
            [
                {
                    "payload": "{}",
                    "signature_valid": True,
                    "processing_result": "ok",
                    "request_id": f"r{i}",
                    "received_at": at,
                }
                for i in range(count)
            ],
        )


def _count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(sa.text("SELECT count(*) FROM ledger_webhook_log")).scalar_one()
        )


def test_sweep_deletes_only_expired_rows_in_batches(ledger: Ledger, engine: sa.Engine) -> None:
    _fill(engine, 250, age_days=91)
    _fill(engine, 40, age_days=89)
    batches: list[int] = []
    deleted = sweep_webhook_log(
        engine, batch_size=100, pause=0, now=NOW, on_batch=lambda n, _s: batches.append(n)
    )
    assert deleted == 250 and batches == [100, 100, 50]
    assert _count(engine) == 40
    assert sweep_webhook_log(engine, retention_days=1, now=NOW, pause=0) == 40


def test_sweep_stops_promptly_when_cancelled(ledger: Ledger, engine: sa.Engine) -> None:
    _fill(engine, 500, age_days=200)
    cancel = threading.Event()
    batches: list[int] = []

    def on_batch(n: int, _took: float) -> None:
        batches.append(n)
        cancel.set()  # cancel after the first batch, during the (long) pause

    started = time.monotonic()
    deleted = sweep_webhook_log(
        engine, batch_size=100, pause=30, cancel=cancel, now=NOW, on_batch=on_batch
    )
    assert deleted == 100 and time.monotonic() - started < 5
    assert _count(engine) == 400


@pytest.mark.parametrize(("raw", "days"), [("", 90), ("0", 90), ("30", 30), (" 7 ", 7)])
def test_retention_from_the_environment(raw: str, days: int) -> None:
    assert retention_days_from_env({"HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS": raw}) == days
    assert retention_days_from_env({}) == DEFAULT_RETENTION_DAYS


@pytest.mark.parametrize("raw", ["ninety", "-1", "1.5"])
def test_bad_retention_names_the_variable(raw: str) -> None:
    with pytest.raises(LedgerConfigurationError, match="HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS"):
        retention_days_from_env({"HYPERSWITCH_WEBHOOK_LOG_RETENTION_DAYS": raw})


def test_sweep_under_concurrent_inserts_on_postgresql(pg_only: sa.Engine) -> None:
    """SKIP LOCKED batches never wait for, nor block, the intake's inserts."""
    engine = pg_only
    _fill(engine, 3000, age_days=100)
    stop = threading.Event()
    inserted = [0]
    log = SQLWebhookLog(engine)

    def writer() -> None:
        while not stop.is_set():
            log.record(_record(received_at=dt.datetime.now(dt.UTC), event_id=None))
            inserted[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deleted = sweep_webhook_log(engine, batch_size=200, pause=0.01, now=NOW)
    finally:
        stop.set()
        thread.join()
    assert deleted == 3000 and inserted[0] > 0
    assert _count(engine) == inserted[0]
