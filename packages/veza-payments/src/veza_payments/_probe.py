"""Does my payments configuration work? Ask the providers and the webhook endpoint.

Each check has a known right answer and touches no money:

* ``hyperswitch_key``: ``GET /payments/<probe id>`` with the API key. The router
  authenticates before it looks anything up, so ``404`` (``HE_02``, no such payment)
  means the key was accepted and ``401`` (``IR_01``) that it was refused.
* ``stripe_key`` (when ``STRIPE_SECRET_KEY`` is set): ``GET /v1/balance``, Stripe's
  cheapest read: ``200`` accepted, ``401`` refused.
* ``webhook_signed`` (with a webhook URL): a self-test delivery signed with the first
  ``HYPERSWITCH_WEBHOOK_KEYS`` key must be acknowledged (2xx). Its event type,
  ``veza_probe``, is none of the router's, so an intake records it and acts on nothing.
* ``webhook_forged``: the same delivery signed with a random key must be refused
  (401, 400 or 403). An endpoint that acknowledges it does not check signatures.
* ``clock_skew``: the difference between this host's clock and the providers' (their
  ``Date`` header, one-second resolution). Webhook timestamps, token expiries and
  ephemeral TURN credentials all assume clocks within seconds of each other.

Never a secret in the report: keys are sent, not shown; bodies are not kept.
"""

from __future__ import annotations

import email.utils
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

import attrs
import httpx

from veza_payments import _tracing
from veza_payments._config import PaymentsConfig
from veza_payments._signatures import SIGNATURE_HEADER, sign_payload

if TYPE_CHECKING:  # the [otel] extra's types; never imported at run time
    from opentelemetry.trace import TracerProvider

CheckName = Literal[
    "hyperswitch_key", "stripe_key", "webhook_signed", "webhook_forged", "clock_skew"
]
PROBE_EVENT_TYPE: Final = "veza_probe"
"""The self-test delivery's event type: not one the router sends, so nothing acts on it."""
STRIPE_API: Final = "https://api.stripe.com"

_OK = 200
_NOT_FOUND = 404
_UNAUTHORIZED = 401
_REFUSALS = frozenset({400, 401, 403})
_SUCCESS = range(200, 300)


@attrs.frozen
class PaymentsCheck:
    """One check of the payments probe.

    Attributes:
        name: ``hyperswitch_key``, ``stripe_key``, ``webhook_signed``,
            ``webhook_forged`` or ``clock_skew``.
        ok: Whether the answer was the right one.
        status: The HTTP status behind it, when there was one.
        detail: For a human: what the answer means and what to do.
    """

    name: CheckName
    ok: bool
    status: int | None
    detail: str


@attrs.frozen
class PaymentsProbeReport:
    """Everything one payments probe found.

    Attributes:
        checks: One entry per check made, in order.
        clock_skew_seconds: This host's clock minus the providers' (largest in absolute
            value), ``None`` when no provider answered with a ``Date``.
        elapsed_ms: Time the whole probe took.
    """

    checks: tuple[PaymentsCheck, ...]
    clock_skew_seconds: float | None
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def diagnosis(self) -> tuple[str, ...]:
        """The failed checks' details, one sentence each."""
        return tuple(c.detail for c in self.checks if not c.ok)

    def check(self, name: CheckName) -> PaymentsCheck | None:
        """The check called ``name``, if it was made."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``ok`` included); never contains a key or a signature."""
        return {
            "ok": self.ok,
            "checks": [attrs.asdict(c) for c in self.checks],
            "clock_skew_seconds": self.clock_skew_seconds,
            "elapsed_ms": self.elapsed_ms,
        }


def _skew(response: httpx.Response, sent: float, received: float) -> float | None:
    header = response.headers.get("date")
    if not header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    # the server stamped its Date somewhere between our send and our receipt
    middle = (sent + received) / 2
    return round(middle - server, 1)


