"""The Hyperswitch protocol without I/O: one core for the sync and the async client.

Each operation is a generator. It yields :class:`Call` (send this HTTP request) and
:class:`Sleep` (wait before retrying), receives :class:`Reply` objects, and returns
the result. The clients only move bytes and time; retries, the deadline, resolution
by reading and the "already in the target state" checks live here once.

Resolution by reading: an error code never decides whether an object exists. The
router checks a refund's amount *before* the insert whose unique violation is
``HE_01``, so a retried full refund answers ``400 IR_13`` although the refund exists,
and concurrent calls with one key meet either code. So when an attempt's outcome is
unknown (no answer, a timeout, a 5xx, a 2xx that is not the object) and before any
error is raised, the flow reads the deterministic id: it returns what the provider
holds when it matches, raises :class:`IdempotencyConflictError` when it does not, and
raises the provider's error only when nothing is there.
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
    IdempotencyConflictError,
    InvalidRequestError,
    NotFoundError,
    PaymentBlockedError,
    ProviderError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    hyperswitch_error,
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
    timeout: float | None = None
    """Seconds this attempt may take in total (connect, write, read the whole body)."""


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
Resolver = Callable[[ProviderError, float], Generator[Call | Sleep, Reply | None, T | None]]

CURRENCY_CONVERSION_FAILED = "Failed to convert currency to minor unit"
"""The one deterministic ``422 HE_00`` (the other, "resource busy", is worth a retry)."""

CAPTURED = frozenset({"succeeded", "partially_captured"})
"""A capture has nothing left to do. ``partially_captured_and_capturable`` is not here:
with ``capture_method="manual_multiple"`` the router accepts further captures."""
CANCELLED = frozenset({"cancelled"})


def error_from(reply: Reply) -> ProviderError:
    """Map a Hyperswitch error reply to the hierarchy (wire format, not the OpenAPI one).

    The error raised is both its kind (:func:`error_class`) and a ``HyperswitchError``.

    The wire format is ``{"error": {"type", "code", "message", "reason"?, ...}}``.
    ``docs/payments/errors.md`` has the table, tested against the router's codes.
    """
    body = reply.json()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, str) else None
    message = str(error.get("message") or reply.body[:200].decode("utf-8", "replace"))
    if error.get("reason"):
        message = f"{message} ({error['reason']})"
    cls = hyperswitch_error(error_class(reply.status, str(error.get("type", "")), code, message))
    return cls(
        message,
        status=reply.status,
        code=code,
        request_id=reply.headers.get("x-request-id"),
        body=body if body is not None else reply.body.decode("utf-8", "replace"),
    )


def error_class(status: int, kind: str, code: str | None, message: str = "") -> type[ProviderError]:
    """The class raised for one error reply.

    The order follows the router: the blocklist's 200 first, then the error's type
    and code family (a connector's 401 is the connector's failure, not a bad API
    key), then the status (a 500 is a server error whatever its code).
    """
    if kind == "blocked" or (200 <= status < 300 and code == "HE_03"):
        # The blocklist answers HTTP 200 with an error body (a DomainError): the type,
        # or HE_03 inside a 2xx, says so; never the wording of the message.
        return PaymentBlockedError
    if kind == "connector" or (code or "").startswith("CE_"):
        return ConnectorError
    if status >= 500:
        return ServerError
    if status in (401, 403) or code == "IR_01":
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status == 422 and code == "HE_00" and CURRENCY_CONVERSION_FAILED not in message:
        return ServerError  # resource busy: another request holds the payment's lock
    return InvalidRequestError


def is_retryable(error: ProviderError) -> bool:
    """Whether another attempt may succeed (the same id makes it safe)."""
    if isinstance(error, UnexpectedResponseError):
        return True
    if isinstance(
        error, InvalidRequestError | AuthenticationError | PaymentBlockedError | ConnectorError
    ):
        return False
    return RetryPolicy.is_retryable(error.status, error.code)


def outcome_unknown(error: ProviderError) -> bool:
    """The provider may have acted: no answer, a 5xx, or a 2xx that is not the object."""
    if isinstance(error, UnexpectedResponseError):
        return True
    return error.status is None or (error.status >= 500 and not isinstance(error, ConnectorError))


def _resolvable(error: ProviderError) -> bool:
    """Reading the id can change the answer (not for a refused key or a blocked payment)."""
    return not isinstance(error, AuthenticationError | PaymentBlockedError)


def _segment(value: str, what: str) -> str:
    """A path segment: non-empty, percent-encoded so an id can never change the route."""
    if is_blank(value):
        msg = f"{what} is required, got {value!r}"
        raise hyperswitch_error(InvalidRequestError)(msg, status=None, code=None)
    return quote(value, safe="")


def _payment(body: Mapping[str, Any]) -> Payment | None:
    return Payment.from_json(body) if isinstance(body.get("payment_id"), str) else None


def _refund(body: Mapping[str, Any]) -> Refund | None:
    return Refund.from_json(body) if isinstance(body.get("refund_id"), str) else None


def _conflict(
    what: str,
    error: ProviderError,
    existing: Payment | Refund,
    requested: dict[str, Any],
) -> IdempotencyConflictError:
    return hyperswitch_error(IdempotencyConflictError)(
        f"idempotency key already used for {what}, now asked for {requested}",
        existing=existing,
        requested=requested,
        status=error.status,
        code=error.code,
        request_id=error.request_id,
        body=error.body,
    )


class Core:
    """Builds flows for every operation; shared by both clients.

    Args:
        namespace: The merchant's prefix for derived ids.
        retry: The retry policy (a fresh copy per logical call); its ``max_elapsed``
            is the total deadline of one call, reads-back and retries included.
        timeout: Seconds one attempt may take in total (connect, write, whole body).
        clock: Monotonic clock for the deadline.
    """

    def __init__(
        self,
        *,
        namespace: str,
        retry: RetryPolicy,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self.retry = retry
        self.timeout = timeout
        self.clock = clock

    # ------------------------------------------------------------------ plumbing

    def deadline(self) -> float:
        """When a logical call starting now must be over (the clock's time)."""
        return self.clock() + self.retry.max_elapsed

    def request(
        self,
        call: Call,
        parse: Callable[[Mapping[str, Any]], T | None],
        *,
        deadline: float,
        resolve: Resolver[T] | None = None,
    ) -> Flow[T]:
        """Send ``call`` until it yields the object ``parse`` recognises, or raise.

        Retries what may be retried, within ``deadline``. With ``resolve`` (creates,
        captures, cancels) the outcome is settled by reading before a retry after an
        unknown outcome and before any error is raised.
        """
        policy = self.retry
        error: ProviderError | None = None
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise error or hyperswitch_error(APIConnectionError)(
                    f"{call.method} {call.path}: the call's deadline passed", status=None
                )
            retry_after: str | None = None
            try:
                reply = yield attrs.evolve(call, timeout=min(self.timeout, remaining))
            except APIConnectionError as exc:
                error = exc
            else:
                if reply is None:
                    msg = f"{call.method} {call.path}: the driver answered a Call with nothing"
                    raise TypeError(msg)
                retry_after = reply.headers.get("retry-after")
                body = reply.json()
                if not 200 <= reply.status < 300:
                    error = error_from(reply)
                elif isinstance(body, dict) and isinstance(body.get("error"), dict):
                    error = error_from(reply)  # an error inside a 2xx: the blocklist
                else:
                    found = parse(body) if isinstance(body, dict) else None
                    if found is not None:
                        return found
                    error = hyperswitch_error(UnexpectedResponseError)(
                        f"{call.method} {call.path}: a {reply.status} answer whose body is "
                        "not the object asked for (a proxy, or a changed API)",
                        status=reply.status,
                        request_id=reply.headers.get("x-request-id"),
                        body=body
                        if body is not None
                        else reply.body[:200].decode("utf-8", "replace"),
                    )
            can_retry = is_retryable(error) and not policy.exhausted
            if (
                resolve is not None
                and _resolvable(error)
                and (outcome_unknown(error) or not can_retry)
            ):
                held = yield from resolve(error, deadline)
                if held is not None:
                    return held
            delay = policy.delay(retry_after) if can_retry else 0.0
            if not can_retry or self.clock() + delay >= deadline:
                raise error
            yield Sleep(delay, reason=f"{call.method} {call.path}: {error}")
            policy = policy.increment()

    def _read_payment(
        self, payment_id: str, deadline: float, *, force_sync: bool = False
    ) -> Flow[Payment]:
        params = {"force_sync": "true"} if force_sync else None
        call = Call("GET", f"/payments/{_segment(payment_id, 'payment_id')}", params=params)
        return (yield from self.request(call, _payment, deadline=deadline))

    def _read_refund(self, refund_id: str, deadline: float) -> Flow[Refund]:
        call = Call("GET", f"/refunds/{_segment(refund_id, 'refund_id')}")
        return (yield from self.request(call, _refund, deadline=deadline))

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

        def resolve(error: ProviderError, deadline: float) -> Flow[Payment | None]:
            try:
                existing = yield from self._read_payment(payment_id, deadline)
            except NotFoundError:
                return None
            if existing.amount != amount or existing.currency != currency:
                raise _conflict(
                    f"payment {payment_id} of {existing.amount} {existing.currency}",
                    error,
                    existing,
                    {"amount": amount, "currency": currency},
                ) from None
            return existing

        call = Call("POST", "/payments", json=body, idempotency_key=idempotency_key)
        return (yield from self.request(call, _payment, deadline=self.deadline(), resolve=resolve))

    def retrieve_payment(self, payment_id: str, *, force_sync: bool) -> Flow[Payment]:
        """Read a payment (``force_sync`` asks the connector for the latest status)."""
        return (yield from self._read_payment(payment_id, self.deadline(), force_sync=force_sync))

    def _to_state(
        self,
        idempotency_key: str,
        payment_id: str,
        action: str,
        reached: Callable[[Payment, Payment], bool],
        body: Mapping[str, Any],
    ) -> Flow[Payment]:
        """Capture or cancel: no id of their own, so the payment's state settles it.

        ``reached(before, now)`` says whether the payment shows this operation done;
        it is asked before the first attempt, after an unknown outcome, and before
        an error is raised (a racing call may have done it).
        """
        require_key(idempotency_key)
        call = Call(
            "POST",
            f"/payments/{_segment(payment_id, 'payment_id')}/{action}",
            json=dict(body),
            idempotency_key=idempotency_key,
        )
        deadline = self.deadline()
        before = yield from self._read_payment(payment_id, deadline)
        if reached(before, before):
            return before

        def resolve(_error: ProviderError, deadline: float) -> Flow[Payment | None]:
            now = yield from self._read_payment(payment_id, deadline)
            return now if reached(before, now) else None

        return (yield from self.request(call, _payment, deadline=deadline, resolve=resolve))

    def capture_payment(
        self, idempotency_key: str, payment_id: str, *, amount_to_capture: int | None
    ) -> Flow[Payment]:
        """Capture an authorised payment (or confirm an earlier attempt captured it).

        With ``manual_multiple`` a payment stays capturable between partial captures,
        so "done" is measured on ``amount_received``: this call is done once it grew
        by the amount asked (or the payment is fully captured).
        """
        body = (
            {}
            if amount_to_capture is None
            else {"amount_to_capture": check_amount(amount_to_capture, field="amount_to_capture")}
        )

        def reached(before: Payment, now: Payment) -> bool:
            if now.status in CAPTURED:
                return True
            if now is before:
                return False
            wanted = amount_to_capture or before.amount_capturable or 1
            return (now.amount_received or 0) >= (before.amount_received or 0) + wanted

        return (yield from self._to_state(idempotency_key, payment_id, "capture", reached, body))

    def cancel_payment(
        self, idempotency_key: str, payment_id: str, *, reason: str | None
    ) -> Flow[Payment]:
        """Cancel (void) a payment (or confirm an earlier cancel succeeded)."""
        body = {} if reason is None else {"cancellation_reason": reason}

        def reached(_before: Payment, now: Payment) -> bool:
            return now.status in CANCELLED

        return (yield from self._to_state(idempotency_key, payment_id, "cancel", reached, body))

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

        def resolve(error: ProviderError, deadline: float) -> Flow[Refund | None]:
            try:
                existing = yield from self._read_refund(refund_id, deadline)
            except NotFoundError:
                return None
            if existing.payment_id != payment_id or (
                amount is not None and existing.amount != amount
            ):
                raise _conflict(
                    f"refund {refund_id} of {existing.amount} on {existing.payment_id}",
                    error,
                    existing,
                    {"amount": amount, "payment_id": payment_id},
                ) from None
            return existing

        call = Call("POST", "/refunds", json=body, idempotency_key=idempotency_key)
        return (yield from self.request(call, _refund, deadline=self.deadline(), resolve=resolve))

    def retrieve_refund(self, refund_id: str) -> Flow[Refund]:
        """Read a refund (pending refunds send no webhook: poll them with this)."""
        return (yield from self._read_refund(refund_id, self.deadline()))
