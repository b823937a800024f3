"""Fakes of Hyperswitch and Stripe: real HTTP servers on 127.0.0.1 for your tests.

They behave like the providers where it matters for money: Hyperswitch enforces
unique ``payment_id``/``refund_id`` with ``400 HE_01`` (and ignores the
``Idempotency-Key`` header, as v1 does), answers ``422 HE_00`` while another request
holds the same payment, sends a blocklist rejection as HTTP 200 with an error body,
and uses its real error shape; Stripe replays idempotent requests (same key and
parameters: the first response; different parameters: ``idempotency_error``). Both
inject faults on either side of the commit (see :class:`Fault`).

Example:
    >>> from veza_payments import HyperswitchClient
    >>> from veza_payments.testing import Fault, FakeHyperswitch
    >>> with FakeHyperswitch() as fake:
    ...     fake.inject(Fault("drop", after_commit=True, method="POST"))
    ...     client = HyperswitchClient(fake.api_key, base_url=fake.url, sleep=lambda s: None)
    ...     payment = client.create_payment("order-1", amount=1000, currency="EUR")
    ...     assert len(fake.payments) == 1 and payment.payment_id in fake.payments
    ...     client.close()
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from veza_payments._fakeserver import FakeServer, Fault, Request, Response, counter
from veza_payments._signatures import SIGNATURE_HEADER, sign_payload

__all__ = ["FakeHyperswitch", "FakeStripe", "Fault"]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hs_error(status: int, kind: str, code: str, message: str, **extra: Any) -> Response:  # noqa: ANN401
    return Response(status, {"error": {"type": kind, "message": message, "code": code, **extra}})


def _busy() -> Response:
    return _hs_error(422, "invalid_request", "HE_00", "Resource is busy, please try again later")


def _no_payment() -> Response:
    return _hs_error(404, "invalid_request", "HE_02", "Payment does not exist in our records")


CAPTURABLE = frozenset({"requires_capture", "partially_captured_and_capturable"})
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

    Attributes:
        payments: Stored payment objects by id (the provider's truth).
        refunds: Stored refund objects by id.
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
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.busy_for = busy_for
        self.refund_status = refund_status
        self.merchant_id = merchant_id
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.blocked_customers: set[str] = set()
        self.deliveries: list[tuple[str, int]] = []
        self._busy: set[str] = set()
        self._next = counter()

    # ------------------------------------------------------------------ plumbing

    def extra_headers(self) -> dict[str, str]:
        """Every response carries an ``x-request-id``."""
        return {"x-request-id": str(uuid.uuid4())}

    def error_for_fault(self, fault: Fault) -> Response:
        """Hyperswitch-shaped answers for injected statuses."""
        if fault.status == 422:  # noqa: PLR2004
            return _busy()
        if fault.status == 429:  # noqa: PLR2004
            return _hs_error(429, "invalid_request", "RE_00", "Too many requests")
        if fault.status >= 502:  # noqa: PLR2004 - gateways answer in their own words
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
                return _hs_error(400, "invalid_request", "IR_06", "Json deserialize error")
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
            return _hs_error(
                400,
                "invalid_request",
                "IR_05",
                "amount contains invalid data. Expected format is a positive integer",
            )
        if not isinstance(currency, str) or len(currency) != 3:  # noqa: PLR2004
            return _hs_error(400, "invalid_request", "IR_04", "Missing required param: currency")
        payment_id = body.get("payment_id") or f"pay_{uuid.uuid4().hex[:20]}"
        if not isinstance(payment_id, str) or not _ID.match(payment_id):
            return _hs_error(
                400,
                "invalid_request",
                "IR_06",
                "payment_id must be at most 64 characters of [A-Za-z0-9_-]",
            )
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
                manual = body.get("capture_method") == "manual"
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
                    "error_message": "This payment method is blocked" if blocked else None,
                }
                self.payments[payment_id] = payment
            if blocked:
                # The blocklist answers HTTP 200 with an error body (DomainError).
                return _hs_error(
                    200, "blocked", "HE_03", "This payment method is blocked", reason="Blocked"
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
                return _hs_error(
                    400,
                    "invalid_request",
                    "IR_14",
                    f"This Payment could not be captured because it has a payment.status "
                    f"of {payment['status']}. The expected state is requires_capture, "
                    "partially_captured_and_capturable, processing",
                )
            amount = body.get("amount_to_capture", payment["amount_capturable"])
            if not isinstance(amount, int) or not 0 < amount <= payment["amount_capturable"]:
                return _hs_error(
                    400,
                    "invalid_request",
                    "IR_06",
                    "amount_to_capture is greater than amount_capturable",
                )
            partial = amount < payment["amount"]
            payment.update(
                status="partially_captured" if partial else "succeeded",
                amount_received=amount,
                amount_capturable=0,
            )
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
        payment_id = body.get("payment_id")
        if not isinstance(payment_id, str):
            return _hs_error(400, "invalid_request", "IR_04", "Missing required param: payment_id")
        refund_id = body.get("refund_id") or f"ref_{uuid.uuid4().hex[:20]}"
        if not isinstance(refund_id, str) or not _ID.match(refund_id):
            return _hs_error(
                400,
                "invalid_request",
                "IR_06",
                "refund_id must be at most 64 characters of [A-Za-z0-9_-]",
            )
        if not self._claim(payment_id):
            return _busy()
        try:
            with self.lock:
                if refund_id in self.refunds:
                    return _hs_error(
                        400,
                        "invalid_request",
                        "HE_01",
                        "Duplicate refund request. Refund already attempted with the refund ID",
                    )
                payment = self.payments.get(payment_id)
                if payment is None:
                    return _no_payment()
                if payment["status"] not in REFUNDABLE:
                    return _hs_error(
                        400,
                        "invalid_request",
                        "HE_03",
                        "The payment has not succeeded yet. Please pass a "
                        "successful payment to initiate refund",
                    )
                refunded = sum(
                    r["amount"]
                    for r in self.refunds.values()
                    if r["payment_id"] == payment_id and r["status"] != "failed"
                )
                remaining = int(payment["amount_received"] or 0) - refunded
                amount = body.get("amount", remaining)
                if not isinstance(amount, int) or amount <= 0 or amount > remaining:
                    return _hs_error(
                        400,
                        "invalid_request",
                        "IR_13",
                        "The refund amount exceeds the amount captured",
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
        }.get(kind, "payment_details")
        event = {
            "merchant_id": self.merchant_id,
            "event_id": event_id or f"evt_{uuid.uuid4().hex}",
            "event_type": event_type,
            "content": {"type": content_type, "object": dict(obj)},
            "timestamp": _now_iso(),
        }
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def deliver_webhook(
        self, url: str, key: str, body: bytes, *, timeout: float = 10.0
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


# ---------------------------------------------------------------------------- Stripe


def _form(body: bytes, query: str = "") -> dict[str, Any]:
    """Decode Stripe's form encoding (``metadata[k]=v``, ``created[gte]=1``)."""
    out: dict[str, Any] = {}
    pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True) + parse_qsl(
        query, keep_blank_values=True
    )
    for name, value in pairs:
        match = re.fullmatch(r"([^\[]+)\[([^\]]*)\]", name)
        if match:
            out.setdefault(match.group(1), {})[match.group(2)] = value
        else:
            out[name] = value
    return out


