"""The Hyperswitch protocol without I/O: one core for the sync and the async client.

Each operation is a generator. It yields :class:`Call` (send this HTTP request) and
:class:`Sleep` (wait before retrying), receives :class:`Reply` objects, and returns
the result. The clients only move bytes and time; retries, the ``HE_01`` resolution
and the "already in the target state" checks live here once.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import attrs

from veza_payments._errors import (
    APIConnectionError,
    AuthenticationError,
    ConnectorError,
    HyperswitchError,
    IdempotencyConflict,
    InvalidRequestError,
    NotFoundError,
    PaymentBlockedError,
    RateLimitError,
    ServerError,
)
from veza_payments._ids import is_blank, payment_id_for, refund_id_for, require_key
from veza_payments._models import Payment, Refund
from veza_payments._money import check_amount, normalise_currency
from veza_payments._retry import RetryPolicy

T = TypeVar("T")


@attrs.frozen
class Call:
    """One HTTP request the flow wants sent."""

    method: str
    path: str
    json: Mapping[str, Any] | None = None
    params: Mapping[str, str] | None = None
    idempotency_key: str | None = None


@attrs.frozen
class Sleep:
    """Wait before the next attempt (``reason`` says why, for the driver's log)."""

    seconds: float
    reason: str = ""


@attrs.frozen(slots=False)
class Reply:
    """A transport-independent HTTP response (its JSON is parsed once, on demand)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @functools.cached_property
    def parsed(self) -> Any:  # noqa: ANN401 - JSON
        """The body as JSON, or ``None`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def json(self) -> Any:  # noqa: ANN401 - JSON
        """The body as JSON, or ``None`` if it is not JSON."""
        return self.parsed


Flow = Generator[Call | Sleep, Reply | None, T]


def error_from(reply: Reply) -> HyperswitchError:
    """Map a Hyperswitch error reply to the hierarchy (wire format, not the OpenAPI one).

    The wire format is ``{"error": {"type", "code", "message", "reason"?, ...}}``.
    """
    body = reply.json()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = str(error.get("message") or reply.body[:200].decode("utf-8", "replace"))
    if error.get("reason"):
        message = f"{message} ({error['reason']})"
    kwargs: dict[str, Any] = {
        "status": reply.status,
        "code": code,
        "request_id": reply.headers.get("x-request-id"),
        "body": body if body is not None else reply.body.decode("utf-8", "replace"),
    }
    status, kind = reply.status, str(error.get("type", ""))
    if kind == "blocked" or (code == "HE_03" and "block" in message.lower()):
        return PaymentBlockedError(message, **kwargs)
    if status == 401 or code == "IR_01":  # noqa: PLR2004
        return AuthenticationError(message, **kwargs)
    if status == 404 or code in ("HE_02", "HE_04"):  # noqa: PLR2004
        return NotFoundError(message, **kwargs)
    if status == 429:  # noqa: PLR2004
        return RateLimitError(message, **kwargs)
    if status >= 500 or code == "HE_00":  # noqa: PLR2004
        return ServerError(message, **kwargs)
    if kind == "connector" or (isinstance(code, str) and code.startswith("CE_")):
        return ConnectorError(message, **kwargs)
    return InvalidRequestError(message, **kwargs)


def _segment(value: str, what: str) -> str:
    """A path segment: non-empty, percent-encoded so an id can never change the route."""
    if is_blank(value):
        msg = f"{what} is required, got {value!r}"
        raise InvalidRequestError(msg, status=None, code=None)
    return quote(value, safe="")


def _is_error_body(reply: Reply) -> bool:
    body = reply.json()
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


class Core:
    """Builds flows for every operation; shared by both clients.

    Args:
        namespace: The merchant's prefix for derived ids.
        retry: The retry policy (a fresh copy per logical call).
        clock: Monotonic clock for the total-time bound.
    """

    def __init__(
        self, *, namespace: str, retry: RetryPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.namespace = namespace
        self.retry = retry
        self.clock = clock

    # ------------------------------------------------------------------ plumbing

    def request(self, call: Call) -> Flow[Reply]:
        """Send ``call``, retrying what may be retried; return a successful reply."""
        policy = self.retry
        started = self.clock()
        while True:
            try:
                reply = yield call
            except APIConnectionError as exc:
                error: HyperswitchError = exc
                retry_after = None
            else:
                assert reply is not None  # noqa: S101 - the driver always answers a Call
                if 200 <= reply.status < 300:  # noqa: PLR2004
                    body = reply.json()
                    if isinstance(body, dict) and not isinstance(body.get("error"), dict):
                        return reply
                if 200 <= reply.status < 300 and not _is_error_body(reply):  # noqa: PLR2004
                    # A 2xx that is not a JSON object: a proxy answered, not the provider.
                    # Retrying is safe because every retry reuses the same derived id.
                    error = APIConnectionError(
                        "2xx response without a JSON object body",
                        status=None,
                        request_id=reply.headers.get("x-request-id"),
                        body=reply.body[:200].decode("utf-8", "replace"),
                    )
                else:
                    error = error_from(reply)
                retry_after = reply.headers.get("retry-after")
            if (
                policy.exhausted
                or not RetryPolicy.is_retryable(error.status, error.code)
                or self.clock() - started >= policy.max_elapsed
            ):
                raise error
            yield Sleep(policy.delay(retry_after), reason=f"{call.method} {call.path}: {error}")
            policy = policy.increment()

    # ------------------------------------------------------------------ payments

    def create_payment(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        confirm: bool,
        capture_method: str | None,
        customer_id: str | None,
        description: str | None,
        metadata: Mapping[str, Any] | None,
        return_url: str | None,
    ) -> Flow[Payment]:
        """Create, or find what an earlier attempt of this logical call created."""
        require_key(idempotency_key)
        check_amount(amount)
        currency = normalise_currency(currency)
        payment_id = payment_id_for(idempotency_key, namespace=self.namespace)
        body: dict[str, Any] = {
            "payment_id": payment_id,
            "amount": amount,
            "currency": currency,
            "confirm": confirm,
        }
        for name, value in (
            ("capture_method", capture_method),
            ("customer_id", customer_id),
            ("description", description),
            ("metadata", metadata),
            ("return_url", return_url),
        ):
            if value is not None:
                body[name] = dict(value) if isinstance(value, Mapping) else value
        try:
            reply = yield from self.request(
                Call("POST", "/payments", json=body, idempotency_key=idempotency_key)
            )
        except InvalidRequestError as exc:
            if exc.code != "HE_01":
                raise
            existing = yield from self.retrieve_payment(payment_id)
            if existing.amount != amount or existing.currency != currency:
                msg = (
                    f"idempotency key already used for payment {payment_id} of "
                    f"{existing.amount} {existing.currency}, now asked for {amount} {currency}"
                )
                raise IdempotencyConflict(
                    msg,
                    existing=existing,
                    requested={"amount": amount, "currency": currency},
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                    body=exc.body,
                ) from None
            return existing
        return Payment.from_json(reply.json())

    def retrieve_payment(self, payment_id: str, *, force_sync: bool = False) -> Flow[Payment]:
        """Read a payment (``force_sync`` asks the connector for the latest status)."""
        params = {"force_sync": "true"} if force_sync else None
        reply = yield from self.request(
            Call("GET", f"/payments/{_segment(payment_id, 'payment_id')}", params=params)
        )
        return Payment.from_json(reply.json())

    def _to_state(
        self,
        idempotency_key: str,
        payment_id: str,
        action: str,
        done: frozenset[str],
        body: Mapping[str, Any],
    ) -> Flow[Payment]:
        """Capture or cancel: no id of their own, so "already there" counts as success."""
        require_key(idempotency_key)
        current = yield from self.retrieve_payment(payment_id)
        if current.status in done:
            return current
        try:
            reply = yield from self.request(
                Call(
                    "POST",
                    f"/payments/{_segment(payment_id, 'payment_id')}/{action}",
                    json=dict(body),
                    idempotency_key=idempotency_key,
                )
            )
        except (InvalidRequestError, ServerError, APIConnectionError):
            after = yield from self.retrieve_payment(payment_id)
            if after.status in done:  # an earlier attempt did it; its response was lost
                return after
            raise
        return Payment.from_json(reply.json())

    def capture_payment(
        self, idempotency_key: str, payment_id: str, *, amount_to_capture: int | None
    ) -> Flow[Payment]:
        """Capture an authorised payment (or confirm an earlier capture succeeded)."""
        body = (
            {}
            if amount_to_capture is None
            else {"amount_to_capture": check_amount(amount_to_capture, field="amount_to_capture")}
        )
        return (
            yield from self._to_state(
                idempotency_key,
                payment_id,
                "capture",
                frozenset({"succeeded", "partially_captured", "partially_captured_and_capturable"}),
                body,
            )
        )

    def cancel_payment(
        self, idempotency_key: str, payment_id: str, *, reason: str | None
    ) -> Flow[Payment]:
        """Cancel (void) a payment (or confirm an earlier cancel succeeded)."""
        body = {} if reason is None else {"cancellation_reason": reason}
        return (
            yield from self._to_state(
                idempotency_key, payment_id, "cancel", frozenset({"cancelled"}), body
            )
        )

    # ------------------------------------------------------------------ refunds

    def create_refund(
        self,
        idempotency_key: str,
        *,
        payment_id: str,
        amount: int | None,
        reason: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> Flow[Refund]:
        """Refund (partially when ``amount`` is set), or find the earlier attempt's refund."""
        require_key(idempotency_key)
        if amount is not None:
            check_amount(amount)
        refund_id = refund_id_for(idempotency_key, namespace=self.namespace)
        body: dict[str, Any] = {"refund_id": refund_id, "payment_id": payment_id}
        if amount is not None:
            body["amount"] = amount
        if reason is not None:
            body["reason"] = reason
        if metadata is not None:
            body["metadata"] = dict(metadata)
        try:
            reply = yield from self.request(
                Call("POST", "/refunds", json=body, idempotency_key=idempotency_key)
            )
        except InvalidRequestError as exc:
            if exc.code != "HE_01":
                raise
            existing = yield from self.retrieve_refund(refund_id)
            if existing.payment_id != payment_id or (
                amount is not None and existing.amount != amount
            ):
                msg = (
                    f"idempotency key already used for refund {refund_id} of {existing.amount} "
                    f"on {existing.payment_id}, now asked for {amount} on {payment_id}"
                )
                raise IdempotencyConflict(
                    msg,
                    existing=existing,
                    requested={"amount": amount, "payment_id": payment_id},
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                    body=exc.body,
                ) from None
            return existing
        return Refund.from_json(reply.json())

    def retrieve_refund(self, refund_id: str) -> Flow[Refund]:
        """Read a refund (pending refunds send no webhook: poll them with this)."""
        reply = yield from self.request(Call("GET", f"/refunds/{_segment(refund_id, 'refund_id')}"))
        return Refund.from_json(reply.json())
