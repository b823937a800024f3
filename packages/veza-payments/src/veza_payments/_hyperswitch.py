"""``HyperswitchClient`` and ``AsyncHyperswitchClient``: thin drivers over one core.

The protocol (ids, retries, ``HE_01`` resolution, capture/cancel state checks) lives in
:mod:`veza_payments._core` as generators; these classes only send the requests the
core asks for (over httpx) and sleep when it says so. That keeps the two clients
behaviourally identical, the way httpx keeps ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx

from veza_payments import _ids, _tracing
from veza_payments._core import Call, Core, Reply, Sleep
from veza_payments._errors import (
    APIConnectionError,
    PaymentsConfigurationError,
    hyperswitch_error,
)
from veza_payments._ids import check_namespace, is_blank, is_count
from veza_payments._models import Payment, Refund
from veza_payments._retry import RetryPolicy
from veza_payments._version import __version__

if TYPE_CHECKING:  # the [otel] extra's types; never imported at run time
    from opentelemetry.trace import Span, TracerProvider

T = TypeVar("T")

SANDBOX_URL = "https://sandbox.hyperswitch.io"
"""Hyperswitch's hosted sandbox (the default ``base_url``)."""

logger = logging.getLogger("veza_payments")

_REPLY_HEADERS = ("x-request-id", "retry-after")
_ROUTE_IDS = re.compile(r"/(payments|refunds)/(?!list\b)[^/]+")
_HTTP_ERROR = 400


def _policy(max_retries: int | RetryPolicy) -> RetryPolicy:
    if isinstance(max_retries, RetryPolicy):
        return max_retries
    if not is_count(max_retries):
        msg = f"max_retries must be a non-negative int or a RetryPolicy, got {max_retries!r}"
        raise PaymentsConfigurationError(msg)
    return RetryPolicy(total=max_retries)


