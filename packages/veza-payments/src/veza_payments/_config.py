"""``PaymentsConfig``: the environment read once, validated, and turned into clients.

Every variable is read here and nowhere else, so a misconfiguration fails at start-up
with the variable's name instead of at the first payment. Secrets (the API keys, the
webhook keys) never appear in the ``repr`` or in error messages.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping

import attrs

from veza_payments._errors import PaymentsConfigurationError
from veza_payments._hyperswitch import SANDBOX_URL, AsyncHyperswitchClient, HyperswitchClient
from veza_payments._ids import check_namespace
from veza_payments._secret import Secret
from veza_payments._signatures import HYPERSWITCH_RETRY_WINDOW
from veza_payments._stripe import StripeConnect
from veza_payments._webhooks import WebhookIntake, WebhookLog

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(name: str, value: str | None, *, default: bool = False) -> bool:
    """Read a boolean variable the way every veza package does.

    Accepted, in any case and with surrounding blanks ignored: ``1``/``0``,
    ``true``/``false``, ``yes``/``no``, ``on``/``off``; unset or blank gives ``default``.
    Anything else is refused instead of being read as false, because a typo such as
    ``ENABLED=ture`` must stop start-up rather than quietly switch a feature off. The
    packages share no dependency, so each keeps this same function in its config
    module; ``tests/test_parse_bool.py`` runs one table through all of them so they
    cannot drift apart.

    Args:
        name: The variable's name, for the error message.
        value: Its raw value (``None`` when unset).
        default: The answer for an unset or blank variable.

    Raises:
        PaymentsConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise PaymentsConfigurationError(msg)


def _secret(value: str | Secret[str]) -> Secret[str]:
    return value if isinstance(value, Secret) else Secret(value)


def _secrets(value: Iterable[str | Secret[str]]) -> tuple[Secret[str], ...]:
    return tuple(_secret(item) for item in value)


