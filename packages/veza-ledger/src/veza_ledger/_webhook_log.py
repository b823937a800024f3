"""The SQL webhook log: veza-payments' ``WebhookLog`` protocol, one INSERT per delivery.

It satisfies the protocol structurally (``record``, ``processed_successfully``) and
imports nothing from veza-payments: any object with the record's attributes
(``payload``, ``signature_valid``, ``processing_result``, ``source_ip``,
``user_agent``, ``request_id``, ``event_id``, ``event_type``, ``received_at``) can be
recorded.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import sqlalchemy as sa

from veza_ledger._schema import WebhookLogRow

_LIMITS = {
    "processing_result": 1024,
    "source_ip": 64,
    "user_agent": 512,
    "request_id": 128,
    "event_id": 255,
    "event_type": 128,
}


class RecordLike(Protocol):
    """The attributes of a webhook record (veza-payments' ``WebhookRecord`` has them)."""

    @property
    def payload(self) -> str: ...
    @property
    def signature_valid(self) -> bool: ...
    @property
    def processing_result(self) -> str: ...
    @property
    def source_ip(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...
    @property
    def request_id(self) -> str: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def event_type(self) -> str | None: ...
    @property
    def received_at(self) -> dt.datetime: ...


def _clip(value: str | None, field: str) -> str | None:
    return None if value is None else value[: _LIMITS[field]]


class SQLWebhookLog:
    """Webhook records in ``ledger_webhook_log``.

    Args:
        engine: The ledger's engine.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, record: RecordLike) -> None:
        """Insert one row (its own short transaction)."""
        payload = record.payload
        if "\x00" in payload:  # PostgreSQL text cannot hold NUL; keep everything else
            payload = payload.replace("\x00", "\ufffd")
        row = {
            "payload": payload,
            "signature_valid": bool(record.signature_valid),
            "processing_result": _clip(record.processing_result, "processing_result"),
            "source_ip": _clip(record.source_ip, "source_ip"),
            "user_agent": _clip(record.user_agent, "user_agent"),
            "request_id": _clip(record.request_id, "request_id"),
            "event_id": _clip(record.event_id, "event_id"),
            "event_type": _clip(record.event_type, "event_type"),
            "received_at": record.received_at,
        }
        with self.engine.begin() as connection:
            connection.execute(sa.insert(WebhookLogRow), row)

    def processed_successfully(self, event_id: str) -> bool:
        """Whether a delivery of ``event_id`` was recorded ``ok``."""
        query = sa.select(sa.literal(1)).where(
            WebhookLogRow.event_id == event_id, WebhookLogRow.processing_result == "ok"
        )
        with self.engine.begin() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def invalid_signatures_since(self, since: dt.datetime) -> int:
        """Deliveries with an invalid signature since ``since`` (uses the partial index)."""
        query = sa.select(sa.func.count()).where(
            WebhookLogRow.signature_valid.is_(False), WebhookLogRow.received_at >= since
        )
        with self.engine.begin() as connection:
            return int(connection.execute(query).scalar_one())

    def recent(self, limit: int = 50, *, invalid_only: bool = False) -> list[WebhookLogRow]:
        """The newest rows (for an admin page)."""
        query = sa.select(WebhookLogRow).order_by(WebhookLogRow.received_at.desc()).limit(limit)
        if invalid_only:
            query = query.where(WebhookLogRow.signature_valid.is_(False))
        with sa.orm.Session(self.engine) as session:
            return list(session.scalars(query))