class _Probe:
    def __init__(self, client: httpx.Client, clock: Callable[[], float], max_skew: float) -> None:
        self.client = client
        self.clock = clock
        self.max_skew = max_skew
        self.checks: list[PaymentsCheck] = []
        self.skews: list[float] = []

    def get(self, url: str, headers: dict[str, str]) -> httpx.Response | str:
        sent = self.clock()
        try:
            response = self.client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        skew = _skew(response, sent, self.clock())
        if skew is not None:
            self.skews.append(skew)
        return response

    def passed(self, name: CheckName, status: int | None, detail: str) -> None:
        self.checks.append(PaymentsCheck(name, ok=True, status=status, detail=detail))

    def failed(self, name: CheckName, status: int | None, detail: str) -> None:
        self.checks.append(PaymentsCheck(name, ok=False, status=status, detail=detail))

    def hyperswitch(self, config: PaymentsConfig) -> None:
        probe_id = f"veza_probe_{uuid.uuid4().hex[:16]}"
        url = f"{config.hyperswitch_base_url.rstrip('/')}/payments/{probe_id}"
        answer = self.get(
            url, {"api-key": config.hyperswitch_api_key.reveal(), "accept": "application/json"}
        )
        if isinstance(answer, str):
            self.failed("hyperswitch_key", None, f"Hyperswitch is unreachable: {answer}")
        elif answer.status_code == _NOT_FOUND:
            self.passed("hyperswitch_key", _NOT_FOUND, "HYPERSWITCH_API_KEY accepted")
        elif answer.status_code == _UNAUTHORIZED:
            self.failed(
                "hyperswitch_key",
                _UNAUTHORIZED,
                "Hyperswitch refused HYPERSWITCH_API_KEY (401): wrong key, revoked, or a key "
                "of another environment (sandbox vs production) than HYPERSWITCH_BASE_URL",
            )
        else:
            self.failed(
                "hyperswitch_key",
                answer.status_code,
                f"Hyperswitch answered {answer.status_code} to a read: neither accepted nor "
                "refused; is HYPERSWITCH_BASE_URL the router's API?",
            )

    def stripe(self, config: PaymentsConfig) -> None:
        url = f"{(config.stripe_api_base or STRIPE_API).rstrip('/')}/v1/balance"
        answer = self.get(url, {"authorization": f"Bearer {config.stripe_secret_key.reveal()}"})
        if isinstance(answer, str):
            self.failed("stripe_key", None, f"Stripe is unreachable: {answer}")
        elif answer.status_code == _OK:
            self.passed("stripe_key", _OK, "STRIPE_SECRET_KEY accepted")
        elif answer.status_code == _UNAUTHORIZED:
            self.failed(
                "stripe_key",
                _UNAUTHORIZED,
                "Stripe refused STRIPE_SECRET_KEY (401): wrong, rolled or restricted key",
            )
        else:
            self.failed(
                "stripe_key",
                answer.status_code,
                f"Stripe answered {answer.status_code} to GET /v1/balance (a restricted key "
                "needs the Balance read permission)",
            )

    def webhook(self, config: PaymentsConfig, webhook_url: str) -> None:
        if not config.webhook_keys:
            self.failed(
                "webhook_signed",
                None,
                "HYPERSWITCH_WEBHOOK_KEYS is not set: no delivery can be verified",
            )
            return
        body = json.dumps(
            {
                "merchant_id": "veza_probe",
                "event_id": f"veza_probe_{uuid.uuid4().hex}",
                "event_type": PROBE_EVENT_TYPE,
                "content": {"type": PROBE_EVENT_TYPE, "object": {}},
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.clock())),
            },
            separators=(",", ":"),
        ).encode()
        deliveries: tuple[tuple[Literal["webhook_signed", "webhook_forged"], str], ...] = (
            ("webhook_signed", config.webhook_keys[0].reveal()),
            ("webhook_forged", secrets.token_hex(32)),
        )
        for name, key in deliveries:
            headers = {
                "content-type": "application/json",
                "user-agent": "veza-payments-probe",
                SIGNATURE_HEADER: sign_payload(body, key),
            }
            try:
                status = self.client.post(webhook_url, content=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                self.failed(name, None, f"the webhook endpoint is unreachable: {exc!s}")
                return
            self._judge_webhook(name, status)

    def _judge_webhook(
        self, name: Literal["webhook_signed", "webhook_forged"], status: int
    ) -> None:
        if name == "webhook_signed":
            if status in _SUCCESS:
                self.passed(name, status, "a delivery signed with the webhook key is accepted")
            elif status in _REFUSALS:
                self.failed(
                    name,
                    status,
                    f"the endpoint refuses a delivery signed with HYPERSWITCH_WEBHOOK_KEYS "
                    f"({status}): the endpoint's key differs (the profile's payment response "
                    "hash key), or the endpoint is another service",
                )
            else:
                self.failed(name, status, f"the endpoint answered {status} to a signed delivery")
        elif status in _SUCCESS:
            self.failed(
                name,
                status,
                f"the endpoint ACCEPTS a delivery with a wrong signature ({status}): it does not "
                "verify webhook signatures, so anyone can mark orders paid",
            )
        else:
            verdict = self.passed if status in _REFUSALS else self.failed
            verdict(name, status, f"a forged delivery is answered {status}")

    def skew(self) -> float | None:
        if not self.skews:
            return None
        worst = max(self.skews, key=abs)
        if abs(worst) > self.max_skew:
            direction = "ahead of" if worst > 0 else "behind"
            self.failed(
                "clock_skew",
                None,
                f"this host's clock is {abs(worst):.0f} s {direction} the providers': fix NTP "
                "(webhook timestamps, token expiries and TURN credentials depend on it)",
            )
        else:
            self.passed("clock_skew", None, f"clocks agree within {abs(worst):.0f} s")
        return worst


def probe_payments(
    config: PaymentsConfig,
    *,
    webhook_url: str | None = None,
    timeout: float = 10.0,
    max_skew: float = 10.0,
    clock: Callable[[], float] = time.time,
    client: httpx.Client | None = None,
    tracer_provider: TracerProvider | None = None,
) -> PaymentsProbeReport:
    """Check the API keys, the webhook key against a live endpoint, and the clock.

    Args:
        config: The application's :class:`PaymentsConfig` (``PaymentsConfig.from_env``).
        webhook_url: The deployed webhook endpoint; without it the webhook checks are
            not made. Two deliveries are posted: one signed right, one forged.
        timeout: Seconds per request (connect, write, read and pool each).
        max_skew: Largest clock difference with the providers, in seconds, that passes.
        clock: This host's clock (tests shift it).
        client: An ``httpx.Client`` to use (proxies, a private CA); closed by the caller.
        tracer_provider: OpenTelemetry tracer provider (``veza-payments[otel]``): one
            ``payments probe`` span with an event per check; no key recorded.

    Returns:
        The report; :attr:`PaymentsProbeReport.ok` is the health check's answer.
    """
    with _tracing.span(_tracing.tracer(tracer_provider), "payments probe", {}) as current:
        report = _run(
            config, webhook_url, timeout=timeout, max_skew=max_skew, clock=clock, client=client
        )
        if current is not None:
            for check in report.checks:
                current.add_event(check.name, {"veza.probe.ok": check.ok})
            current.set_attribute("veza.probe.ok", report.ok)
            if not report.ok:
                current.set_status(_tracing.error_status(report.diagnosis[0]))
        return report


def _run(
    config: PaymentsConfig,
    webhook_url: str | None,
    *,
    timeout: float,
    max_skew: float,
    clock: Callable[[], float],
    client: httpx.Client | None,
) -> PaymentsProbeReport:
    started = time.perf_counter()
    own = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    probe = _Probe(http, clock, max_skew)
    try:
        probe.hyperswitch(config)
        if config.stripe_secret_key:
            probe.stripe(config)
        if webhook_url:
            probe.webhook(config, webhook_url)
        skew = probe.skew()
    finally:
        if own:
            http.close()
    return PaymentsProbeReport(
        checks=tuple(probe.checks),
        clock_skew_seconds=skew,
        elapsed_ms=round((time.perf_counter() - started) * 1000.0, 2),
    )
