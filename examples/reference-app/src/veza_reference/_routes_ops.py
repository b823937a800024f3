"""Admin routes (admin role or bearer token), WebRTC configuration, metrics, health."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path as PathParam, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from veza_ledger import (
    RULES,
    JournalEntry,
    JournalTransaction,
    Order,
    SchemaOutOfDateError,
    check_schema,
    retry_transfer_now,
    run_sweep,
)
from veza_reference._auth import Admin, TooManyRequestsError, User, actor, role_required
from veza_reference._errors import ClientError
from veza_reference._services import Services
from veza_reference._users import Role
from veza_webrtc import ICE_CACHE_CONTROL


def _known_rule(name: str) -> str:
    if name not in RULES:
        msg = f"unknown rule {name!r}"
        raise ValueError(msg)
    return name


RuleName = Annotated[
    str,
    AfterValidator(_known_rule),
    WithJsonSchema({"type": "string", "enum": list(RULES)}),
]
"""One of veza-ledger's reconciliation rules, by name (an enum in the OpenAPI schema)."""


class ReconcileRequest(BaseModel):
    """Run the reconciliation rules once."""

    dry_run: bool = True
    rules: list[RuleName] | None = None


class TransitionRequest(BaseModel):
    """Force a row to a status (audited)."""

    machine: Literal["order", "refund", "transfer", "payout", "subscription"]
    object_id: str = Field(min_length=1, max_length=64)
    to_status: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=3, max_length=1000)


def build_router(services: Services) -> APIRouter:
    """The admin and operations routes."""
    router = APIRouter()
    admin = role_required(Role.ADMIN)
    guarded = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(admin)])
    _ledger_admin_routes(guarded, services)
    _operations_admin_routes(guarded, services)
    router.include_router(guarded)
    _service_routes(router, services)
    return router


def _ledger_admin_routes(guarded: APIRouter, services: Services) -> None:
    """Findings, reconciliation, forced transitions and transfer retries (admin only)."""

    @guarded.get("/findings")
    def findings(
        status: Annotated[Literal["open", "resolved", "suppressed"] | None, Query()] = None,
        rule: Annotated[str | None, Query(max_length=64)] = None,
    ) -> list[dict[str, Any]]:
        """Reconciliation findings, most recent first."""
        return [
            f.as_dict() for f in services.ledger.reconciliation.findings(status=status, rule=rule)
        ]

    @guarded.post("/reconcile")
    def reconcile(request: ReconcileRequest) -> dict[str, Any]:
        """Run the rules now (``dry_run`` by default: propose, write nothing)."""
        report = run_sweep(
            services.ledger, services.provider_view, rules=request.rules, dry_run=request.dry_run
        )
        return report.as_dict()

    @guarded.post("/transitions")
    def force(request: TransitionRequest, principal: Admin) -> dict[str, Any]:
        """Force a transition with a reason (writes the audit row naming the admin)."""
        override = services.ledger.operator.force_transition(
            request.machine,
            request.object_id,
            to_status=request.to_status,
            reason=request.reason,
            actor=actor(principal, services),
        )
        return {
            "machine": override.machine,
            "object_id": override.object_id,
            "from": override.from_status,
            "to": override.to_status,
            "actor": override.actor,
        }

    @guarded.post("/transfers/{transfer_id}/retry")
    def retry(
        transfer_id: Annotated[str, PathParam(min_length=1, max_length=64)],
    ) -> dict[str, Any]:
        """Pay a pending or failed seller transfer now (same idempotency key)."""
        if services.stripe is None:
            raise ClientError(409, "Stripe Connect is not configured (STRIPE_SECRET_KEY)")
        transfer = retry_transfer_now(services.ledger, services.stripe, transfer_id=transfer_id)
        return {
            "transfer_id": transfer.id,
            "status": transfer.status,
            "stripe_transfer_id": transfer.stripe_transfer_id,
        }