@attrs.frozen(kw_only=True)
class PaymentsConfig:
    """Validated payments settings (see the Operations page for each variable).

    Attributes:
        hyperswitch_api_key: ``HYPERSWITCH_API_KEY``, held as a :class:`Secret` (a
            ``str`` given is wrapped).
        webhook_keys: ``HYPERSWITCH_WEBHOOK_KEYS``: the payment response hash key, then
            any being retired, each a :class:`Secret`.
        hyperswitch_base_url: ``HYPERSWITCH_BASE_URL``.
        timeout: ``HYPERSWITCH_TIMEOUT`` seconds per attempt.
        max_retries: ``HYPERSWITCH_MAX_RETRIES``.
        idempotency_namespace: ``HYPERSWITCH_IDEMPOTENCY_NAMESPACE``.
        stripe_compatible_webhooks: ``HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE``.
        stripe_webhook_tolerance: ``HYPERSWITCH_WEBHOOK_STRIPE_TOLERANCE`` seconds
            (``None``: no timestamp check).
        stripe_secret_key: ``STRIPE_SECRET_KEY`` as a :class:`Secret`, empty without
            Stripe Connect.
        stripe_api_base: ``STRIPE_API_BASE`` (empty: Stripe's own).
    """

    hyperswitch_api_key: Secret[str] = attrs.field(converter=_secret)
    webhook_keys: tuple[Secret[str], ...] = attrs.field(converter=_secrets)
    hyperswitch_base_url: str = SANDBOX_URL
    timeout: float = 30.0
    max_retries: int = 4
    idempotency_namespace: str = ""
    stripe_compatible_webhooks: bool = False
    stripe_webhook_tolerance: float | None = HYPERSWITCH_RETRY_WINDOW
    stripe_secret_key: Secret[str] = attrs.field(default=Secret(""), converter=_secret)
    stripe_api_base: str = ""

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        require_stripe: bool = False,
        require_webhook_keys: bool = True,
    ) -> PaymentsConfig:
        """Read and validate the environment.

        Args:
            environ: The variables (``os.environ`` by default).
            require_stripe: Fail unless ``STRIPE_SECRET_KEY`` is set (apps that pay
                sellers out should say so, to fail at start-up).
            require_webhook_keys: Fail unless ``HYPERSWITCH_WEBHOOK_KEYS`` is set (jobs that
                only call the API, like reconciliation, pass ``False``).

        Raises:
            PaymentsConfigurationError: A variable is missing or invalid (named).
        """
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                msg = f"{name} is required"
                raise PaymentsConfigurationError(msg)
            return value

        def number(name: str, default: float, *, integer: bool = False) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                kind = "an integer" if integer else "a number"
                msg = f"{name} must be {kind}, got {raw!r}"
                raise PaymentsConfigurationError(msg) from None
            if value < 0 or (not integer and value == 0):
                msg = f"{name} must be positive, got {raw!r}"
                raise PaymentsConfigurationError(msg)
            return value

        raw_keys = (
            required("HYPERSWITCH_WEBHOOK_KEYS")
            if require_webhook_keys
            else env.get("HYPERSWITCH_WEBHOOK_KEYS", "")
        )
        keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())
        base_url = env.get("HYPERSWITCH_BASE_URL", "").strip() or SANDBOX_URL
        if not base_url.startswith(("https://", "http://")):
            msg = f"HYPERSWITCH_BASE_URL must be an http(s) URL, got {base_url!r}"
            raise PaymentsConfigurationError(msg)
        namespace = env.get("HYPERSWITCH_IDEMPOTENCY_NAMESPACE", "").strip()
        try:
            check_namespace(namespace)
        except PaymentsConfigurationError:
            msg = f"HYPERSWITCH_IDEMPOTENCY_NAMESPACE must be 0-8 of [a-z0-9], got {namespace!r}"
            raise PaymentsConfigurationError(msg) from None
        compatible = parse_bool(
            "HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE",
            env.get("HYPERSWITCH_WEBHOOK_STRIPE_COMPATIBLE"),
        )
        tolerance_raw = env.get("HYPERSWITCH_WEBHOOK_STRIPE_TOLERANCE", "").strip().lower()
        tolerance = (
            None
            if tolerance_raw == "none"
            else number("HYPERSWITCH_WEBHOOK_STRIPE_TOLERANCE", HYPERSWITCH_RETRY_WINDOW)
        )
        stripe_key = env.get("STRIPE_SECRET_KEY", "").strip()
        if require_stripe and not stripe_key:
            msg = "STRIPE_SECRET_KEY is required (Stripe Connect transfers and payouts)"
            raise PaymentsConfigurationError(msg)
        stripe_base = env.get("STRIPE_API_BASE", "").strip()
        if stripe_base and not stripe_base.startswith(("https://", "http://")):
            msg = f"STRIPE_API_BASE must be an http(s) URL, got {stripe_base!r}"
            raise PaymentsConfigurationError(msg)
        return cls(
            hyperswitch_api_key=required("HYPERSWITCH_API_KEY"),
            webhook_keys=keys,
            hyperswitch_base_url=base_url,
            timeout=number("HYPERSWITCH_TIMEOUT", 30.0),
            max_retries=int(number("HYPERSWITCH_MAX_RETRIES", 4, integer=True)),
            idempotency_namespace=namespace,
            stripe_compatible_webhooks=compatible,
            stripe_webhook_tolerance=tolerance,
            stripe_secret_key=stripe_key,
            stripe_api_base=stripe_base,
        )

    def build(self) -> HyperswitchClient:
        """The :class:`HyperswitchClient` these settings describe.

        ``PaymentsConfig.from_env().build()`` is the shape every veza package shares
        (environment, then a frozen value, then the object). Stripe Connect and the
        webhook intake need more than the settings (the ``stripe`` extra, a log), so
        they keep their own factories: :meth:`stripe_connect`, :meth:`webhook_intake`.
        """
        return HyperswitchClient(
            self.hyperswitch_api_key.reveal(),
            base_url=self.hyperswitch_base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            idempotency_namespace=self.idempotency_namespace,
        )

    def hyperswitch_client(self) -> HyperswitchClient:
        """Deprecated alias of :meth:`build` (the 0.1.0 name).

        .. deprecated:: 0.2.0
            Use :meth:`build`; this name goes in 0.3.0.
        """
        warnings.warn(
            "PaymentsConfig.hyperswitch_client() is deprecated; use PaymentsConfig.build()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.build()

    def async_hyperswitch_client(self) -> AsyncHyperswitchClient:
        """An :class:`AsyncHyperswitchClient` with these settings."""
        return AsyncHyperswitchClient(
            self.hyperswitch_api_key.reveal(),
            base_url=self.hyperswitch_base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            idempotency_namespace=self.idempotency_namespace,
        )

    def webhook_intake(self, log: WebhookLog) -> WebhookIntake:
        """A :class:`WebhookIntake` writing to ``log``.

        Raises:
            PaymentsConfigurationError: ``HYPERSWITCH_WEBHOOK_KEYS`` is not set.
        """
        if not self.webhook_keys:
            msg = "HYPERSWITCH_WEBHOOK_KEYS is required for the webhook intake"
            raise PaymentsConfigurationError(msg)
        return WebhookIntake(
            log,
            tuple(key.reveal() for key in self.webhook_keys),
            stripe_compatible=self.stripe_compatible_webhooks,
            stripe_tolerance=self.stripe_webhook_tolerance,
        )

    def stripe_connect(self) -> StripeConnect:
        """A :class:`StripeConnect` (needs ``STRIPE_SECRET_KEY`` and the stripe extra).

        Raises:
            PaymentsConfigurationError: ``STRIPE_SECRET_KEY`` is not set.
        """
        if not self.stripe_secret_key:
            msg = "STRIPE_SECRET_KEY is required for Stripe Connect"
            raise PaymentsConfigurationError(msg)
        return StripeConnect(
            self.stripe_secret_key.reveal(),
            base_url=self.stripe_api_base or None,
            timeout=self.timeout,
            max_retries=self.max_retries,
            idempotency_namespace=self.idempotency_namespace,
        )