def _st_error(
    status: int,
    kind: str,
    message: str,
    code: str | None = None,
    **extra: Any,  # noqa: ANN401
) -> Response:
    error: dict[str, Any] = {"type": kind, "message": message, **extra}
    if code:
        error["code"] = code
    return Response(status, {"error": error})


class FakeStripe(FakeServer):
    """A Stripe Connect stand-in: transfers, reversals, payouts, with idempotent replay.

    A request whose ``Idempotency-Key`` was seen (per account, method and path) gets
    the first response again with ``Idempotent-Replayed: true`` when the parameters
    match, and ``400 idempotency_error`` when they differ; a key still in flight
    answers ``409``.

    Args:
        api_key: The secret key requests must carry.

    Attributes:
        transfers: Stored transfers by id.
        payouts: Stored payouts by id.
    """

    def __init__(self, api_key: str = "sk_test_fake") -> None:
        super().__init__()
        self.api_key = api_key
        self.transfers: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[tuple[str, str, str, str], tuple[str, Response | None]] = {}
        self._next = counter()
        self._clock_lock = threading.Lock()
        self._last_created = 0

    def extra_headers(self) -> dict[str, str]:
        """Every response carries a ``Request-Id``."""
        return {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}

    def error_for_fault(self, fault: Fault) -> Response:
        """Stripe-shaped answers for injected statuses."""
        if fault.status == 429:  # noqa: PLR2004
            return _st_error(
                429,
                "invalid_request_error",
                "Request rate limit exceeded. Please retry after a short delay.",
                code="rate_limit",
            )
        if fault.status in {409, 422}:  # concurrent access to one object
            return _st_error(
                409,
                "invalid_request_error",
                "This object cannot be accessed right now because another API request or "
                "Stripe process is currently accessing it.",
                code="lock_timeout",
            )
        return _st_error(fault.status, "api_error", "An unknown error occurred")

    def _created(self) -> int:
        with self._clock_lock:
            self._last_created = max(self._last_created + 1, int(time.time()))
            return self._last_created

    def route(self, request: Request) -> Response:
        """Dispatch one request, applying Stripe's idempotency layer to POSTs."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _st_error(
                401, "invalid_request_error", f"Invalid API Key provided: {self.api_key[:8]}****"
            )
        params = _form(request.body, request.query)
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return self._route(request, params)
        scope = (request.headers.get("stripe-account", ""), request.method, request.path, key)
        fingerprint = json.dumps(params, sort_keys=True)
        with self.lock:
            seen = self._idempotency.get(scope)
            if seen is None:
                self._idempotency[scope] = (fingerprint, None)
        if seen is not None:
            first_params, first_response = seen
            if first_params != fingerprint:
                return _st_error(
                    400,
                    "idempotency_error",
                    f"Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                )
            if first_response is None:
                return _st_error(
                    409,
                    "invalid_request_error",
                    "There is currently another in-progress request using this "
                    f"Idempotent Key (that probably means you submitted twice): {key}.",
                    code="idempotency_key_in_use",
                )
            return Response(
                first_response.status,
                first_response.body,
                {**first_response.headers, "Idempotent-Replayed": "true"},
            )
        response = self._route(request, params)
        with self.lock:
            if response.status >= 500:  # noqa: PLR2004 - not executed: the key may be reused
                del self._idempotency[scope]
            else:
                self._idempotency[scope] = (fingerprint, response)
        return response

    def _route(self, request: Request, params: dict[str, Any]) -> Response:
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        match request.method, parts:
            case "POST", ["v1", "transfers"]:
                return self._create_transfer(params)
            case "GET", ["v1", "transfers"]:
                return self._list_transfers(params)
            case "GET", ["v1", "transfers", transfer_id]:
                with self.lock:
                    if transfer_id in self.transfers:
                        return Response(200, dict(self.transfers[transfer_id]))
                return self._missing("transfer", transfer_id)
            case "POST", ["v1", "transfers", transfer_id, "reversals"]:
                return self._reverse(transfer_id, params)
            case "POST", ["v1", "payouts"]:
                return self._create_payout(params, request.headers.get("stripe-account"))
        return _st_error(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({request.method}: {request.path}).",
        )

    @staticmethod
    def _missing(kind: str, ident: str) -> Response:
        return _st_error(
            404,
            "invalid_request_error",
            f"No such {kind}: '{ident}'",
            code="resource_missing",
            param="id",
        )

    @staticmethod
    def _amount(params: dict[str, Any], required: bool = True) -> int | Response | None:
        raw = params.get("amount")
        if raw is None:
            if required:
                return _st_error(
                    400,
                    "invalid_request_error",
                    "Missing required param: amount.",
                    code="parameter_missing",
                    param="amount",
                )
            return None
        if not str(raw).isdigit() or int(raw) <= 0:
            return _st_error(
                400,
                "invalid_request_error",
                "Invalid positive integer",
                code="parameter_invalid_integer",
                param="amount",
            )
        return int(raw)

    def _create_transfer(self, params: dict[str, Any]) -> Response:
        amount = self._amount(params)
        if isinstance(amount, Response):
            return amount
        destination = params.get("destination", "")
        if not str(destination).startswith("acct_"):
            return _st_error(
                400,
                "invalid_request_error",
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        transfer_id = f"tr_{uuid.uuid4().hex[:24]}"
        transfer = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "currency": str(params.get("currency", "")).lower(),
            "destination": destination,
            "transfer_group": params.get("transfer_group"),
            "source_transaction": params.get("source_transaction"),
            "metadata": dict(params.get("metadata") or {}),
            "created": self._created(),
            "amount_reversed": 0,
            "reversed": False,
            "livemode": False,
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{transfer_id}/reversals",
            },
        }
        with self.lock:
            self.transfers[transfer_id] = transfer
        return Response(200, dict(transfer))

    def _list_transfers(self, params: dict[str, Any]) -> Response:
        limit = max(1, min(int(params.get("limit", 10)), 100))
        created = params.get("created")
        with self.lock:
            items = sorted(self.transfers.values(), key=lambda t: t["created"], reverse=True)
        selected = []
        for transfer in items:
            if params.get("destination") and transfer["destination"] != params["destination"]:
                continue
            if params.get("transfer_group") and (
                transfer["transfer_group"] != params["transfer_group"]
            ):
                continue
            if isinstance(created, dict):
                bounds = {k: int(v) for k, v in created.items()}
                value = transfer["created"]
                if (
                    ("gt" in bounds and not value > bounds["gt"])
                    or ("gte" in bounds and not value >= bounds["gte"])
                    or ("lt" in bounds and not value < bounds["lt"])
                    or ("lte" in bounds and not value <= bounds["lte"])
                ):
                    continue
            elif created is not None and transfer["created"] != int(created):
                continue
            selected.append(transfer)
        after = params.get("starting_after")
        if after:
            ids = [t["id"] for t in selected]
            if after not in ids:
                return self._missing("transfer", after)
            selected = selected[ids.index(after) + 1 :]
        page = selected[:limit]
        return Response(
            200,
            {
                "object": "list",
                "url": "/v1/transfers",
                "has_more": len(selected) > limit,
                "data": [dict(t) for t in page],
            },
        )

    def _reverse(self, transfer_id: str, params: dict[str, Any]) -> Response:
        amount = self._amount(params, required=False)
        if isinstance(amount, Response):
            return amount
        with self.lock:
            transfer = self.transfers.get(transfer_id)
            if transfer is None:
                return self._missing("transfer", transfer_id)
            remaining = transfer["amount"] - transfer["amount_reversed"]
            amount = remaining if amount is None else amount
            if amount <= 0 or amount > remaining:
                return _st_error(
                    400,
                    "invalid_request_error",
                    f"Amount ({amount}) is greater than the amount that can be reversed "
                    f"({remaining}).",
                    code="amount_too_large",
                    param="amount",
                )
            reversal = {
                "id": f"trr_{uuid.uuid4().hex[:24]}",
                "object": "transfer_reversal",
                "amount": amount,
                "currency": transfer["currency"],
                "transfer": transfer_id,
                "metadata": dict(params.get("metadata") or {}),
                "created": self._created(),
            }
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
            transfer["reversals"]["data"].insert(0, reversal)
            transfer["reversals"]["total_count"] += 1
            return Response(200, dict(reversal))

    def _create_payout(self, params: dict[str, Any], account: str | None) -> Response:
        amount = self._amount(params)
        if isinstance(amount, Response):
            return amount
        payout = {
            "id": f"po_{uuid.uuid4().hex[:24]}",
            "object": "payout",
            "amount": amount,
            "currency": str(params.get("currency", "")).lower(),
            "status": "pending",
            "method": params.get("method", "standard"),
            "description": params.get("description"),
            "arrival_date": self._created() + 2 * 86400,
            "created": self._created(),
            "metadata": dict(params.get("metadata") or {}),
            "livemode": False,
            "account": account,
        }
        with self.lock:
            self.payouts[payout["id"]] = payout
        return Response(200, dict(payout))

    # ------------------------------------------------------------------ test helpers

    def reset(self) -> None:
        """Forget every object, idempotency key, request and fault."""
        super().reset()
        with self.lock:
            self.transfers.clear()
            self.payouts.clear()
            self._idempotency.clear()

    def reversals_of(self, transfer_id: str) -> list[dict[str, Any]]:
        """The reversals stored on a transfer."""
        with self.lock:
            return list(self.transfers[transfer_id]["reversals"]["data"])