class _ClientBase:
    """Configuration shared by both clients (validated here, once)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        timeout: float,
        max_retries: int | RetryPolicy,
        idempotency_namespace: str,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if is_blank(api_key):
            msg = "api_key is required (the Hyperswitch secret key, snd_... or dev_...)"
            raise PaymentsConfigurationError(msg)
        if not base_url.startswith(("https://", "http://")):
            msg = f"base_url must be an http(s) URL, got {base_url!r}"
            raise PaymentsConfigurationError(msg)
        if not timeout > 0:
            msg = f"timeout must be positive seconds, got {timeout!r}"
            raise PaymentsConfigurationError(msg)
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.retry = _policy(max_retries)
        self.idempotency_namespace = check_namespace(idempotency_namespace)
        self._core = Core(
            namespace=self.idempotency_namespace, retry=self.retry, timeout=self.timeout
        )
        self._tracer = _tracing.tracer(tracer_provider)
        parts = urllib.parse.urlsplit(self.base_url)
        self._server: dict[str, str | int] = {
            "server.address": parts.hostname or "",
            "server.port": parts.port or 443,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"idempotency_namespace={self.idempotency_namespace!r}, api_key=<hidden>)"
        )

    def payment_id_for(self, idempotency_key: str) -> str:
        """The ``payment_id`` ``create_payment(idempotency_key, ...)`` gives its payment.

        Derived with this client's ``idempotency_namespace``, by the same function the
        call uses: store it before the call (a webhook that arrives first finds the row)
        or look a payment up without re-deriving the id, and never get it wrong for a
        client with a namespace.

        Raises:
            MissingIdempotencyKeyError: ``idempotency_key`` is empty, blank or ``None``.
            InvalidIdempotencyKeyError: The key is outside the documented alphabet.
        """
        return _ids.payment_id_for(idempotency_key, namespace=self._core.namespace)

    def refund_id_for(self, idempotency_key: str) -> str:
        """The ``refund_id`` ``create_refund(idempotency_key, ...)`` gives its refund.

        Derived with this client's ``idempotency_namespace`` (see :meth:`payment_id_for`).

        Raises:
            MissingIdempotencyKeyError: ``idempotency_key`` is empty, blank or ``None``.
            InvalidIdempotencyKeyError: The key is outside the documented alphabet.
        """
        return _ids.refund_id_for(idempotency_key, namespace=self._core.namespace)

    def _default_headers(self) -> dict[str, str]:
        return {
            "api-key": self._api_key,
            "accept": "application/json",
            "user-agent": f"veza-payments/{__version__}",
        }

    @staticmethod
    def _headers(call: Call) -> dict[str, str] | None:
        if call.idempotency_key is None:
            return None
        # Hyperswitch v1 ignores it on /payments and /refunds; it is sent anyway (it
        # was validated as visible ASCII, so it cannot break the request) for proxies,
        # request logs and a future provider version. Ids do the real work.
        return {"idempotency-key": call.idempotency_key}

    def _request(self, call: Call) -> tuple[httpx.Request, float]:
        """The httpx request for ``call`` and the monotonic time its attempt must end."""
        seconds = call.timeout if call.timeout is not None else self.timeout
        headers = self._headers(call) or {}
        _tracing.inject(headers)  # traceparent, when the application traces
        request = self._http_client().build_request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            headers=headers or None,
            timeout=httpx.Timeout(seconds),
        )
        return request, time.monotonic() + seconds

    def _operation_span(
        self, flow: Generator[Any, Any, Any]
    ) -> contextlib.AbstractContextManager[Span | None]:
        """The span of one client call (``hyperswitch create_refund``), attempts inside it."""
        operation = getattr(flow, "__name__", "call")
        return _tracing.span(
            self._tracer,
            f"hyperswitch {operation}",
            {"veza.provider": "hyperswitch", "veza.operation": operation},
        )

    def _attempt_span(
        self, call: Call, attempt: int
    ) -> contextlib.AbstractContextManager[Span | None]:
        """An HTTP client span per attempt (semantic conventions; no key, no body)."""
        if self._tracer is None:  # without the extra: no attributes built on the hot path
            return contextlib.nullcontext()
        route = _ROUTE_IDS.sub(r"/\1/{id}", call.path)
        attributes: dict[str, str | int] = {
            "http.request.method": call.method,
            "url.full": self.base_url + call.path,
            "url.template": route,
            **self._server,
        }
        if attempt:
            attributes["http.request.resend_count"] = attempt
        return _tracing.span(self._tracer, f"{call.method} {route}", attributes, client=True)

    @staticmethod
    def _record_status(current: Span | None, reply: Reply) -> None:
        if current is not None:
            current.set_attribute("http.response.status_code", reply.status)
            if reply.status >= _HTTP_ERROR:
                current.set_attribute("error.type", str(reply.status))

    def _http_client(self) -> httpx.Client | httpx.AsyncClient:
        raise NotImplementedError

    @staticmethod
    def _reply(response: httpx.Response, body: bytes) -> Reply:
        # Only the headers the core reads: decoding all of them costs more than the rest.
        headers = {
            name: value
            for name in _REPLY_HEADERS
            if (value := response.headers.get(name)) is not None
        }
        return Reply(status=response.status_code, headers=headers, body=body)

    @staticmethod
    def _connection_error(call: Call, exc: Exception) -> APIConnectionError:
        return hyperswitch_error(APIConnectionError)(
            f"{call.method} {call.path}: {type(exc).__name__}: {exc}", status=None
        )


def _log_sleep(step: Sleep) -> None:
    logger.warning("retrying in %.2fs after %s", step.seconds, step.reason)


class HyperswitchClient(_ClientBase):
    """A Hyperswitch v1 client whose money-moving calls cannot double-charge.

    Every money-moving call takes the idempotency key first: the id of the row that
    stands for the operation (the order id for a payment, the refund row's id for a
    refund). The key becomes the provider's ``payment_id``/``refund_id``, so a retry,
    a double click or a restart after a crash finds the first attempt's object instead
    of creating another.

    Args:
        api_key: The Hyperswitch API key (never shown in ``repr`` or logs).
        base_url: API base; the hosted sandbox by default.
        timeout: Seconds one HTTP attempt may take in total: connect, send, and the
            whole response body (a server trickling bytes cannot stretch it).
        max_retries: Retries after the first attempt, or a full :class:`RetryPolicy`;
            its ``max_elapsed`` is the deadline of a whole call (attempts, waits and
            reads-back together).
        transport: An httpx transport (``httpx.MockTransport`` in your tests).
        idempotency_namespace: Up to 8 of ``[a-z0-9]`` prefixed to derived ids, so
            two services sharing a merchant account never collide.
        sleep: How to wait between retries (tests pass a fake clock).
        tracer_provider: OpenTelemetry tracer provider for spans (``veza-payments[otel]``);
            the global one by default, none recorded without the extra.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = SANDBOX_URL,
        timeout: float = 30.0,
        max_retries: int | RetryPolicy = 4,
        transport: httpx.BaseTransport | None = None,
        idempotency_namespace: str = "",
        sleep: Callable[[float], None] = time.sleep,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            idempotency_namespace=idempotency_namespace,
            tracer_provider=tracer_provider,
        )
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=transport,
            headers=self._default_headers(),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _http_client(self) -> httpx.Client:
        return self._http

    def _send(self, call: Call) -> Reply:
        """One attempt, over in ``call.timeout`` seconds whatever the server's pace.

        httpx's timeouts are per operation: a body trickled a byte at a time never
        trips a read timeout. httpcore reads the timeout mapping before every read,
        so the read timeout is lowered to what is left before each chunk, and the
        body is abandoned once the attempt's time is up.
        """
        request, ends = self._request(call)
        timeouts = request.extensions["timeout"]
        response = self._http.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                left = ends - time.monotonic()
                if left <= 0:
                    msg = "the attempt's time ran out while the body was arriving"
                    raise httpx.ReadTimeout(msg, request=request)
                timeouts["read"] = left
        finally:
            response.close()
        return self._reply(response, bytes(body))

    def _drive(self, flow: Generator[Call | Sleep, Reply | None, T]) -> T:
        with self._operation_span(flow):
            reply: Reply | None = None
            failure: APIConnectionError | None = None
            attempt = 0
            while True:
                try:
                    step = flow.send(reply) if failure is None else flow.throw(failure)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                reply, failure = None, None
                if isinstance(step, Sleep):
                    _log_sleep(step)
                    self._sleep(step.seconds)
                    continue
                with self._attempt_span(step, attempt) as current:
                    attempt += 1
                    try:
                        reply = self._send(step)
                    except httpx.RequestError as exc:
                        failure = self._connection_error(step, exc)
                        if current is not None:
                            current.set_attribute("error.type", type(exc).__name__)
                    else:
                        self._record_status(current, reply)

    def create_payment(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        confirm: bool = False,
        capture_method: str | None = None,
        customer_id: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        return_url: str | None = None,
    ) -> Payment:
        """Create a payment, or return the one an earlier attempt of this call created.

        Raises:
            MissingIdempotencyKeyError: ``idempotency_key`` is empty, blank or ``None``.
            InvalidIdempotencyKeyError: The key is outside the documented alphabet.
            IdempotencyConflictError: The key was used for a different amount or currency.
            UnexpectedResponseError: A 2xx whose body is not a payment, and no payment
                under the id when read back.
            HyperswitchError: The provider refused and holds no payment under the id.
        """
        return self._drive(
            self._core.create_payment(
                idempotency_key,
                amount=amount,
                currency=currency,
                confirm=confirm,
                capture_method=capture_method,
                customer_id=customer_id,
                description=description,
                metadata=metadata,
                return_url=return_url,
            )
        )

    def capture_payment(
        self, idempotency_key: str, payment_id: str, *, amount_to_capture: int | None = None
    ) -> Payment:
        """Capture an authorised payment; "already captured" after a lost reply is success."""
        return self._drive(
            self._core.capture_payment(
                idempotency_key, payment_id, amount_to_capture=amount_to_capture
            )
        )

    def cancel_payment(
        self, idempotency_key: str, payment_id: str, *, reason: str | None = None
    ) -> Payment:
        """Cancel (void) a payment; "already cancelled" after a lost reply is success."""
        return self._drive(self._core.cancel_payment(idempotency_key, payment_id, reason=reason))

    def create_refund(
        self,
        idempotency_key: str,
        *,
        payment_id: str,
        amount: int | None = None,
        reason: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Refund ``amount``, or return the refund an earlier attempt of this call made.

        ``amount=None`` refunds the amount captured, as the router does; once anything
        was refunded, pass the remainder explicitly (the router answers ``IR_13``).

        Raises:
            MissingIdempotencyKeyError: ``idempotency_key`` is empty, blank or ``None``.
            InvalidIdempotencyKeyError: The key is outside the documented alphabet.
            IdempotencyConflictError: The key was used for another payment or amount.
            HyperswitchError: The provider refused and holds no refund under the id.
        """
        return self._drive(
            self._core.create_refund(
                idempotency_key,
                payment_id=payment_id,
                amount=amount,
                reason=reason,
                metadata=metadata,
            )
        )

    def retrieve_payment(self, payment_id: str, *, force_sync: bool = False) -> Payment:
        """Read a payment; ``force_sync`` asks the connector for its latest status."""
        return self._drive(self._core.retrieve_payment(payment_id, force_sync=force_sync))

    def retrieve_refund(self, refund_id: str) -> Refund:
        """Read a refund (pending refunds send no webhook: poll them)."""
        return self._drive(self._core.retrieve_refund(refund_id))


class AsyncHyperswitchClient(_ClientBase):
    """The asyncio twin of :class:`HyperswitchClient` (same arguments, same behaviour).

    Args:
        api_key: The Hyperswitch API key (never shown in ``repr`` or logs).
        base_url: API base; the hosted sandbox by default.
        timeout: Seconds one HTTP attempt may take in total (connect, send, body).
        max_retries: Retries after the first attempt, or a full :class:`RetryPolicy`;
            its ``max_elapsed`` is the deadline of a whole call.
        transport: An httpx async transport.
        idempotency_namespace: Up to 8 of ``[a-z0-9]`` prefixed to derived ids.
        sleep: How to wait between retries (a coroutine function).
        tracer_provider: OpenTelemetry tracer provider for spans (``veza-payments[otel]``).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = SANDBOX_URL,
        timeout: float = 30.0,
        max_retries: int | RetryPolicy = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        idempotency_namespace: str = "",
        sleep: Callable[[float], Any] = asyncio.sleep,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            idempotency_namespace=idempotency_namespace,
            tracer_provider=tracer_provider,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=transport,
            headers=self._default_headers(),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _http_client(self) -> httpx.AsyncClient:
        return self._http

    async def _send(self, call: Call) -> Reply:
        """One attempt, over in ``call.timeout`` seconds (connect, write, whole body)."""
        request, ends = self._request(call)
        try:
            async with asyncio.timeout(ends - time.monotonic()):
                response = await self._http.send(request)
        except TimeoutError as exc:
            msg = "the attempt's time ran out"
            raise httpx.ReadTimeout(msg, request=request) from exc
        return self._reply(response, response.content)

    async def _drive(self, flow: Generator[Call | Sleep, Reply | None, T]) -> T:
        with self._operation_span(flow):
            reply: Reply | None = None
            failure: APIConnectionError | None = None
            attempt = 0
            while True:
                try:
                    step = flow.send(reply) if failure is None else flow.throw(failure)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                reply, failure = None, None
                if isinstance(step, Sleep):
                    _log_sleep(step)
                    await self._sleep(step.seconds)
                    continue
                with self._attempt_span(step, attempt) as current:
                    attempt += 1
                    try:
                        reply = await self._send(step)
                    except httpx.RequestError as exc:
                        failure = self._connection_error(step, exc)
                        if current is not None:
                            current.set_attribute("error.type", type(exc).__name__)
                    else:
                        self._record_status(current, reply)

    async def create_payment(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        confirm: bool = False,
        capture_method: str | None = None,
        customer_id: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        return_url: str | None = None,
    ) -> Payment:
        """Create a payment, or return the one an earlier attempt of this call created."""
        return await self._drive(
            self._core.create_payment(
                idempotency_key,
                amount=amount,
                currency=currency,
                confirm=confirm,
                capture_method=capture_method,
                customer_id=customer_id,
                description=description,
                metadata=metadata,
                return_url=return_url,
            )
        )

    async def capture_payment(
        self, idempotency_key: str, payment_id: str, *, amount_to_capture: int | None = None
    ) -> Payment:
        """Capture an authorised payment; "already captured" after a lost reply is success."""
        return await self._drive(
            self._core.capture_payment(
                idempotency_key, payment_id, amount_to_capture=amount_to_capture
            )
        )

    async def cancel_payment(
        self, idempotency_key: str, payment_id: str, *, reason: str | None = None
    ) -> Payment:
        """Cancel (void) a payment; "already cancelled" after a lost reply is success."""
        return await self._drive(
            self._core.cancel_payment(idempotency_key, payment_id, reason=reason)
        )

    async def create_refund(
        self,
        idempotency_key: str,
        *,
        payment_id: str,
        amount: int | None = None,
        reason: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Refund ``amount`` (``None``: the full amount), or return the earlier attempt's."""
        return await self._drive(
            self._core.create_refund(
                idempotency_key,
                payment_id=payment_id,
                amount=amount,
                reason=reason,
                metadata=metadata,
            )
        )

    async def retrieve_payment(self, payment_id: str, *, force_sync: bool = False) -> Payment:
        """Read a payment; ``force_sync`` asks the connector for its latest status."""
        return await self._drive(self._core.retrieve_payment(payment_id, force_sync=force_sync))

    async def retrieve_refund(self, refund_id: str) -> Refund:
        """Read a refund (pending refunds send no webhook: poll them)."""
        return await self._drive(self._core.retrieve_refund(refund_id))
