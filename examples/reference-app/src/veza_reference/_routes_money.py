"""Orders, refunds, the Hyperswitch webhook, subscriptions and the distribution gate.

The money steps are veza-ledger's (:mod:`veza_ledger.flows`), not spelled out here:
``start_payment`` writes the order first with the provider id the client derives
(``payment_id_for``, its namespace included) and then calls the provider with the
order's id as the key; ``start_refund`` writes the refund row inside what is left,
records ``refund_id_for(row id)`` on it, and only then calls the provider, so a lost
response still leaves the provider's id on the row. The seller's transfer is queued
from ``seller_share`` (the webhook handlers). Everything after that (webhooks, polling,
transfers, reversals) is the ledger's and its workers'.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Header, Path as PathParam, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from veza_ledger import EligibilityReason
from veza_ledger.errors import RecordNotFoundError
from veza_ledger.flows import start_payment, start_refund
from veza_ledger.models import Order
from veza_reference._access import Access
from veza_reference._auth import Admin, User
from veza_reference._db import Purchase, Track
from veza_reference._errors import ClientError
from veza_reference._routes_media import get_track
from veza_reference._services import Services
from veza_reference._sessions import Principal
from veza_reference._webhooks import PLATFORM

Id = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PLANS = {"creator": 999, "pro": 1999}
FEE_PERCENT = 15


class OrderRequest(BaseModel):
    """Buy a track."""

    track_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class RefundRequest(BaseModel):
    """Refund all of an order (no amount) or part of it."""

    amount: int | None = Field(default=None, gt=0, le=10**9)
    reason: str | None = Field(default=None, max_length=200)


class SubscriptionRequest(BaseModel):
    """Subscribe the caller to a plan (``pending_payment`` until the payment webhook)."""

    plan: Literal["creator", "pro"]


def _order_json(services: Services, order_id: str) -> dict[str, Any]:
    order = services.ledger.orders.get(order_id)
    with Session(services.engine) as session:
        purchase = session.get(Purchase, order_id)
    return {
        "order_id": order.id,
        # which track this order buys (None for an order that is not a track purchase)
        "track_id": purchase.track_id if purchase is not None else None,
        "buyer_id": order.buyer_id,
        "seller_id": order.seller_id,
        "status": order.status,
        "amount": order.amount,
        "currency": order.currency,
        "captured": order.captured_amount,
        "refunded": order.refunded_amount,
        "payment_id": order.psp_payment_id,
        "refunds": [
            {
                "refund_id": r.id,
                "amount": r.amount,
                "status": r.status,
                "provider_refund_id": r.hyperswitch_refund_id,
            }
            for r in services.ledger.refunds.of_order(order.id)
        ],
        "transfers": [
            {
                "transfer_id": t.id,
                "status": t.status,
                "amount": t.amount,
                "reversed": t.reversed_amount,
            }
            for t in services.ledger.transfers.of_order(order.id)
        ],
    }


def _pay(
    services: Services,
    *,
    order_id: str,
    buyer_id: str,
    seller_id: str,
    amount: int,
    fee: int,
    description: str,
) -> dict[str, Any]:
    started = start_payment(
        services.ledger,
        services.hyperswitch,
        order_id=order_id,
        buyer_id=buyer_id,
        seller_id=seller_id,
        amount=amount,
        currency="EUR",
        fee_amount=fee,
        description=description,
        return_url=f"{services.public_url}/",
    )
    payment = started.payment
    return {
        "order_id": order_id,
        "payment_id": payment.payment_id,
        "status": payment.status,
        "client_secret": payment.client_secret,
        "amount": amount,
        "currency": "EUR",
    }


def order_id_for_key(user_id: str, key: str) -> str:
    """The order id one caller's ``Idempotency-Key`` stands for (another caller's differs)."""
    return hashlib.sha256(f"order\x00{user_id}\x00{key}".encode()).hexdigest()[:32]


def _may_see(principal: Principal, buyer_id: str, seller_id: str) -> bool:
    return principal.is_admin or principal.user_id in (buyer_id, seller_id)


def _self_or_admin(principal: Principal, user_id: str) -> None:
    if not principal.is_admin and principal.user_id != user_id:
        raise ClientError(403, "only this user (or an admin) may see or do this")


def build_router(services: Services, access: Access) -> APIRouter:
    """The money routes."""
    router = APIRouter()
    _order_routes(router, services, access)
    _account_routes(router, services)
    _sandbox_routes(router, services)
    return router


def _order_routes(router: APIRouter, services: Services, access: Access) -> None:
    """Orders and refunds: each visible to its buyer, its seller and admins."""

    def visible_order(principal: Principal, order_id: str) -> Order:
        order = services.ledger.orders.get(order_id)
        if not _may_see(principal, order.buyer_id, order.seller_id):
            raise ClientError(403, "this order belongs to other accounts")
        return order

    @router.post("/api/v1/orders", status_code=201, tags=["orders"])
    def create_order(
        request: OrderRequest,
        principal: User,
        idempotency_key: Annotated[
            str | None,
            Header(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
        ] = None,
    ) -> dict[str, Any]:
        """Order a track for the caller: the ledger row first, then the payment.

        With an ``Idempotency-Key`` header (the demo page sends one per click), the
        order's id is derived from the caller and the key: the same request again
        answers the same order and payment instead of making a second one. Without
        it, every request is a new order.
        """
        track = get_track(services, request.track_id)
        fee = track.price * FEE_PERCENT // 100
        order_id = (
            order_id_for_key(principal.user_id, idempotency_key)
            if idempotency_key is not None
            else uuid.uuid4().hex
        )
        access.record_purchase(order_id, track.id, principal.user_id)
        return _pay(
            services,
            order_id=order_id,
            buyer_id=principal.user_id,
            seller_id=track.owner_id,
            amount=track.price,
            fee=fee,
            description=f"track {track.title}",
        )

    @router.get("/api/v1/orders", tags=["orders"])
    def my_orders(principal: User) -> list[dict[str, Any]]:
        """The caller's track orders, bought and sold, newest 100 (admins: everyone's)."""
        query = (
            sa.select(Purchase, Track.title, Track.owner_id)
            .join(Track, Track.id == Purchase.track_id)
            .order_by(Purchase.order_id)
            .limit(100)
        )
        if not principal.is_admin:
            query = query.where(
                sa.or_(Purchase.buyer_id == principal.user_id, Track.owner_id == principal.user_id)
            )
        with Session(services.engine) as session:
            rows = session.execute(query).all()
        answer: list[dict[str, Any]] = []
        for purchase, title, owner_id in rows:
            order = services.ledger.orders.get(purchase.order_id)
            answer.append(
                {
                    "order_id": order.id,
                    "track_id": purchase.track_id,
                    "track_title": title,
                    "buyer_id": order.buyer_id,
                    "seller_id": owner_id,
                    "status": order.status,
                    "amount": order.amount,
                    "currency": order.currency,
                    "created_at": order.created_at.isoformat(),
                }
            )
        answer.sort(key=lambda o: o["created_at"], reverse=True)
        return answer

    @router.get("/api/v1/orders/{order_id}", tags=["orders"])
    def get_order(order_id: Id, principal: User) -> dict[str, Any]:
        """An order, its refunds and its seller transfer (its buyer, seller and admins)."""
        visible_order(principal, order_id)
        return _order_json(services, order_id)

    @router.post("/api/v1/orders/{order_id}/refunds", status_code=201, tags=["orders"])
    def refund(order_id: Id, request: RefundRequest, principal: User) -> dict[str, Any]:
        """Refund (part of) an order: its seller or an admin; the row first, then the PSP."""
        order = visible_order(principal, order_id)
        if not principal.is_admin and principal.user_id != order.seller_id:
            raise ClientError(403, "only the order's seller (or an admin) refunds it")
        started = start_refund(
            services.ledger,
            services.hyperswitch,
            order_id=order.id,
            amount=request.amount,
            reason=request.reason,
        )
        row, result = started.row, started.provider_refund
        return {
            "refund_id": row.id,
            "amount": row.amount,
            "status": row.status,
            "provider_refund_id": row.hyperswitch_refund_id,
            "provider_status": result.status,
        }


def _account_routes(router: APIRouter, services: Services) -> None:
    """The Hyperswitch webhook, subscriptions and distribution eligibility."""

    @router.post("/webhooks/hyperswitch", tags=["webhooks"], include_in_schema=False)
    async def hyperswitch_webhook(request: Request) -> Response:
        """Hyperswitch's deliveries: verified, logged once, deduplicated, applied.

        ``WebhookIntake.ahandle_stream`` reads the body with the intake's limit (a
        declared ``Content-Length`` above it is refused before a byte is read, and the
        refusal is recorded in the webhook log like any delivery); verification and the
        ledger's work run in a worker thread, never on the event loop.
        """
        peer = request.client.host if request.client else None
        outcome = await services.intake.ahandle_stream(
            request.headers.items(), request.stream(), source_ip=peer
        )
        services.metrics.webhooks.labels(str(outcome.status)).inc()
        return Response(outcome.body, status_code=outcome.status, media_type="application/json")

    @router.post("/api/v1/subscriptions", status_code=201, tags=["subscriptions"])
    def subscribe(request: SubscriptionRequest, principal: User) -> dict[str, Any]:
        """Subscribe the caller: ``pending_payment`` until the payment webhook activates it."""
        amount = PLANS[request.plan]
        paid = _pay(
            services,
            order_id=uuid.uuid4().hex,
            buyer_id=principal.user_id,
            seller_id=PLATFORM,
            amount=amount,
            fee=amount,
            description=f"{request.plan} plan",
        )
        subscription = services.ledger.subscriptions.create(
            user_id=principal.user_id, plan=request.plan, order_id=paid["order_id"]
        )
        return {
            **paid,
            "subscription_id": subscription.id,
            "subscription_status": subscription.status,
        }

    @router.get("/api/v1/users/{user_id}/distribution", tags=["subscriptions"])
    def eligibility(user_id: Id, principal: User) -> dict[str, Any]:
        """May this user distribute? With the ledger's reason (the user or an admin)."""
        _self_or_admin(principal, user_id)
        answer = services.ledger.subscriptions.distribution_eligibility(user_id)
        return {
            "eligible": answer.eligible,
            "reason": answer.reason.value,
            "message": answer.message,
            "subscription_id": answer.subscription_id,
        }

    @router.post("/api/v1/users/{user_id}/distribution", status_code=202, tags=["subscriptions"])
    def distribute(user_id: Id, principal: User) -> dict[str, Any]:
        """Start a distribution: 403 with the reason when the user may not."""
        _self_or_admin(principal, user_id)
        answer = services.ledger.subscriptions.distribution_eligibility(user_id)
        if not answer.eligible:
            status = 402 if answer.reason is EligibilityReason.PAYMENT_INCOMPLETE else 403
            raise ClientError(status, answer.message)
        return {"accepted": True, "message": "distribution queued"}


