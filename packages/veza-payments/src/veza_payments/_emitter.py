"""``WebhookEmitter``: what Hyperswitch does after a status change, for your own tests.

A :class:`~veza_payments.testing.FakeHyperswitch` answers API calls; a real Hyperswitch
also *calls you*: when a payment or refund changes status it POSTs a signed webhook to
your endpoint, retries while you answer an error, may deliver the same event more than
once and does not promise the order. The emitter reproduces that on top of the fake, so
an integrator's test drives their real webhook endpoint over real HTTP, signed with the
payment response hash key exactly as Hyperswitch signs (HMAC-SHA512 of the raw body,
``X-Webhook-Signature-512``).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import attrs
import httpx

from veza_payments._compat import positional_deprecated
from veza_payments._fake_hyperswitch import FakeHyperswitch

_log = logging.getLogger("veza_payments.testing")

PAYMENT_EVENTS: Mapping[str, str] = {
    "succeeded": "payment_succeeded",
    "failed": "payment_failed",
    "cancelled": "payment_cancelled",
}
"""Payment status → the event Hyperswitch sends for it (other statuses send none)."""
REFUND_EVENTS: Mapping[str, str] = {"succeeded": "refund_succeeded", "failed": "refund_failed"}
"""Refund status → its event (a ``pending`` refund sends none: poll it)."""


@attrs.frozen
class Delivery:
    """One POST the emitter made.

    Attributes:
        event_id: The event's ``event_id`` (the same on every copy and retry).
        event_type: ``payment_succeeded``, ``refund_failed``…
        status: The HTTP status your endpoint answered (0: no answer, connection error).
        attempt: 1 for the first POST of this copy, 2 for its first retry…
    """

    event_id: str
    event_type: str
    status: int
    attempt: int

    @property
    def ok(self) -> bool:
        """Whether the endpoint accepted it (2xx), which stops the retries."""
        return 200 <= self.status < 300


@attrs.define
class _Queued:
    event_id: str
    event_type: str
    body: bytes
    attempts: int = 0


class WebhookEmitter:
    """Signs and delivers Hyperswitch webhooks to ``url`` for a fake's status changes.

    Each :meth:`tick` looks at the fake's payments and refunds, queues one event per
    status change that Hyperswitch reports (see :data:`PAYMENT_EVENTS`,
    :data:`REFUND_EVENTS`), then POSTs the queue; an answer outside 2xx (or no answer)
    keeps the event queued for the next tick, up to ``max_attempts`` POSTs, as
    Hyperswitch retries. :meth:`start` ticks in a daemon thread every ``interval``
    seconds; tests that want determinism call :meth:`tick` themselves.

    Delivery is *at least once and unordered* on purpose, because that is what a
    provider promises, and an endpoint that only works with one ordered delivery per
    event fails in production:

    * ``duplicates=n`` delivers every event ``1 + n`` times (same ``event_id``, same
      body, separately signed requests), as Hyperswitch does after a timeout;
    * ``reorder=True`` shuffles each tick's queue (``seed`` makes it repeatable), so
      ``refund_succeeded`` may arrive before ``payment_succeeded`` when both are due.

    Args:
        hyperswitch: The fake whose objects are watched (started by you).
        url: Your webhook endpoint.
        key: The payment response hash key your endpoint verifies with.
        interval: Seconds between ticks of :meth:`start`'s thread.
        duplicates: Extra copies of every event.
        reorder: Shuffle the order of each tick's deliveries.
        seed: Seed of the shuffle (``None``: a random one).
        max_attempts: POSTs per copy before giving up on it.
        timeout: Seconds to wait for your endpoint's answer.

    Example:
        >>> from veza_payments.testing import FakeHyperswitch, WebhookEmitter
        >>> with FakeHyperswitch() as fake:
        ...     emitter = WebhookEmitter(fake, "http://127.0.0.1:9/webhooks", key="whsec")
        ...     emitter.emit("payment_succeeded", {"payment_id": "pay_1"}, event_id="evt_1")
        ...     emitter.pending
        1
    """

    @positional_deprecated
    def __init__(
        self,
        hyperswitch: FakeHyperswitch,
        url: str,
        *,
        key: str,
        interval: float = 0.2,
        duplicates: int = 0,
        reorder: bool = False,
        seed: int | None = None,
        max_attempts: int = 20,
        timeout: float = 5.0,
    ) -> None:
        if duplicates < 0 or max_attempts < 1 or interval <= 0:
            msg = "duplicates must be >= 0, max_attempts >= 1 and interval > 0"
            raise ValueError(msg)
        self.hyperswitch = hyperswitch
        self.url = url
        self._key = key
        self.interval = interval
        self.duplicates = duplicates
        self.reorder = reorder
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._random = random.Random(seed)
        self._seen: dict[str, str] = {}
        self._pending: list[_Queued] = []
        self._lock = threading.Lock()  # guards _seen, _pending and delivered
        self._ticking = threading.Lock()  # one tick at a time (thread and caller)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered: list[Delivery] = []
        """Every POST made, in order (read it after :meth:`wait_idle`)."""
        self.given_up: list[Delivery] = []
        """The last failed POST of each copy that ran out of attempts."""

    def __repr__(self) -> str:
        return (
            f"WebhookEmitter(url={self.url!r}, duplicates={self.duplicates}, "
            f"reorder={self.reorder}, pending={self.pending})"
        )

    @property
    def pending(self) -> int:
        """Copies waiting for delivery (or for a retry)."""
        with self._lock:
            return len(self._pending)

    def emit(self, event_type: str, obj: Mapping[str, Any], *, event_id: str | None = None) -> str:
        """Queue an event you choose (disputes, mandates…); returns its ``event_id``.

        It is delivered on the next tick, with the same duplicates and retries as the
        events the emitter finds itself.
        """
        body = self.hyperswitch.webhook_body(event_type, obj, event_id=event_id)
        event_id = str(json.loads(body)["event_id"])
        with self._lock:
            self._queue(event_id, event_type, body)
        return event_id

    def _queue(self, event_id: str, event_type: str, body: bytes) -> None:
        self._pending.extend(
            _Queued(event_id, event_type, body) for _ in range(1 + self.duplicates)
        )

    def _observe(self) -> None:
        with self.hyperswitch.lock:
            payments = {k: dict(v) for k, v in self.hyperswitch.payments.items()}
            refunds = {k: dict(v) for k, v in self.hyperswitch.refunds.items()}
        with self._lock:
            for kind, objects, events in (
                ("payment", payments, PAYMENT_EVENTS),
                ("refund", refunds, REFUND_EVENTS),
            ):
                for object_id, obj in objects.items():
                    seen_key = f"{kind}:{object_id}"
                    status = str(obj.get("status"))
                    if self._seen.get(seen_key) == status:
                        continue
                    self._seen[seen_key] = status
                    if status in events:
                        event_id = f"evt_{kind}_{object_id}_{status}"
                        body = self.hyperswitch.webhook_body(events[status], obj, event_id=event_id)
                        self._queue(event_id, events[status], body)

    def tick(self) -> list[Delivery]:
        """One pass: queue events for changed objects, POST the queue; returns the POSTs."""
        with self._ticking:
            self._observe()
            with self._lock:
                batch, self._pending = self._pending, []
            if self.reorder:
                self._random.shuffle(batch)
            made: list[Delivery] = []
            retry: list[_Queued] = []
            for item in batch:
                try:
                    status = self.hyperswitch.deliver_webhook(
                        self.url, self._key, body=item.body, timeout=self.timeout
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                item.attempts += 1
                delivery = Delivery(item.event_id, item.event_type, status, item.attempts)
                made.append(delivery)
                if not delivery.ok:
                    if item.attempts < self.max_attempts:
                        retry.append(item)
                    else:
                        with self._lock:
                            self.given_up.append(delivery)
            with self._lock:
                self.delivered.extend(made)
                self._pending[:0] = retry  # retries go before what was queued meanwhile
            return made

    def start(self) -> Self:
        """Tick every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="webhook-emitter", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (the fake keeps running: it is yours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.timeout + 1))
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a test double keeps retrying, as the provider does
                _log.exception("webhook emitter tick failed")

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued and no tick is running; ``False`` on timeout.

        With the thread running, a status change made just before the call is found
        by the next tick: call :meth:`tick` first to be sure it is queued.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._ticking.locked() and not self.pending:
                return True
            time.sleep(0.02)
        return False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