def _operations_admin_routes(guarded: APIRouter, services: Services) -> None:
    """Upload reaping, the webhook log and the books at a glance (admin only)."""

    @guarded.post("/uploads/reap")
    def reap_uploads() -> dict[str, int]:
        """Remove expired upload sessions and their staged chunks now (also done at start-up).

        Schedule it (or ``veza-storage uploads reap``) where instances rarely restart:
        abandoned uploads keep their chunks, and S3 bills unfinished multipart parts.
        """
        return {"reaped": services.uploads.reap_expired()}

    @guarded.get("/webhooks")
    def webhooks(
        invalid_only: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[dict[str, Any]]:
        """The newest webhook log rows (``invalid_only``: attack attempts)."""
        return [
            {
                "id": r.id,
                "received_at": r.received_at.isoformat(),
                "event_type": r.event_type,
                "event_id": r.event_id,
                "signature_valid": r.signature_valid,
                "processing_result": r.processing_result,
                "source_ip": r.source_ip,
                "request_id": r.request_id,
            }
            for r in services.ledger.webhook_log.recent(limit, invalid_only=invalid_only)
        ]

    @guarded.get("/money")
    def money() -> dict[str, Any]:
        """The books at a glance: every account's balance and the money moved, by kind.

        ``balances`` is the journal's derived balance per account and currency (debits
        positive); ``flows`` sums each kind of journal transaction (``payment``,
        ``refund``, ``transfer``…) by currency: the debit side, i.e. the money that
        moved, with how many transactions; ``orders`` counts orders by status. Amounts
        are minor units with their currency, like everywhere in the API.
        """
        balances = [
            {"account": account, "currency": currency, "amount": amount}
            for (account, currency), amount in sorted(services.ledger.journal.balances().items())
        ]
        flows_query = (
            sa.select(
                JournalTransaction.kind,
                JournalEntry.currency,
                sa.func.sum(JournalEntry.amount),
                sa.func.count(sa.distinct(JournalTransaction.id)),
            )
            .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
            .where(JournalEntry.amount > 0)
            .group_by(JournalTransaction.kind, JournalEntry.currency)
            .order_by(JournalTransaction.kind, JournalEntry.currency)
        )
        orders_query = sa.select(Order.status, sa.func.count()).group_by(Order.status)
        with services.ledger.transaction() as session:
            flows = [
                {"kind": kind, "currency": currency, "amount": int(total), "count": int(count)}
                for kind, currency, total, count in session.execute(flows_query)
            ]
            orders = {status: int(count) for status, count in session.execute(orders_query)}
        return {"balances": balances, "flows": flows, "orders": orders}


def _service_routes(router: APIRouter, services: Services) -> None:
    """WebRTC configuration, metrics and the health probes."""

    @router.get("/api/v1/config/webrtc", tags=["calls"])
    def webrtc(
        response: Response,
        principal: User,
        user_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    ) -> dict[str, object]:
        """The caller's RTCConfiguration: TURN credentials for the logged-in user only.

        ``user_id`` may be given only as the caller's own id; the credentials are
        short-lived (``WEBRTC_TURN_TTL``, 10 minutes by default here), rate-limited per
        user, and never cached by a shared cache.
        """
        if user_id is not None and user_id != principal.user_id:
            raise ClientError(403, "TURN credentials are issued to the logged-in user only")
        wait = services.limits.turn.hit(principal.user_id)
        if wait is not None:
            raise TooManyRequestsError(wait, "too many TURN credential requests: wait a moment")
        response.headers["Cache-Control"] = ICE_CACHE_CONTROL
        return services.ice.to_response(user_id=principal.user_id)

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics: one registry, passed to every package."""
        return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process answers: its event loop runs.

        ``async`` on purpose: it does no I/O, so it answers on the event loop instead
        of waiting for one of the threadpool's threads (busy with uploads, SQL and
        webhooks under load) and for the GIL twice more on the way there and back.
        """
        return {"status": "ok"}

    @router.get("/readyz", tags=["ops"])
    def readyz(response: Response) -> dict[str, Any]:
        """Database, storage, ledger schema (and TURN, when configured) all usable.

        A sync route: FastAPI runs it in the threadpool, so the checks (the TURN probe
        included, at most ``timeout`` seconds and cached for ``ttl``) never block the
        event loop.
        """
        checks: dict[str, str] = {}
        try:
            with services.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            checks["database"] = f"failed: {type(exc).__name__}"
        try:
            services.storage.exists("healthz/probe")
            checks["storage"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any backend failure means not ready
            checks["storage"] = f"failed: {type(exc).__name__}"
        try:
            check_schema(services.engine)
            checks["ledger_schema"] = "ok"
        except (SchemaOutOfDateError, sa.exc.SQLAlchemyError) as exc:
            checks["ledger_schema"] = f"failed: {exc}"
        if services.ice_probe is not None:
            checks["turn"] = services.ice_probe.status()
        ready = all(v == "ok" for v in checks.values())
        response.status_code = 200 if ready else 503
        return {"ready": ready, "checks": checks}
