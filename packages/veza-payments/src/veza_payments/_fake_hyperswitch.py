"""The Hyperswitch fake (see :mod:`veza_payments.testing`)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import httpx

from veza_payments._compat import positional_deprecated
from veza_payments._fakeserver import FakeServer, Fault, Request, Response, counter
from veza_payments._signatures import SIGNATURE_HEADER, sign_payload

__all__ = ["FakeHyperswitch"]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ID_FORMAT = "at most 64 characters of [A-Za-z0-9_-]"


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hs_error(status: int, kind: str, code: str, message: str, **extra: object) -> Response:
    return Response(status, {"error": {"type": kind, "message": message, "code": code, **extra}})


def _busy() -> Response:
    return _hs_error(422, "invalid_request", "HE_00", "Resource is busy, please try again later")


def _no_payment() -> Response:
    return _hs_error(404, "invalid_request", "HE_02", "Payment does not exist in our records")


def _invalid_format(field: str, expected: str) -> Response:
    """``InvalidDataFormat``: 422 ``IR_05`` in the router (not 400)."""
    return _hs_error(
        422,
        "invalid_request",
        "IR_05",
        f"{field} contains invalid data. Expected format is {expected}",
    )


def _invalid_data(message: str) -> Response:
    """``InvalidRequestData``: 422 ``IR_06`` in the router (not 400)."""
    return _hs_error(422, "invalid_request", "IR_06", message)


def _unexpected_state(flow: str, status: str, states: str) -> Response:
    """``PaymentUnexpectedState``: 400 ``IR_14``."""
    return _hs_error(
        400,
        "invalid_request",
        "IR_14",
        f"This Payment could not be {flow} because it has a status of {status}. "
        f"The expected state is {states}",
    )


CAPTURABLE = frozenset(
    {
        "requires_capture",
        "partially_captured_and_capturable",
        "partially_authorized_and_requires_capture",
    }
)
CANCELLABLE = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_capture",
        "requires_customer_action",
        "partially_captured_and_capturable",
    }
)
REFUNDABLE = frozenset({"succeeded", "partially_captured"})


class FakeHyperswitch(FakeServer):
    """A Hyperswitch v1 stand-in: payments, capture, cancel, refunds, webhooks.

    Args:
        api_key: The key requests must carry in ``api-key``.
        busy_for: Seconds each payment write holds the payment's lock (so concurrent
            requests meet ``422 HE_00``, as with the real router).
        refund_status: Status new refunds get (``succeeded`` or ``pending``).
        merchant_id: Used in webhook bodies.
        rate_limit_faults: Allow injected 429 faults. The router itself never answers
            429; one only comes from a gateway in front of it, so it is opt-in.

    Attributes:
        payments: Stored payment objects by id (the provider's truth).
        refunds: Stored refund objects by id.
        blocked_message: The blocklist's message and ``blocked_reason`` its reason (the
            router's by default; tests vary them so detection is proven to rest on the
            error type, not on the wording).
        blocked_customers: Customer ids whose confirmed payments are blocked (HTTP 200
            with an error body, payment stored as failed).
        deliveries: ``(event_type, status)`` of webhooks sent.
    """

    def __init__(
        self,
        api_key: str = "snd_fake_key",
        *,
        busy_for: float = 0.0,
        refund_status: str = "succeeded",
        merchant_id: str = "merchant_veza_fake",
        rate_limit_faults: bool = False,
    ) -> None:
        super().__init__()
        self.rate_limit_faults = rate_limit_faults
        self.api_key = api_key
        self.busy_for = busy_for
        self.refund_status = refund_status
        self.merchant_id = merchant_id
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.blocked_customers: set[str] = set()
        self.blocked_message = "This payment method is blocked"
        self.blocked_reason = "Blocked"
        self.deliveries: list[tuple[str, int]] = []
        self._busy: set[str] = set()
        self._next = counter()

    # ------------------------------------------------------------------ plumbing

    def extra_headers(self) -> dict[str, str]:
        """Every response carries an ``x-request-id``."""
        return {"x-request-id": str(uuid.uuid4())}

    def inject(self, *faults: Fault) -> None:
        """Queue faults (a 429 only with ``rate_limit_faults=True``: the router sends none).

        Raises:
            ValueError: A 429 fault on a fake built without ``rate_limit_faults``.
        """
        if not self.rate_limit_faults and any(
            f.kind == "status" and f.status == 429 for f in faults
        ):
            msg = "the Hyperswitch router never answers 429; pass rate_limit_faults=True"
            raise ValueError(msg)
        super().inject(*faults)

    def error_for_fault(self, fault: Fault) -> Response:
        """Hyperswitch-shaped answers for injected statuses."""
        if fault.status == 422:
            return _busy()
        if fault.status == 429:
            return _hs_error(429, "invalid_request", "RE_00", "Too many requests")
        if fault.status >= 502:
            return Response(fault.status, b"<html><body>Bad Gateway</body></html>")
        return _hs_error(fault.status, "api", "HE_00", "Something went wrong")

    def _claim(self, resource: str) -> bool:
        with self.lock:
            if resource in self._busy:
                return False
            self._busy.add(resource)
            return True

    def _release(self, resource: str) -> None:
        if self.busy_for:
            time.sleep(self.busy_for)
        with self.lock:
            self._busy.discard(resource)

    def route(self, request: Request) -> Response:
        """Dispatch one request."""
        if request.headers.get("api-key") != self.api_key:
            return _hs_error(
                401, "invalid_request", "IR_01", "API key not provided or invalid API key used"
            )
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        body: Any = None
        if request.method == "POST":
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return _invalid_data("Json deserialize error: expected a JSON object")
        match request.method, parts:
            case "POST", ["payments"]:
                return self._create_payment(body)
            case "GET", ["payments", payment_id]:
                return self._get(self.payments, payment_id, "Payment")
            case "POST", ["payments", payment_id, "capture"]:
                return self._capture(payment_id, body)
            case "POST", ["payments", payment_id, "cancel"]:
                return self._cancel(payment_id, body)
            case "POST", ["refunds"]:
                return self._create_refund(body)
            case "GET", ["refunds", refund_id]:
                return self._get(self.refunds, refund_id, "Refund")
        return _hs_error(404, "invalid_request", "IR_02", "Unrecognized request URL")

    def _get(self, store: dict[str, dict[str, Any]], key: str, what: str) -> Response:
        with self.lock:
            obj = store.get(key)
            if obj is None:
                return _hs_error(
                    404, "invalid_request", "HE_02", f"{what} does not exist in our records"
                )
            return Response(200, dict(obj))

    # ------------------------------------------------------------------ payments

    def _create_payment(self, body: dict[str, Any]) -> Response:
        amount, currency = body.get("amount"), body.get("currency")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _invalid_format("amount", "positive integer")
        if not isinstance(currency, str) or len(currency) != 3:
            return _hs_error(400, "invalid_request", "IR_04", "Missing required param: currency")
        payment_id = body.get("payment_id") or f"pay_{uuid.uuid4().hex[:20]}"
        if not isinstance(payment_id, str) or not _ID.match(payment_id):
            return _invalid_format("payment_id", ID_FORMAT)
        if not self._claim(payment_id):
            return _busy()
        try:
            with self.lock:
                if payment_id in self.payments:
                    return _hs_error(
                        400,
                        "invalid_request",
                        "HE_01",
                        "The payment with the specified payment_id already exists in our records",
                        reason=f"{payment_id} already exists",
                    )
                confirm = bool(body.get("confirm"))
                manual = body.get("capture_method") in ("manual", "manual_multiple")
                blocked = confirm and body.get("customer_id") in self.blocked_customers
                status = (
                    ("failed" if blocked else "requires_capture" if manual else "succeeded")
                    if confirm
                    else "requires_payment_method"
                )
                payment = {
                    "payment_id": payment_id,
                    "merchant_id": self.merchant_id,
                    "status": status,
                    "amount": amount,
                    "currency": currency.upper(),
                    "amount_capturable": amount if status == "requires_capture" else 0,
                    "amount_received": amount if status == "succeeded" else None,
                    "customer_id": body.get("customer_id"),
                    "description": body.get("description"),
                    "metadata": body.get("metadata"),
                    "connector": "stripe_test" if confirm else None,
                    "capture_method": body.get("capture_method") or "automatic",
                    "client_secret": f"{payment_id}_secret_{uuid.uuid4().hex[:20]}",
                    "return_url": body.get("return_url"),
                    "created": _now_iso(),
                    "error_code": "HE_03" if blocked else None,
                    "error_message": self.blocked_message if blocked else None,
                }
                self.payments[payment_id] = payment
            if blocked:
                # The blocklist answers HTTP 200 with an error body (DomainError).
                return _hs_error(
                    200, "blocked", "HE_03", self.blocked_message, reason=self.blocked_reason
                )
            return Response(200, dict(payment))
        finally:
            self._release(payment_id)

    def _on_payment(self, payment_id: str, apply: Callable[[dict[str, Any]], Response]) -> Response:
        """Run ``apply`` on the stored payment, holding its lock (busy: ``422 HE_00``)."""
        if not self._claim(payment_id):
            return _busy()
        try:
            with self.lock:
                payment = self.payments.get(payment_id)
                return _no_payment() if payment is None else apply(payment)
        finally:
            self._release(payment_id)

    def _capture(self, payment_id: str, body: dict[str, Any]) -> Response:
        def capture(payment: dict[str, Any]) -> Response:
            if payment["status"] not in CAPTURABLE:
                return _unexpected_state(
                    "captured",
                    payment["status"],
                    "requires_capture, partially_captured_and_capturable, processing",
                )
            amount = body.get("amount_to_capture", payment["amount_capturable"])
            if (
                not isinstance(amount, int)
                or isinstance(amount, bool)
                or not 0 < amount <= payment["amount_capturable"]
            ):
                return _invalid_data("amount_to_capture is greater than amount_capturable")
            received = int(payment["amount_received"] or 0) + amount
            left = payment["amount"] - received
            if left == 0:
                status = "succeeded"
            elif payment["capture_method"] == "manual_multiple":
                status = "partially_captured_and_capturable"
            else:
                status, left = "partially_captured", 0
            payment.update(status=status, amount_received=received, amount_capturable=left)
            return Response(200, dict(payment))

        return self._on_payment(payment_id, capture)

    def _cancel(self, payment_id: str, body: dict[str, Any]) -> Response:
        def cancel(payment: dict[str, Any]) -> Response:
            if payment["status"] not in CANCELLABLE:
                return _hs_error(
                    400,
                    "invalid_request",
                    "IR_16",
                    f"You cannot cancel this payment because it has status {payment['status']}",
                )
            payment.update(
                status="cancelled",
                amount_capturable=0,
                cancellation_reason=body.get("cancellation_reason"),
            )
            return Response(200, dict(payment))

        return self._on_payment(payment_id, cancel)

    # ------------------------------------------------------------------ refunds

    def _create_refund(self, body: dict[str, Any]) -> Response:
        """The router's order of checks (``refund_create_core``, ``validate_and_create_refund``).

        Request shape first (422 ``IR_05``), then the payment (404 ``HE_02``, 400
        ``IR_14`` unless it succeeded), then the amount against what is left (400
        ``IR_13``), and only then the insert whose unique violation is 400 ``HE_01``. So
        a repeated refund that exhausts the payment answers ``IR_13``, not ``HE_01``.
        """
        payment_id = body.get("payment_id")
        if not isinstance(payment_id, str) or not payment_id:
            return _hs_error(400, "invalid_request", "IR_04", "Missing required param: payment_id")
        refund_id = body.get("refund_id")
        if refund_id is None:
            refund_id = f"ref_{uuid.uuid4().hex[:20]}"
        elif not isinstance(refund_id, str) or not _ID.match(refund_id):
            return _invalid_format("refund_id", ID_FORMAT)
        requested = body.get("amount")
        if requested is not None and (
            not isinstance(requested, int) or isinstance(requested, bool) or requested <= 0
        ):
            return _invalid_format("amount", "positive integer")
        if not self._claim(payment_id):
            return _busy()
        try:
            with self.lock:
                payment = self.payments.get(payment_id)
                if payment is None:
                    return _no_payment()
                if payment["status"] not in REFUNDABLE:
                    return _unexpected_state(
                        "refunded", payment["status"], "succeeded, partially_captured"
                    )
                captured = int(payment["amount_received"] or 0)
                # No amount: the router refunds the amount captured (not what is left).
                amount = captured if requested is None else requested
                refunded = sum(
                    r["amount"]
                    for r in self.refunds.values()
                    if r["payment_id"] == payment_id and r["status"] != "failed"
                )
                if amount > captured - refunded:
                    return _hs_error(
                        400,
                        "invalid_request",
                        "IR_13",
                        "The refund amount exceeds the amount captured",
                    )
                if refund_id in self.refunds:
                    return _hs_error(
                        400,
                        "invalid_request",
                        "HE_01",
                        "Duplicate refund request. Refund already attempted with the refund ID",
                    )
                refund = {
                    "refund_id": refund_id,
                    "payment_id": payment_id,
                    "amount": amount,
                    "currency": payment["currency"],
                    "status": self.refund_status,
                    "reason": body.get("reason"),
                    "metadata": body.get("metadata"),
                    "error_code": None,
                    "error_message": None,
                    "created_at": _now_iso(),
                    "updated_at": _now_iso(),
                    "connector": payment.get("connector"),
                }
                self.refunds[refund_id] = refund
                return Response(200, dict(refund))
        finally:
            self._release(payment_id)

    # ------------------------------------------------------------------ test helpers

    def reset(self) -> None:
        """Forget every payment, refund, request, fault and delivery."""
        super().reset()
        with self.lock:
            self.payments.clear()
            self.refunds.clear()
            self.deliveries.clear()
            self.blocked_customers.clear()

    def set_payment_status(self, payment_id: str, status: str) -> dict[str, Any]:
        """Move a payment (e.g. the customer paid through the SDK: ``succeeded``)."""
        with self.lock:
            payment = self.payments[payment_id]
            payment["status"] = status
            if status == "succeeded":
                payment["amount_received"] = payment["amount"]
            return dict(payment)

    def set_refund_status(self, refund_id: str, status: str) -> dict[str, Any]:
        """Move a refund (pending refunds settle later)."""
        with self.lock:
            self.refunds[refund_id]["status"] = status
            return dict(self.refunds[refund_id])

    def webhook_body(
        self, event_type: str, obj: Mapping[str, Any], *, event_id: str | None = None
    ) -> bytes:
        """A Hyperswitch-shaped webhook body for ``event_type`` about ``obj``."""
        kind = event_type.split("_", 1)[0]
        content_type = {
            "payment": "payment_details",
            "refund": "refund_details",
            "dispute": "dispute_details",
            "payout": "payout_details",
            "mandate": "mandate_details",
            "invoice": "subscription_details",
        }.get(kind, "payment_details")
        event = {
            "merchant_id": self.merchant_id,
            "event_id": event_id or f"evt_{uuid.uuid4().hex}",
            "event_type": event_type,
            "content": {"type": content_type, "object": dict(obj)},
            "timestamp": _now_iso(),
        }
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @positional_deprecated
    def deliver_webhook(
        self, url: str, key: str, *, body: bytes, timeout: float = 10.0
    ) -> httpx.Response:
        """POST a signed webhook ``body`` to ``url``, as Hyperswitch does."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign_payload(body, key),
            "x-request-id": str(uuid.uuid4()),
            "user-agent": "Hyperswitch-Webhook/1.0 (veza fake)",
        }
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
        event_type = json.loads(body).get("event_type", "?")
        with self.lock:
            self.deliveries.append((str(event_type), response.status_code))
        return response
