"""Webhook intake without a web framework: verify, dispatch, dedupe, log once.

:class:`WebhookIntake` turns one delivery (headers, raw body, peer address) into the
status to answer and exactly one :class:`WebhookRecord`, written once with its final
state through a :class:`WebhookLog`. The rules come from operating a payments
webhook endpoint:

* a body over 64 KiB is answered 413, and headers over 16 KiB 431, without reading
  further; the refusal is still recorded (reason, first bytes, sizes): the log keeps
  every delivery. :meth:`WebhookIntake.handle_stream` and ``ahandle_stream`` take the
  body as chunks and stop at the limit, so a 100 MB body is never held in memory;
* an invalid signature is answered 401 and recorded (``signature_invalid``): the log
  is where attacks are found;
* Hyperswitch retries a delivery for about 24 hours with the same body: an event id
  that was already processed successfully is acknowledged and ``skipped``; one that
  failed before is processed again;
* a handler failure answers 500 so the provider retries, recorded as ``error: …``;
* a failure to write the record is logged and swallowed: the contract with the
  provider is to acknowledge.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import threading
import uuid
import weakref
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

import attrs

from veza_payments._compat import positional_deprecated
from veza_payments._errors import BodyTooLargeError, PaymentsConfigurationError
from veza_payments._ids import is_count
from veza_payments._limits import aread_limited, declared_length, read_limited
from veza_payments._signatures import (
    HYPERSWITCH_RETRY_WINDOW,
    SIGNATURE_HEADER,
    STRIPE_SIGNATURE_HEADER,
    Keys,
    _key_list,
    verify_signature,
    verify_stripe_signature,
)

logger = logging.getLogger("veza_payments.webhooks")

MAX_BODY = 64 * 1024
"""Bodies above this many bytes are refused with 413 (Hyperswitch's are a few KiB)."""

MAX_HEADERS = 16 * 1024
"""Header bytes (names and values) above which a delivery is refused with 431."""

OK = "ok"
SKIPPED = "skipped"
SIGNATURE_INVALID = "signature_invalid"
REFUSED = "refused"
"""Prefix of the result recorded for a delivery refused on a size limit."""

# Lengths kept for the short header fields, so a hostile header cannot make the record
# too large for the SQL log's columns (and so lose the record).
_LIMITS = {
    "request_id": 128,
    "user_agent": 512,
    "source_ip": 64,
    "event_id": 255,
    "event_type": 128,
    "error": 1000,
}

EVENT_FAMILIES = (
    "payment_",
    "refund_",
    "dispute_",
    "payout_",
    "mandate_",
    "invoice_",
    "action_required",
)
"""Hyperswitch event type families (``payment_succeeded``, ``dispute_opened``, …)."""

EVENT_TYPES = frozenset(
    {
        "payment_succeeded",
        "payment_failed",
        "payment_processing",
        "payment_cancelled",
        "payment_cancelled_post_capture",
        "payment_authorized",
        "payment_partially_authorized",
        "payment_captured",
        "payment_expired",
        "action_required",
        "refund_succeeded",
        "refund_failed",
        "dispute_opened",
        "dispute_expired",
        "dispute_accepted",
        "dispute_cancelled",
        "dispute_challenged",
        "dispute_won",
        "dispute_lost",
        "mandate_active",
        "mandate_revoked",
        "payout_success",
        "payout_failed",
        "payout_initiated",
        "payout_processing",
        "payout_cancelled",
        "payout_expired",
        "payout_reversed",
        "invoice_paid",
    }
)
"""Every event type the router sends (``common_enums::EventType``, snake_case)."""


@attrs.frozen
class WebhookRecord:
    """One delivery, as the webhook log stores it (field names shared with veza-ledger).

    Attributes:
        payload: The body as text; empty when it was not valid UTF-8.
        signature_valid: Whether the signature verified.
        processing_result: ``ok``, ``error: <msg>``, ``signature_invalid`` or ``skipped``.
        source_ip: The peer address the caller passed.
        user_agent: The ``User-Agent`` header.
        request_id: ``X-Request-Id``, or a new UUID when absent.
        event_id: The event id (best effort; ``None`` for malformed JSON).
        event_type: The event type (best effort; ``None`` for malformed JSON).
        received_at: When the delivery arrived (UTC).
    """

    payload: str
    signature_valid: bool
    processing_result: str
    source_ip: str | None
    user_agent: str | None
    request_id: str
    event_id: str | None
    event_type: str | None
    received_at: dt.datetime


@runtime_checkable
class WebhookLog(Protocol):
    """Where webhook records go. veza-ledger's SQL log satisfies it structurally."""

    def record(self, record: WebhookRecord) -> None:
        """Store one delivery's record (called exactly once per delivery)."""
        ...

    def processed_successfully(self, event_id: str) -> bool:
        """Whether a delivery of ``event_id`` was already recorded with ``ok``."""
        ...


class InMemoryWebhookLog:
    """A thread-safe in-memory :class:`WebhookLog` (tests, demos, single processes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[WebhookRecord] = []
        self._ok: set[str] = set()

    def record(self, record: WebhookRecord) -> None:
        """Append ``record``."""
        with self._lock:
            self._records.append(record)
            if record.processing_result == OK and record.event_id is not None:
                self._ok.add(record.event_id)

    def processed_successfully(self, event_id: str) -> bool:
        """Whether ``event_id`` has an ``ok`` record."""
        with self._lock:
            return event_id in self._ok

    @property
    def records(self) -> list[WebhookRecord]:
        """A copy of every record, oldest first."""
        with self._lock:
            return list(self._records)


@attrs.frozen
class WebhookEvent:
    """A verified, parsed delivery handed to a handler.

    Attributes:
        event_id: The provider's event id (``None`` if absent).
        event_type: ``payment_succeeded``, ``refund_failed``, ``dispute_opened``, …
        object: The object the event is about (``content.object``, or Stripe's
            ``data.object``), an empty mapping when absent.
        payload: The whole parsed body.
        request_id: The delivery's request id.
    """

    event_id: str | None
    event_type: str
    object: Mapping[str, Any]
    payload: Mapping[str, Any] = attrs.field(repr=False)
    request_id: str


@attrs.frozen
class WebhookOutcome:
    """What to answer the provider, and what was recorded.

    Attributes:
        status: The HTTP status to answer (200, 400, 401, 413, 431, 500).
        processing_result: The recorded result (``refused: ...`` for 413 and 431).
        record: The record written (or attempted).
        event: The parsed event when the signature verified and the JSON parsed.
    """

    status: int
    processing_result: str | None
    record: WebhookRecord | None = None
    event: WebhookEvent | None = None

    @property
    def body(self) -> bytes:
        """A small JSON body to answer with (never echoes the payload)."""
        refused = {413: "payload_too_large", 431: "headers_too_large"}.get(self.status)
        return json.dumps({"result": refused or self.processing_result}).encode()


Handler = Callable[[WebhookEvent], object]
H = TypeVar("H", bound=Handler)  # a handler, its own type kept by ``on`` as a decorator
RawHeaders = Mapping[str, str] | Iterable[tuple[str, str]] | None


def _headers(headers: RawHeaders) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    out: dict[str, str] = {}
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            continue
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        out.setdefault(str(name).lower(), str(value))
    return out


def _clip(value: object, field: str) -> str | None:
    if value is None:
        return None
    return str(value)[: _LIMITS[field]]


class WebhookIntake:
    """Verify, dispatch, dedupe and log webhook deliveries.

    Args:
        log: Where records go (:class:`InMemoryWebhookLog`, veza-ledger's SQL log).
        keys: The payment response hash key(s); several during a rotation.
        stripe_compatible: Also accept ``Stripe-Signature`` (Hyperswitch's Stripe mode).
        stripe_tolerance: Seconds the Stripe-mode ``t`` may be off; the default accepts
            Hyperswitch's retries, which keep the first ``t`` for about 24 hours.
        max_body: Bytes above which a delivery is refused with 413.
        max_headers: Header bytes (names and values) above which it is refused with 431.
        clock: Returns the current UTC time (tests pass a fixed one).
    """

    def __init__(
        self,
        log: WebhookLog,
        keys: Keys,
        *,
        stripe_compatible: bool = False,
        stripe_tolerance: float | None = HYPERSWITCH_RETRY_WINDOW,
        max_body: int = MAX_BODY,
        max_headers: int = MAX_HEADERS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        try:
            self._keys = _key_list(keys)
        except (TypeError, ValueError) as exc:
            msg = "WebhookIntake needs at least one non-empty key (the payment response hash key)"
            raise PaymentsConfigurationError(msg) from exc
        for name, value in (("max_body", max_body), ("max_headers", max_headers)):
            if not is_count(value) or value == 0:
                msg = f"{name} must be a positive int of bytes, got {value!r}"
                raise PaymentsConfigurationError(msg)
        self.max_headers = max_headers
        self.log = log
        self.stripe_compatible = stripe_compatible
        self.stripe_tolerance = stripe_tolerance
        self.max_body = max_body
        self._clock = clock
        self._handlers: dict[str, Handler] = {}
        self._prefix_handlers: list[tuple[str, Handler]] = []
        self._inflight: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._inflight_guard = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"WebhookIntake(keys=<{len(self._keys)} hidden>, handlers={sorted(self._handlers)}, "
            f"patterns={[p + '*' for p, _ in self._prefix_handlers]})"
        )

    # ------------------------------------------------------------------ registration

    @overload
    def on(self, event_type: str, handler: None = None) -> Callable[[H], H]: ...

    @overload
    def on(self, event_type: str, handler: H) -> H: ...

    def on(self, event_type: str, handler: Handler | None = None) -> Handler | Callable[[H], H]:
        """Register ``handler`` for ``event_type`` (``"dispute_*"`` matches a family).

        Usable directly (``intake.on("refund_succeeded", fn)``) or as a decorator
        (``@intake.on("payment_succeeded")``). Exact types win over patterns; one
        handler per type.

        Raises:
            PaymentsConfigurationError: The type already has a handler.
        """
        if handler is None:

            def register(fn: H) -> H:
                self.on(event_type, fn)
                return fn

            return register
        if not event_type or event_type == "*":
            msg = f"event_type must name a type or a family ('dispute_*'), got {event_type!r}"
            raise PaymentsConfigurationError(msg)
        if event_type.endswith("*"):
            prefix = event_type[:-1]
            if any(existing == prefix for existing, _ in self._prefix_handlers):
                msg = f"a handler is already registered for {event_type!r}"
                raise PaymentsConfigurationError(msg)
            self._prefix_handlers.append((prefix, handler))
            self._prefix_handlers.sort(key=lambda item: -len(item[0]))
        else:
            if event_type in self._handlers:
                msg = f"a handler is already registered for {event_type!r}"
                raise PaymentsConfigurationError(msg)
            self._handlers[event_type] = handler
        return handler

    def handler_for(self, event_type: str) -> Handler | None:
        """The handler that would process ``event_type`` (``None``: it is skipped)."""
        if event_type in self._handlers:
            return self._handlers[event_type]
        for prefix, handler in self._prefix_handlers:
            if event_type.startswith(prefix):
                return handler
        return None

    # ------------------------------------------------------------------ intake

    @positional_deprecated
    def handle(
        self,
        headers: RawHeaders,
        body: bytes | bytearray | memoryview,
        *,
        source_ip: str | None = None,
    ) -> WebhookOutcome:
        """Process one delivery; never raises (the worst case is a 500 outcome).

        Args:
            headers: The request headers (any case; a mapping or pairs).
            body: The raw body bytes, exactly as received.
            source_ip: The peer address (after your proxy's ``X-Forwarded-For`` rules).

        Returns:
            The outcome: the status to answer and the record written.
        """
        received_at = self._clock()
        return self._guarded(
            received_at, source_ip, lambda: self._handle(headers, body, source_ip, received_at)
        )

    @positional_deprecated
    def handle_stream(
        self, headers: RawHeaders, chunks: Iterable[bytes], *, source_ip: str | None = None
    ) -> WebhookOutcome:
        """Process one delivery whose body arrives as chunks; never hold more than the limit.

        A ``Content-Length`` over ``max_body`` is refused before a chunk is pulled;
        otherwise pulling stops at the chunk that crosses it. A refusal is recorded
        like any delivery (reason, first bytes, sizes).

        Args:
            headers: The request headers (any case; a mapping or pairs).
            chunks: The raw body as chunks (``wsgi.input`` read in blocks, ...).
            source_ip: The peer address.

        Returns:
            The outcome: the status to answer and the record written.
        """
        received_at = self._clock()

        def run() -> WebhookOutcome:
            parsed = _headers(headers)
            refused = self._header_refusal(parsed, source_ip, received_at)
            if refused is not None:
                return refused
            try:
                body = read_limited(
                    chunks,
                    limit=self.max_body,
                    declared_length=declared_length(parsed.get("content-length")),
                )
            except BodyTooLargeError as exc:
                return self._body_refusal(parsed, source_ip, received_at, exc)
            return self._handle(parsed, body, source_ip, received_at)

        return self._guarded(received_at, source_ip, run)

    @positional_deprecated
    async def ahandle(
        self,
        headers: RawHeaders,
        body: bytes | bytearray | memoryview,
        *,
        source_ip: str | None = None,
    ) -> WebhookOutcome:
        """The asyncio twin of :meth:`handle`.

        Verification, the handler and the log write run in a worker thread
        (``asyncio.to_thread``): handlers and SQL logs are synchronous, and the
        caller's event loop must never wait on them.
        """
        return await asyncio.to_thread(self.handle, headers, body, source_ip=source_ip)

    @positional_deprecated
    async def ahandle_stream(
        self,
        headers: RawHeaders,
        chunks: AsyncIterable[bytes],
        *,
        source_ip: str | None = None,
    ) -> WebhookOutcome:
        """The asyncio twin of :meth:`handle_stream` (Starlette's ``request.stream()``).

        The body is read asynchronously up to the limit; everything synchronous
        (verification, the handler, the log write) runs in a worker thread.
        """
        received_at = self._clock()
        # One guard for every synchronous step: each failure is recorded with the same
        # arrival time and peer. Headers are parsed once (a one-shot iterable of pairs
        # cannot be read twice) and inside the guard (reading them may fail).
        guarded = functools.partial(self._guarded, received_at, source_ip)
        parsed: dict[str, str] = {}

        def header_step() -> WebhookOutcome | None:
            parsed.update(_headers(headers))
            return self._header_refusal(parsed, source_ip, received_at)

        refused = await asyncio.to_thread(self._guarded, received_at, source_ip, header_step)
        if refused is not None:
            return refused
        try:
            body = await aread_limited(
                chunks,
                limit=self.max_body,
                declared_length=declared_length(parsed.get("content-length")),
            )
        except BodyTooLargeError as exc:
            too_large = exc
            return await asyncio.to_thread(
                guarded, lambda: self._body_refusal(parsed, source_ip, received_at, too_large)
            )
        except Exception as exc:  # noqa: BLE001 - the stream broke (client gone): a 500, recorded
            broken = exc

            def fail() -> WebhookOutcome:
                raise broken

            return await asyncio.to_thread(guarded, fail)
        return await asyncio.to_thread(
            guarded, lambda: self._handle(parsed, body, source_ip, received_at)
        )

    @overload
    def _guarded(
        self,
        received_at: dt.datetime,
        source_ip: str | None,
        step: Callable[[], WebhookOutcome],
    ) -> WebhookOutcome: ...

    @overload
    def _guarded(
        self,
        received_at: dt.datetime,
        source_ip: str | None,
        step: Callable[[], WebhookOutcome | None],
    ) -> WebhookOutcome | None: ...

    def _guarded(
        self,
        received_at: dt.datetime,
        source_ip: str | None,
        step: Callable[[], WebhookOutcome | None],
    ) -> WebhookOutcome | None:
        """Run ``step``; an unexpected failure becomes a recorded 500, never an exception."""
        try:
            return step()
        except Exception as exc:
            logger.exception("webhook intake failed unexpectedly")
            record = WebhookRecord(
                payload="",
                signature_valid=False,
                processing_result=f"error: intake failure: {type(exc).__name__}",
                source_ip=_clip(source_ip, "source_ip"),
                user_agent=None,
                request_id=str(uuid.uuid4()),
                event_id=None,
                event_type=None,
                received_at=received_at,
            )
            self._write(record)
            return WebhookOutcome(500, record.processing_result, record)

    def _header_refusal(
        self, headers: Mapping[str, str], source_ip: str | None, received_at: dt.datetime
    ) -> WebhookOutcome | None:
        size = sum(len(name) + len(value) for name, value in headers.items())
        if size <= self.max_headers:
            return None
        reason = f"headers_too_large (limit {self.max_headers}, received {size})"
        return self._refusal(431, reason, b"", headers, source_ip=source_ip, at=received_at)

    def _body_refusal(
        self,
        headers: Mapping[str, str],
        source_ip: str | None,
        received_at: dt.datetime,
        exc: BodyTooLargeError,
    ) -> WebhookOutcome:
        declared = f", declared {exc.declared_length}" if exc.declared_length is not None else ""
        reason = f"body_too_large (limit {exc.limit}, received {exc.received}{declared})"
        return self._refusal(413, reason, exc.head, headers, source_ip=source_ip, at=received_at)

    def _refusal(
        self,
        status: int,
        reason: str,
        head: bytes,
        headers: Mapping[str, str],
        *,
        source_ip: str | None,
        at: dt.datetime,
    ) -> WebhookOutcome:
        """Record a delivery refused on a limit: the log keeps every delivery."""
        request_id = _clip(headers.get("x-request-id"), "request_id") or str(uuid.uuid4())
        logger.warning("webhook refused (request id %s): %s", request_id, reason)
        record = WebhookRecord(
            payload=head.decode(errors="backslashreplace"),
            signature_valid=False,
            processing_result=f"{REFUSED}: {reason}"[: _LIMITS["error"]],
            source_ip=_clip(source_ip, "source_ip"),
            user_agent=_clip(headers.get("user-agent"), "user_agent"),
            request_id=request_id,
            event_id=None,
            event_type=None,
            received_at=at,
        )
        self._write(record)
        return WebhookOutcome(status, record.processing_result, record)

    def _handle(
        self,
        raw_headers: RawHeaders,
        body: bytes | bytearray | memoryview,
        source_ip: str | None,
        received_at: dt.datetime,
    ) -> WebhookOutcome:
        headers = _headers(raw_headers)
        refused = self._header_refusal(headers, source_ip, received_at)
        if refused is not None:
            return refused
        if len(body) > self.max_body:
            head = bytes(body[:1024])
            too_large = BodyTooLargeError(
                limit=self.max_body, received=len(body), declared_length=None, head=head
            )
            return self._body_refusal(headers, source_ip, received_at, too_large)
        body = bytes(body)  # bytearray/memoryview from some servers; a copy is fine at 64 KiB
        request_id = _clip(headers.get("x-request-id"), "request_id") or str(uuid.uuid4())
        try:
            payload_text = body.decode()
        except UnicodeDecodeError:
            payload_text = ""
        parsed = _parse(payload_text)
        event_id = _clip(_first_str(parsed, "event_id", "id"), "event_id")
        event_type = _clip(_first_str(parsed, "event_type", "type"), "event_type")

        def finish(
            status: int, result: str, signature_valid: bool, event: WebhookEvent | None = None
        ) -> WebhookOutcome:
            record = WebhookRecord(
                payload=payload_text,
                signature_valid=signature_valid,
                processing_result=result,
                source_ip=_clip(source_ip, "source_ip"),
                user_agent=_clip(headers.get("user-agent"), "user_agent"),
                request_id=request_id,
                event_id=event_id,
                event_type=event_type,
                received_at=received_at,
            )
            self._write(record)
            return WebhookOutcome(status, result, record, event)

        if not self._signature_ok(headers, body):
            logger.warning(
                "webhook signature invalid (request id %s, source %s)", request_id, source_ip
            )
            return finish(401, SIGNATURE_INVALID, signature_valid=False)
        if not isinstance(parsed, dict):
            return finish(400, "error: malformed JSON body", signature_valid=True)
        if event_type is None:
            return finish(200, SKIPPED, signature_valid=True)
        handler = self.handler_for(event_type)
        if handler is None:
            return finish(200, SKIPPED, signature_valid=True)
        event = WebhookEvent(
            event_id=event_id,
            event_type=event_type,
            object=_object_of(parsed),
            payload=parsed,
            request_id=request_id,
        )
        with self._serialised(event_id):
            if event_id is not None and self._already_processed(event_id):
                return finish(200, SKIPPED, signature_valid=True, event=event)
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - a failing handler means "retry later"
                logger.warning(
                    "webhook handler for %s failed (event %s, request id %s): %s",
                    event_type,
                    event_id,
                    request_id,
                    type(exc).__name__,
                )
                message = str(exc) or type(exc).__name__
                return finish(
                    500,
                    f"error: {message}"[: _LIMITS["error"]],
                    signature_valid=True,
                    event=event,
                )
            return finish(200, OK, signature_valid=True, event=event)

    # ------------------------------------------------------------------ helpers

    def _signature_ok(self, headers: Mapping[str, str], body: bytes) -> bool:
        if SIGNATURE_HEADER in headers:
            return verify_signature(body, headers[SIGNATURE_HEADER], keys=self._keys)
        if self.stripe_compatible and STRIPE_SIGNATURE_HEADER in headers:
            return verify_stripe_signature(
                body,
                headers[STRIPE_SIGNATURE_HEADER],
                keys=self._keys,
                tolerance=self.stripe_tolerance,
            )
        return False

    def _already_processed(self, event_id: str) -> bool:
        try:
            return bool(self.log.processed_successfully(event_id))
        except Exception:  # noqa: BLE001 - handlers are idempotent; processing again is safe
            logger.warning("webhook log lookup failed for event %s; processing it", event_id)
            return False

    def _write(self, record: WebhookRecord) -> None:
        try:
            self.log.record(record)
        except Exception:
            logger.exception(
                "could not write the webhook record (request id %s, result %s)",
                record.request_id,
                record.processing_result,
            )

    def _serialised(self, event_id: str | None) -> _EventLock:
        return _EventLock(self._inflight, self._inflight_guard, event_id)


class _EventLock:
    """Serialises concurrent deliveries of one event id within this process.

    The second delivery then sees the first one's ``ok`` record and is skipped. Across
    processes, handlers must be idempotent (veza-ledger's state machines are). The
    table holds its locks weakly: an entry lives exactly as long as a delivery holds
    or waits for it, so no count has to be kept in step.
    """

    def __init__(
        self,
        table: weakref.WeakValueDictionary[str, threading.Lock],
        guard: threading.Lock,
        event_id: str | None,
    ) -> None:
        self._table = table
        self._guard = guard
        self._event_id = event_id
        self._lock: threading.Lock | None = None

    def __enter__(self) -> None:
        if self._event_id is None:
            return
        with self._guard:
            lock = self._table.setdefault(self._event_id, threading.Lock())
        lock.acquire()
        self._lock = lock

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            self._lock.release()


def _parse(text: str) -> Any:  # noqa: ANN401 - JSON
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _first_str(parsed: object, *names: str) -> str | None:
    if not isinstance(parsed, dict):
        return None
    for name in names:
        value = parsed.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _object_of(parsed: Mapping[str, Any]) -> Mapping[str, Any]:
    for container in ("content", "data"):
        inner = parsed.get(container)
        if isinstance(inner, dict) and isinstance(inner.get("object"), dict):
            obj: Mapping[str, Any] = inner["object"]
            return obj
    return {}
