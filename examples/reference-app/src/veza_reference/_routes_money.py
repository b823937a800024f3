"""Orders, refunds, the Hyperswitch webhook, subscriptions and the distribution gate.

The order of operations is the point: the ledger row exists **before** the provider is
called, its id is the idempotency key, and the provider's id is derived from it (so it
is recorded before the call, and a webhook that beats the response still finds the
order). A refund row is created inside the captured amount first, then the PSP is
called with the row's id. Everything after that (webhooks, polling, transfers,
reversals) is the ledger's and its workers'.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from veza_ledger import EligibilityReason
from veza_payments import payment_id_for
from veza_reference._errors import ClientError
from veza_reference._routes_media import get_track
from veza_reference._services import Services
from veza_reference._webhooks import PLATFORM

Id = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PLANS = {"creator": 999, "pro": 1999}
FEE_PERCENT = 15


class OrderRequest(BaseModel):
    """Buy a track."""

    track_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    buyer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class RefundRequest(BaseModel):
    """Refund all of an order (no amount) or part of it."""

    amount: int | None = Field(default=None, gt=0, le=10**9)
    reason: str | None = Field(default=None, max_length=200)


class SubscriptionRequest(BaseModel):
    """Subscribe to a plan (it stays ``pending_payment`` until the payment webhook)."""

    user_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    plan: Literal["creator", "pro"]


def _order_json(services: Services, order_id: str) -> dict[str, Any]:
    order = services.ledger.order(order_id)
    return {
        "order_id": order.id,
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
            for r in services.ledger.refunds_of(order.id)
        ],
        "transfers": [
            {
                "transfer_id": t.id,
                "status": t.status,
                "amount": t.amount,
                "reversed": t.reversed_amount,
            }
            for t in services.ledger.transfers_of(order.id)
        ],
    }


def _pay(
    services: Services, *, buyer_id: str, seller_id: str, amount: int, fee: int, description: str
) -> dict[str, Any]:
    order_id = uuid.uuid4().hex
    namespace = services.hyperswitch.idempotency_namespace
    services.ledger.create_order(
        order_id=order_id,
        buyer_id=buyer_id,
        seller_id=seller_id,
        amount=amount,
        currency="EUR",
        fee_amount=fee,
        psp_payment_id=payment_id_for(order_id, namespace=namespace),
    )
    payment = services.hyperswitch.create_payment(
        order_id,
        amount=amount,
        currency="EUR",
        customer_id=buyer_id,
        description=description,
        metadata={"order_id": order_id},
        return_url=f"{services.public_url}/",
    )
    return {
        "order_id": order_id,
        "payment_id": payment.payment_id,
        "status": payment.status,
        "client_secret": payment.client_secret,
        "amount": amount,
        "currency": "EUR",
    }


def build_router(services: Services) -> APIRouter:
    """The money routes."""
    router = APIRouter()

    @router.post("/api/v1/orders", status_code=201, tags=["orders"])
    def create_order(request: OrderRequest) -> dict[str, Any]:
        """Order a track: the ledger row first, then the payment keyed by its id."""
        track = get_track(services, request.track_id)
        fee = track.price * FEE_PERCENT // 100
        return _pay(
            services,
            buyer_id=request.buyer_id,
            seller_id=track.owner_id,
            amount=track.price,
            fee=fee,
            description=f"track {track.title}",
        )

    @router.get("/api/v1/orders/{order_id}", tags=["orders"])
    def get_order(order_id: Id) -> dict[str, Any]:
        """An order, its refunds and its seller transfer."""
        return _order_json(services, order_id)

    @router.post("/api/v1/orders/{order_id}/refunds", status_code=201, tags=["orders"])
    def refund(order_id: Id, request: RefundRequest) -> dict[str, Any]:
        """Refund (part of) an order: the row inside the cap first, then the PSP call."""
        order = services.ledger.order(order_id)
        row = services.ledger.create_refund(order.id, request.amount, reason=request.reason)
        result = services.hyperswitch.create_refund(
            row.id, payment_id=order.psp_payment_id or "", amount=row.amount, reason=request.reason
        )
        services.ledger.set_refund_provider_id(row.id, result.refund_id)
        return {
            "refund_id": row.id,
            "amount": row.amount,
            "status": row.status,
            "provider_refund_id": result.refund_id,
            "provider_status": result.status,
        }

    @router.post("/webhooks/hyperswitch", tags=["webhooks"], include_in_schema=False)
    async def hyperswitch_webhook(request: Request) -> Response:
        """Hyperswitch's deliveries: verified, logged once, deduplicated, applied."""
        body = await request.body()
        peer = request.client.host if request.client else None
        outcome = services.intake.handle(request.headers.items(), body, peer)
        services.metrics.webhooks.labels(str(outcome.status)).inc()
        return Response(outcome.body, status_code=outcome.status, media_type="application/json")

    @router.post("/api/v1/subscriptions", status_code=201, tags=["subscriptions"])
    def subscribe(request: SubscriptionRequest) -> dict[str, Any]:
        """Subscribe: ``pending_payment`` until the payment webhook activates it."""
        amount = PLANS[request.plan]
        paid = _pay(
            services,
            buyer_id=request.user_id,
            seller_id=PLATFORM,
            amount=amount,
            fee=amount,
            description=f"{request.plan} plan",
        )
        subscription = services.ledger.create_subscription(
            user_id=request.user_id, plan=request.plan, order_id=paid["order_id"]
        )
        return {
            **paid,
            "subscription_id": subscription.id,
            "subscription_status": subscription.status,
        }

    @router.get("/api/v1/users/{user_id}/distribution", tags=["subscriptions"])
    def eligibility(user_id: Id) -> dict[str, Any]:
        """May this user distribute? With the ledger's reason."""
        answer = services.ledger.distribution_eligibility(user_id)
        return {
            "eligible": answer.eligible,
            "reason": answer.reason.value,
            "message": answer.message,
            "subscription_id": answer.subscription_id,
        }

    @router.post("/api/v1/users/{user_id}/distribution", status_code=202, tags=["subscriptions"])
    def distribute(user_id: Id) -> dict[str, Any]:
        """Start a distribution: 403 with the reason when the user may not."""
        answer = services.ledger.distribution_eligibility(user_id)
        if not answer.eligible:
            status = 402 if answer.reason is EligibilityReason.PAYMENT_INCOMPLETE else 403
            raise ClientError(status, answer.message)
        return {"accepted": True, "message": "distribution queued"}

    if services.sandbox is not None:
        sandbox = services.sandbox

        @router.post("/api/v1/sandbox/payments/{payment_id}/confirm", tags=["sandbox"])
        def confirm(
            payment_id: Id,
            outcome: Annotated[Literal["succeeded", "failed"], Query()] = "succeeded",
        ) -> dict[str, Any]:
            """Sandbox only: what the customer's browser does with the client secret."""
            if payment_id not in sandbox.hyperswitch.payments:
                raise ClientError(404, f"no sandbox payment {payment_id!r}")
            payment = sandbox.confirm_payment(payment_id, succeed=outcome == "succeeded")
            return {"payment_id": payment_id, "status": payment["status"]}

        @router.post("/api/v1/sandbox/refunds/{refund_id}/settle", tags=["sandbox"])
        def settle(
            refund_id: Id, outcome: Annotated[Literal["succeeded", "failed"], Query()] = "succeeded"
        ) -> dict[str, Any]:
            """Sandbox only: the connector settles a pending refund (no webhook for pending)."""
            if refund_id not in sandbox.hyperswitch.refunds:
                raise ClientError(404, f"no sandbox refund {refund_id!r}")
            refund = sandbox.settle_refund(refund_id, succeed=outcome == "succeeded")
            return {"refund_id": refund_id, "status": refund["status"]}

    return router
