"""Durable findings: upsert by fingerprint, resolve when the problem is gone, suppress.

A finding's fingerprint is ``rule:object_type:object_id``. Re-running a sweep updates the
same row (``last_seen``, ``occurrences``, the newest evidence) instead of adding one; a
suppressed finding stays suppressed (with its reason) while the problem persists; a
problem that went away is ``resolved`` by the next sweep that examines the object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from veza_ledger._base import Service
from veza_ledger._errors import LedgerConfigurationError, RecordNotFoundError
from veza_ledger._schema import Finding

MAX_SUMMARY = 500


def fingerprint(rule: str, object_type: str, object_id: str) -> str:
    """The identity of a finding."""
    return f"{rule}:{object_type}:{object_id}"[:200]


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def finding_values(
    *,
    rule: str,
    object_type: str,
    object_id: str,
    severity: str,
    summary: str,
    evidence: Mapping[str, Any],
    proposed_action: str | None,
    applied_action: str | None,
    now: dt.datetime,
    resolved: bool = False,
) -> dict[str, Any]:
    """One finding row, ready for :func:`upsert_findings`.

    ``resolved=True`` records a problem the sweep just fixed: kept as a record, with its
    evidence, already resolved.
    """
    return {
        "fingerprint": fingerprint(rule, object_type, object_id),
        "rule": rule,
        "object_type": object_type,
        "object_id": object_id,
        "severity": severity,
        "status": "resolved" if resolved else "open",
        "resolved_at": now if resolved else None,
        "summary": summary[:MAX_SUMMARY],
        "evidence": _jsonable(evidence),
        "proposed_action": proposed_action,
        "applied_action": applied_action,
        "occurrences": 1,
        "first_seen": now,
        "last_seen": now,
    }


def upsert_findings(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert findings, or update those with the same fingerprint (one statement).

    An update keeps ``first_seen``, counts the occurrence, takes the newest evidence,
    and keeps a suppressed finding suppressed unless this sweep fixed it.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Finding).values(rows)
    table = Finding.__table__
    statement = statement.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={
            "severity": statement.excluded.severity,
            "summary": statement.excluded.summary,
            "evidence": statement.excluded.evidence,
            "proposed_action": statement.excluded.proposed_action,
            "applied_action": statement.excluded.applied_action,
            "last_seen": statement.excluded.last_seen,
            "occurrences": table.c.occurrences + 1,
            "status": sa.case(
                (statement.excluded.status == "resolved", "resolved"),
                (table.c.status == "suppressed", "suppressed"),
                else_="open",
            ),
            "resolved_at": statement.excluded.resolved_at,
        },
    )
    session.execute(statement)


def upsert_finding(  # the keywords of finding_values, spelled out for the type checker
    session: Session,
    *,
    rule: str,
    object_type: str,
    object_id: str,
    severity: str,
    summary: str,
    evidence: Mapping[str, Any],
    proposed_action: str | None,
    applied_action: str | None,
    now: dt.datetime,
    resolved: bool = False,
) -> None:
    """:func:`upsert_findings` for one finding (the fields of :func:`finding_values`)."""
    upsert_findings(
        session,
        [
            finding_values(
                rule=rule,
                object_type=object_type,
                object_id=object_id,
                severity=severity,
                summary=summary,
                evidence=evidence,
                proposed_action=proposed_action,
                applied_action=applied_action,
                now=now,
                resolved=resolved,
            )
        ],
    )


def resolve_findings(
    session: Session, *, rule: str, object_type: str, object_ids: list[str], now: dt.datetime
) -> int:
    """Resolve the open (or suppressed) findings of these objects; how many there were."""
    if not object_ids:
        return 0
    result = session.execute(
        sa.update(Finding)
        .where(
            Finding.fingerprint.in_([fingerprint(rule, object_type, i) for i in object_ids]),
            Finding.status.in_(("open", "suppressed")),
        )
        .values(status="resolved", resolved_at=now, last_seen=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def resolve_finding(
    session: Session, *, rule: str, object_type: str, object_id: str, now: dt.datetime
) -> bool:
    """Mark an open (or suppressed) finding resolved; whether there was one."""
    result = session.execute(
        sa.update(Finding)
        .where(
            Finding.fingerprint == fingerprint(rule, object_type, object_id),
            Finding.status.in_(("open", "suppressed")),
        )
        .values(status="resolved", resolved_at=now, last_seen=now)
    )
    return bool(getattr(result, "rowcount", 0))


def open_finding_objects(session: Session, rule: str, limit: int) -> list[str]:
    """Object ids with an open finding for ``rule`` (re-examined so they can resolve)."""
    return list(
        session.scalars(
            sa.select(Finding.object_id)
            .where(Finding.rule == rule, Finding.status.in_(("open", "suppressed")))
            .order_by(Finding.object_id)
            .limit(limit)
        )
    )


class Reconciliation(Service):
    """Reconciliation findings and their suppression (``ledger.reconciliation``)."""

    def findings(
        self, *, status: str | None = None, rule: str | None = None, limit: int = 500
    ) -> list[Finding]:
        """Reconciliation findings, most recently seen first."""
        query = sa.select(Finding).order_by(Finding.last_seen.desc(), Finding.id.desc())
        if status is not None:
            query = query.where(Finding.status == status)
        if rule is not None:
            query = query.where(Finding.rule == rule)
        with self._transaction() as session:
            return list(session.scalars(query.limit(limit)))

    def suppress(self, finding_id: int, *, reason: str, actor: str) -> Finding:
        """Silence a known finding (kept, with who and why; it resolves when fixed)."""
        if not reason.strip() or not actor.strip():
            msg = "suppressing a finding needs a reason and an actor"
            raise LedgerConfigurationError(msg)
        with self._transaction() as session:
            finding = session.get(Finding, finding_id)
            if finding is None:
                msg = f"no finding {finding_id}"
                raise RecordNotFoundError(msg)
            finding.status = "suppressed"
            finding.suppressed_reason = reason.strip()[:500]
            finding.suppressed_by = actor.strip()[:128]
            return finding
