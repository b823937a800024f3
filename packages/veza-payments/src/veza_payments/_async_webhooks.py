"""The asyncio twin of :class:`~veza_payments.WebhookIntake`, shaped like the clients.

The family's async idiom is a twin class with the same constructor whose methods have
the same names, awaited (``AsyncHyperswitchClient``, ``AsyncStripeConnect``), so
:class:`AsyncWebhookIntake` has ``handle`` and ``handle_stream``. It holds a
:class:`WebhookIntake` and shares all of its logic: the body is read on the event
loop (an async iterable), and every synchronous step (parsing headers, verification,
the handler, the forensic log write, which is a SQL insert with veza-ledger's log) runs
in a worker thread, so the loop never waits on them. ``WebhookIntake.ahandle`` and
``ahandle_stream`` stay: they are the same code for callers holding a sync intake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, Callable
from typing import overload

from veza_payments._signatures import HYPERSWITCH_RETRY_WINDOW, Keys
from veza_payments._webhooks import (
    MAX_BODY,
    MAX_HEADERS,
    H,
    Handler,
    RawHeaders,
    WebhookIntake,
    WebhookLog,
    WebhookOutcome,
)


class AsyncWebhookIntake:
    """Verify, dispatch, dedupe and log webhook deliveries without blocking the loop.

    Args:
        log: Where records go (:class:`InMemoryWebhookLog`, veza-ledger's SQL log);
            written from a worker thread.
        keys: The payment response hash key(s); several during a rotation.
        stripe_compatible: Also accept ``Stripe-Signature`` (Hyperswitch's Stripe mode).
        stripe_tolerance: Seconds the Stripe-mode ``t`` may be off.
        max_body: Bytes above which a delivery is refused with 413.
        max_headers: Header bytes above which it is refused with 431.
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
        self.intake = WebhookIntake(
            log,
            keys,
            stripe_compatible=stripe_compatible,
            stripe_tolerance=stripe_tolerance,
            max_body=max_body,
            max_headers=max_headers,
            clock=clock,
        )
        """The synchronous intake holding the configuration, handlers and logic."""

    def __repr__(self) -> str:
        return f"Async{self.intake!r}"

    @property
    def log(self) -> WebhookLog:
        """Where records go."""
        return self.intake.log

    @overload
    def on(self, event_type: str, handler: None = None) -> Callable[[H], H]: ...

    @overload
    def on(self, event_type: str, handler: H) -> H: ...

    def on(self, event_type: str, handler: Handler | None = None) -> Handler | Callable[[H], H]:
        """Register a (synchronous) handler: :meth:`WebhookIntake.on`.

        Handlers run in the worker thread with the log write, so they may do blocking
        I/O (a SQL transaction) without holding the event loop.
        """
        return self.intake.on(event_type, handler)

    def handler_for(self, event_type: str) -> Handler | None:
        """The handler that would process ``event_type`` (``None``: it is skipped)."""
        return self.intake.handler_for(event_type)

    async def handle(
        self,
        headers: RawHeaders,
        body: bytes | bytearray | memoryview,
        *,
        source_ip: str | None = None,
    ) -> WebhookOutcome:
        """:meth:`WebhookIntake.handle`, awaited; never raises (the worst is a 500)."""
        return await self.intake.ahandle(headers, body, source_ip=source_ip)

    async def handle_stream(
        self,
        headers: RawHeaders,
        chunks: AsyncIterable[bytes],
        *,
        source_ip: str | None = None,
    ) -> WebhookOutcome:
        """:meth:`WebhookIntake.handle_stream` over an async body (``request.stream()``).

        The body is read on the loop up to ``max_body``; the rest runs in a thread.
        """
        return await self.intake.ahandle_stream(headers, chunks, source_ip=source_ip)
