"""Stripe Connect money movement: transfers, reversals, payouts, backfill search.

:class:`StripeConnect` and :class:`AsyncStripeConnect` are thin drivers of one core
(``_stripe_core.py``): they call stripe-python, sleep and trace; the keys, parameters,
retries, error mapping and paging are decided there once.

Built on the official ``stripe`` package through its own :class:`stripe.StripeClient`
(never the module's global ``stripe.api_key``), so two clients with two keys can live
in one process. Every money-moving call takes a mandatory, deterministic idempotency
key: the caller's row id. Stripe replays a request that reuses a key for 24 hours,
so a retry after a lost response returns the first transfer instead of paying twice;
``stripe``'s own auto-generated keys only cover its internal retries, not a worker
restarted after a crash.

The key sent to Stripe is ``<namespace>:<operation>:<key>``: the same row id may key
a transfer and, later, its reversal. The row id is also written to the object's
metadata (``veza_idempotency_key``), which is what :meth:`StripeConnect.find_transfers`
matches when backfilling transfers whose id was never recorded, and the last line of
defence after Stripe forgets a key (24 hours).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from functools import reduce
from types import ModuleType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from veza_payments import _tracing
from veza_payments._core import Sleep
from veza_payments._errors import PaymentsConfigurationError
from veza_payments._ids import is_blank, is_count
from veza_payments._retry import RetryPolicy
from veza_payments._stripe_core import (
    MAX_KEY,
    METADATA_KEY,
    Emit,
    Invoke,
    Operation,
    Outcome,
    Pages,
    Payout,
    Request,
    StripeCore,
    Transfer,
    TransferReversal,
    map_stripe_error,
)

if TYPE_CHECKING:
    import stripe
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "MAX_KEY",
    "METADATA_KEY",
    "AsyncStripeConnect",
    "Payout",
    "StripeConnect",
    "Transfer",
    "TransferReversal",
    "map_stripe_error",
]

T = TypeVar("T")


def _stripe_module() -> ModuleType:
    try:
        import stripe
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        msg = "StripeConnect needs the stripe extra: pip install 'veza-payments[stripe]'"
        raise PaymentsConfigurationError(msg) from exc
    return stripe


def _policy(max_retries: int | RetryPolicy) -> RetryPolicy:
    if isinstance(max_retries, RetryPolicy):
        return max_retries
    if is_count(max_retries):
        return RetryPolicy(total=max_retries)
    msg = f"max_retries must be a non-negative int or a RetryPolicy, got {max_retries!r}"
    raise PaymentsConfigurationError(msg)


class _ConnectBase:
    """Configuration, ``repr`` and tracing shared by the sync and the async client."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None,
        max_retries: int | RetryPolicy,
        idempotency_namespace: str,
        tracer_provider: TracerProvider | None,
    ) -> None:
        _stripe_module()
        if is_blank(api_key):
            msg = "api_key is required (the platform's Stripe secret key)"
            raise PaymentsConfigurationError(msg)
        self._core = StripeCore(_policy(max_retries), idempotency_namespace)
        self.base_url = base_url
        self._tracer = _tracing.tracer(tracer_provider)
        self._server = urllib.parse.urlsplit(base_url or "https://api.stripe.com").hostname or ""

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of one call."""
        return self._core.retry

    @property
    def idempotency_namespace(self) -> str:
        """The prefix of every key sent (empty: none)."""
        return self._core.idempotency_namespace

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"idempotency_namespace={self.idempotency_namespace!r}, api_key=<hidden>)"
        )

    def stripe_key(self, operation: str, idempotency_key: str) -> str:
        """The ``Idempotency-Key`` sent for ``operation`` (``transfer``, ``reversal``, …)."""
        return self._core.stripe_key(operation, idempotency_key)

    def _span(self, what: str) -> contextlib.AbstractContextManager[Span | None]:
        attributes = {"veza.provider": "stripe", "veza.operation": what}
        return _tracing.span(
            self._tracer,
            f"stripe {what}",
            {**attributes, "server.address": self._server},
            client=True,
        )

    @staticmethod
    def _method(
        client: stripe.StripeClient, invoke: Invoke, suffix: str = ""
    ) -> Callable[..., Any]:
        service = reduce(getattr, invoke.service, client.v1)
        method: Callable[..., Any] = getattr(service, invoke.method + suffix)
        return method

    @staticmethod
    def _options(invoke: Invoke) -> dict[str, Any]:
        return {} if invoke.options is None else {"options": dict(invoke.options)}

    @staticmethod
    def _failed(current: Span | None, exc: Exception) -> Outcome:
        if current is not None:
            current.add_event("attempt failed", {"error.type": type(exc).__name__})
        return Outcome(error=exc)


class StripeConnect(_ConnectBase):
    """Transfers, reversals and payouts on Stripe Connect that cannot pay twice.

    Built on the official ``stripe`` package through its own :class:`stripe.StripeClient`
    (never the module's global ``stripe.api_key``). :class:`AsyncStripeConnect` is its
    asyncio twin.

    Args:
        api_key: The platform's secret key (never shown in ``repr`` or logs).
        base_url: API base (tests point it at a local fake); Stripe's by default.
        timeout: Seconds per HTTP attempt.
        max_retries: Retries after the first attempt, or a :class:`RetryPolicy`.
            Retries reuse the key, so Stripe replays instead of repeating.
        idempotency_namespace: Up to 8 of ``[a-z0-9]`` prefixed to every key.
        client: A ready ``stripe.StripeClient`` (then ``base_url``/``timeout`` are unused).
        sleep: How to wait between retries.
        tracer_provider: OpenTelemetry tracer provider for spans (``veza-payments[otel]``);
            the global one by default, none recorded without the extra.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int | RetryPolicy = 4,
        idempotency_namespace: str = "",
        client: stripe.StripeClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            max_retries=max_retries,
            idempotency_namespace=idempotency_namespace,
            tracer_provider=tracer_provider,
        )
        stripe = _stripe_module()
        self._sleep = sleep
        self._http: Any = None
        if client is None:
            self._http = stripe.RequestsClient(timeout=timeout)
            addresses: Any = {"api": base_url.rstrip("/")} if base_url else None
            client = stripe.StripeClient(
                api_key, base_addresses=addresses, max_network_retries=0, http_client=self._http
            )
        self._client = client

    def close(self) -> None:
        """Close the HTTP connections this object opened."""
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ driving

    def _perform(self, request: Request) -> object:
        """One call with its retries, in one span."""
        with self._span(request.what) as current:
            attempts = self._core.attempts(request)
            step = next(attempts)
            while True:
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                    outcome = Outcome()  # the core ignores what a Sleep is answered with
                else:
                    try:
                        value = self._method(self._client, step)(*step.args, **self._options(step))
                        outcome = Outcome(value=value)
                    except Exception as exc:  # noqa: BLE001 - the core maps or re-raises it
                        outcome = self._failed(current, exc)
                try:
                    step = attempts.send(outcome)
                except StopIteration as stop:
                    return stop.value

    def _run(self, operation: Operation[T]) -> T:
        try:
            request = next(operation)
            while True:
                request = operation.send(self._perform(request))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _iterate(self, pages: Pages) -> Iterator[Any]:
        sent: Any = None
        while True:
            try:
                step = pages.send(sent)
            except StopIteration:
                return
            if isinstance(step, Emit):
                yield from step.items
                sent = None
            else:
                sent = self._perform(step)

    # ------------------------------------------------------------------ transfers

    def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
        source_transaction: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Transfer:
        """Move ``amount`` to a connected account, once per key.

        Raises:
            MissingIdempotencyKeyError: No key (before any I/O).
            IdempotencyConflictError: The key was used with different parameters.
            StripeError: Any other Stripe failure (every error here is a ``StripeError``).
        """
        return self._run(
            self._core.create_transfer(
                idempotency_key,
                amount=amount,
                currency=currency,
                destination=destination,
                transfer_group=transfer_group,
                source_transaction=source_transaction,
                metadata=metadata,
            )
        )

    def reverse_transfer(
        self,
        idempotency_key: str,
        transfer_id: str,
        *,
        amount: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TransferReversal:
        """Reverse ``amount`` (``None``: all that remains) of a transfer, once per key."""
        return self._run(
            self._core.reverse_transfer(
                idempotency_key, transfer_id, amount=amount, metadata=metadata
            )
        )

    def retrieve_transfer(self, transfer_id: str) -> Transfer:
        """Read one transfer."""
        return self._run(self._core.retrieve_transfer(transfer_id))

    def list_reversals(
        self, transfer_id: str, *, page_size: int = 100
    ) -> Iterator[TransferReversal]:
        """Every reversal of a transfer, newest first, paging past Stripe's embedded 10.

        A transfer object carries only its 10 most recent reversals; an older one (the
        one a lost call made, looked up a day later) is only reached through
        ``GET /v1/transfers/{id}/reversals`` with ``limit`` and ``starting_after``.

        Args:
            transfer_id: The transfer (``tr_…``).
            page_size: Reversals per request (Stripe allows 1 to 100).
        """
        pages = self._core.list_reversals(transfer_id, page_size=page_size)
        return self._iterate(pages)

    def find_transfers(
        self,
        *,
        destination: str | None = None,
        transfer_group: str | None = None,
        created: int | Mapping[str, int] | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> Iterator[Transfer]:
        """Page through transfers, filtering on ``metadata`` client-side.

        Stripe cannot filter transfers by metadata (no list filter, no search), so
        every page matching the server-side filters (``destination``,
        ``transfer_group``, ``created``: an exact time or ``{"gte": …, "lt": …}``) is
        read and the metadata match happens here. Narrow with ``created`` when
        backfilling a large account.

        Yields:
            Transfers, newest first, whose metadata contains every ``metadata`` item.
        """
        return self._iterate(
            self._core.find_transfers(
                destination=destination,
                transfer_group=transfer_group,
                created=created,
                metadata=metadata,
                page_size=page_size,
            )
        )

    # ------------------------------------------------------------------ payouts

    def create_payout(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        stripe_account: str,
        method: str | None = None,
        description: str | None = None,
        statement_descriptor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Payout:
        """Pay a connected account's balance out to its bank, once per key."""
        return self._run(
            self._core.create_payout(
                idempotency_key,
                amount=amount,
                currency=currency,
                stripe_account=stripe_account,
                method=method,
                description=description,
                statement_descriptor=statement_descriptor,
                metadata=metadata,
            )
        )

    def find_payouts(
        self,
        *,
        stripe_account: str,
        created: int | Mapping[str, int] | None = None,
        status: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> Iterator[Payout]:
        """Page through a connected account's payouts, filtering ``metadata`` here.

        The list is read on the connected account (``Stripe-Account`` header), where
        :meth:`create_payout` made them. Stripe cannot filter payouts by metadata, so
        narrow with ``created`` (an exact time or ``{"gte": …, "lt": …}``).

        Yields:
            Payouts, newest first, whose metadata contains every ``metadata`` item.
        """
        return self._iterate(
            self._core.find_payouts(
                stripe_account=stripe_account,
                created=created,
                status=status,
                metadata=metadata,
                page_size=page_size,
            )
        )


class AsyncStripeConnect(_ConnectBase):
    """The asyncio twin of :class:`StripeConnect` (same arguments, same behaviour).

    stripe-python's own async methods (``create_async``, …) over an ``httpx.AsyncClient``
    transport, so no call blocks the event loop; the keys, retries,
    error mapping and paging are the sync client's, from one core. Paged reads are
    async iterators (``async for t in connect.find_transfers(...)``).

    Args:
        api_key: The platform's secret key (never shown in ``repr`` or logs).
        base_url: API base (tests point it at a local fake); Stripe's by default.
        timeout: Seconds per HTTP attempt.
        max_retries: Retries after the first attempt, or a :class:`RetryPolicy`.
        idempotency_namespace: Up to 8 of ``[a-z0-9]`` prefixed to every key.
        client: A ready ``stripe.StripeClient`` whose HTTP client implements
            ``request_async``; then ``base_url``/``timeout`` are unused.
        sleep: How to wait between retries (a coroutine function).
        tracer_provider: OpenTelemetry tracer provider for spans (``veza-payments[otel]``).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int | RetryPolicy = 4,
        idempotency_namespace: str = "",
        client: stripe.StripeClient | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            max_retries=max_retries,
            idempotency_namespace=idempotency_namespace,
            tracer_provider=tracer_provider,
        )
        stripe = _stripe_module()
        from veza_payments._stripe_httpx import AsyncHTTPXTransport  # noqa: PLC0415 - needs stripe

        self._sleep = sleep
        self._http: Any = None
        if client is None:
            self._http = AsyncHTTPXTransport(timeout=timeout)
            addresses: Any = {"api": base_url.rstrip("/")} if base_url else None
            client = stripe.StripeClient(
                api_key, base_addresses=addresses, max_network_retries=0, http_client=self._http
            )
        self._client = client

    async def aclose(self) -> None:
        """Close the HTTP connections this object opened."""
        if self._http is not None:
            await self._http.close_async()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ driving

    async def _perform(self, request: Request) -> object:
        """One call with its retries, in one span."""
        with self._span(request.what) as current:
            attempts = self._core.attempts(request)
            step = next(attempts)
            while True:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    outcome = Outcome()  # the core ignores what a Sleep is answered with
                else:
                    try:
                        value = await self._method(self._client, step, "_async")(
                            *step.args, **self._options(step)
                        )
                        outcome = Outcome(value=value)
                    except Exception as exc:  # noqa: BLE001 - the core maps or re-raises it
                        outcome = self._failed(current, exc)
                try:
                    step = attempts.send(outcome)
                except StopIteration as stop:
                    return stop.value

    async def _run(self, operation: Operation[T]) -> T:
        try:
            request = next(operation)
            while True:
                request = operation.send(await self._perform(request))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _iterate(self, pages: Pages) -> AsyncIterator[Any]:
        sent: Any = None
        while True:
            try:
                step = pages.send(sent)
            except StopIteration:
                return
            if isinstance(step, Emit):
                for item in step.items:
                    yield item
                sent = None
            else:
                sent = await self._perform(step)

    # ------------------------------------------------------------------ transfers

    async def create_transfer(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        destination: str,
        transfer_group: str | None = None,
        source_transaction: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Transfer:
        """:meth:`StripeConnect.create_transfer`, awaited."""
        return await self._run(
            self._core.create_transfer(
                idempotency_key,
                amount=amount,
                currency=currency,
                destination=destination,
                transfer_group=transfer_group,
                source_transaction=source_transaction,
                metadata=metadata,
            )
        )

    async def reverse_transfer(
        self,
        idempotency_key: str,
        transfer_id: str,
        *,
        amount: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TransferReversal:
        """:meth:`StripeConnect.reverse_transfer`, awaited."""
        return await self._run(
            self._core.reverse_transfer(
                idempotency_key, transfer_id, amount=amount, metadata=metadata
            )
        )

    async def retrieve_transfer(self, transfer_id: str) -> Transfer:
        """:meth:`StripeConnect.retrieve_transfer`, awaited."""
        return await self._run(self._core.retrieve_transfer(transfer_id))

    def list_reversals(
        self, transfer_id: str, *, page_size: int = 100
    ) -> AsyncIterator[TransferReversal]:
        """:meth:`StripeConnect.list_reversals` as an async iterator."""
        return self._iterate(self._core.list_reversals(transfer_id, page_size=page_size))

    def find_transfers(
        self,
        *,
        destination: str | None = None,
        transfer_group: str | None = None,
        created: int | Mapping[str, int] | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Transfer]:
        """:meth:`StripeConnect.find_transfers` as an async iterator."""
        return self._iterate(
            self._core.find_transfers(
                destination=destination,
                transfer_group=transfer_group,
                created=created,
                metadata=metadata,
                page_size=page_size,
            )
        )

    # ------------------------------------------------------------------ payouts

    async def create_payout(
        self,
        idempotency_key: str,
        *,
        amount: int,
        currency: str,
        stripe_account: str,
        method: str | None = None,
        description: str | None = None,
        statement_descriptor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Payout:
        """:meth:`StripeConnect.create_payout`, awaited."""
        return await self._run(
            self._core.create_payout(
                idempotency_key,
                amount=amount,
                currency=currency,
                stripe_account=stripe_account,
                method=method,
                description=description,
                statement_descriptor=statement_descriptor,
                metadata=metadata,
            )
        )

    def find_payouts(
        self,
        *,
        stripe_account: str,
        created: int | Mapping[str, int] | None = None,
        status: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Payout]:
        """:meth:`StripeConnect.find_payouts` as an async iterator."""
        return self._iterate(
            self._core.find_payouts(
                stripe_account=stripe_account,
                created=created,
                status=status,
                metadata=metadata,
                page_size=page_size,
            )
        )