def _sandbox_routes(router: APIRouter, services: Services) -> None:
    """The sandbox's stand-ins for the buyer's browser and the connector."""
    if services.sandbox is not None:
        sandbox = services.sandbox

        @router.post("/api/v1/sandbox/payments/{payment_id}/confirm", tags=["sandbox"])
        def confirm(
            payment_id: Id,
            principal: User,
            outcome: Annotated[Literal["succeeded", "failed"], Query()] = "succeeded",
        ) -> dict[str, Any]:
            """Sandbox only: what the buyer's browser does with the client secret."""
            if payment_id not in sandbox.hyperswitch.payments:
                raise ClientError(404, f"no sandbox payment {payment_id!r}")
            try:
                order = services.ledger.orders.by_payment_id(payment_id)
            except RecordNotFoundError:
                raise ClientError(404, f"no order for payment {payment_id!r}") from None
            if not principal.is_admin and principal.user_id != order.buyer_id:
                raise ClientError(403, "only the order's buyer pays it")
            payment = sandbox.confirm_payment(payment_id, succeed=outcome == "succeeded")
            return {"payment_id": payment_id, "status": payment["status"]}

        @router.post("/api/v1/sandbox/refunds/{refund_id}/settle", tags=["sandbox"])
        def settle(
            refund_id: Id,
            _admin: Admin,
            outcome: Annotated[Literal["succeeded", "failed"], Query()] = "succeeded",
        ) -> dict[str, Any]:
            """Sandbox only (admins): the connector settles a pending refund."""
            if refund_id not in sandbox.hyperswitch.refunds:
                raise ClientError(404, f"no sandbox refund {refund_id!r}")
            refund = sandbox.settle_refund(refund_id, succeed=outcome == "succeeded")
            return {"refund_id": refund_id, "status": refund["status"]}
