"""The veza-payments error hierarchy.

``PaymentsError`` is the base of everything. ``ProviderError`` is the base of every
failure a money provider reported (or that kept us from reaching it), whichever the
provider; what kind of failure it is comes from a provider-neutral class
(``NotFoundError``, ``ServerError``, ...), and which provider from ``HyperswitchError``
or ``StripeError``. Every raised error is both: a Hyperswitch 404 is a ``NotFoundError``
and a ``HyperswitchError``; a Stripe 404 a ``NotFoundError`` and a ``StripeError``, never
a ``HyperswitchError``. So ``except NotFoundError`` handles both providers and
``except HyperswitchError`` only one. Every provider error carries the HTTP status,
the provider's error code and message, its request id and the raw body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar, Unpack, cast

if TYPE_CHECKING:
    from veza_payments._models import Payment, Refund


class _ErrorDetails(TypedDict, total=False):
    """The keywords every :class:`ProviderError` takes after its message."""

    status: int | None
    code: str | None
    request_id: str | None
    body: object
    provider: str | None


class PaymentsError(Exception):
    """Base of every error veza-payments raises on purpose."""


class MissingIdempotencyKeyError(PaymentsError, ValueError):
    """A money-moving call was made without an idempotency key (raised before any I/O)."""


class PaymentsConfigurationError(PaymentsError, ValueError):
    """A client or intake was configured with an invalid value."""


class InvalidIdempotencyKeyError(PaymentsConfigurationError):
    """An idempotency key outside the documented alphabet or length (before any I/O).

    Keys are 1 to 255 visible ASCII characters (``!`` to ``~``): no space, no control
    character, nothing a header or a log line could mangle.
    """


class BodyTooLargeError(PaymentsError, ValueError):
    """A request body over its limit (sent or declared); nothing more was read.

    Attributes:
        limit: The largest body accepted, in bytes.
        received: Bytes pulled before reading stopped (0 when refused on the declared
            length).
        declared_length: The ``Content-Length`` the request declared, if any.
        head: The first bytes received (at most 1 KiB), for the log; never in the
            message.
    """

    def __init__(
        self, *, limit: int, received: int, declared_length: int | None, head: bytes
    ) -> None:
        declared = f", declared {declared_length}" if declared_length is not None else ""
        super().__init__(f"body over {limit} bytes (received {received}{declared})")
        self.limit = limit
        self.received = received
        self.declared_length = declared_length
        self.head = head


class ProviderError(PaymentsError):
    """A money provider answered with an error, or could not be reached.

    Attributes:
        status: HTTP status (``None`` when no response arrived).
        code: The provider's error code (``HE_01``, ``IR_13``, ``resource_missing``).
        message: The provider's message.
        request_id: The provider's request id (``x-request-id``, Stripe's ``Request-Id``).
        body: The raw response body, parsed when it was JSON.
        provider: ``hyperswitch`` or ``stripe``.
    """

    provider_name: ClassVar[str] = "unknown"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: object = None,  # JSON or text, whatever the provider sent
        provider: str | None = None,
    ) -> None:
        detail = " ".join(
            part for part in (f"[{status}]" if status else "", code or "", message) if part
        )
        if request_id:
            detail += f" (request id {request_id})"
        super().__init__(detail)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.body = body
        self.provider = provider or self.provider_name


class HyperswitchError(ProviderError):
    """A failure on Hyperswitch (every error ``HyperswitchClient`` raises about it)."""

    provider_name: ClassVar[str] = "hyperswitch"


class StripeError(ProviderError):
    """A failure on Stripe (every error ``StripeConnect`` raises about it).

    Not a :class:`HyperswitchError` (it was before 0.2): catch :class:`ProviderError`
    or the kind (``NotFoundError``, ...) to handle both providers.
    """

    provider_name: ClassVar[str] = "stripe"


class APIConnectionError(ProviderError):
    """No usable response: connection refused or dropped, timeout, invalid HTTP."""


class UnexpectedResponseError(APIConnectionError):
    """A 2xx answer whose body is not the object asked for (``{}``, a proxy's JSON).

    Raised only after the client read the deterministic id back and found nothing:
    the provider may still have acted, so treat the outcome as unknown, not as failed.
    """


class AuthenticationError(ProviderError):
    """The API key was refused (401, ``IR_01``)."""


class InvalidRequestError(ProviderError, ValueError):
    """The provider refused the request as invalid (4xx)."""


class NotFoundError(InvalidRequestError):
    """The object does not exist (404, ``HE_02``)."""


class ConnectorError(ProviderError):
    """The payment connector (the acquirer behind Hyperswitch) failed (``CE_*``)."""


class RateLimitError(ProviderError):
    """Too many requests (429); retried with ``Retry-After`` before it is raised."""


class ServerError(ProviderError):
    """The provider failed (5xx, or 422 ``HE_00`` "resource busy")."""


class PaymentBlockedError(ProviderError):
    """The payment was blocked (blocklist, fraud rules), even if the HTTP status was 200."""


class IdempotencyConflictError(ProviderError):
    """The idempotency key was used before for a different request.

    Attributes:
        existing: What the provider holds under the derived id (``Payment``/``Refund``).
        requested: What this call asked for (amount, currency, payment).
    """

    def __init__(
        self,
        message: str,
        *,
        existing: Payment | Refund | None,  # None: a Stripe object
        requested: dict[str, Any],
        **kwargs: Unpack[_ErrorDetails],
    ) -> None:
        super().__init__(message, **kwargs)
        self.existing = existing
        self.requested = requested


E = TypeVar("E", bound=ProviderError)

_KINDS: tuple[type[ProviderError], ...] = (
    APIConnectionError,
    UnexpectedResponseError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ConnectorError,
    RateLimitError,
    ServerError,
    PaymentBlockedError,
    IdempotencyConflictError,
)


def _concrete(kind: type[ProviderError], provider: type[ProviderError]) -> type[ProviderError]:
    name = provider.__name__.removesuffix("Error") + kind.__name__
    cls = type(name, (kind, provider), {"__module__": __name__, "__doc__": kind.__doc__})
    globals()[name] = cls  # importable by name, so the errors pickle
    return cls


_HYPERSWITCH = {kind: _concrete(kind, HyperswitchError) for kind in _KINDS}
_STRIPE = {kind: _concrete(kind, StripeError) for kind in _KINDS}


def hyperswitch_error(kind: type[E]) -> type[E]:
    """The class raised for ``kind`` on Hyperswitch: ``kind`` and ``HyperswitchError``."""
    return cast("type[E]", _HYPERSWITCH.get(kind, kind))  # a subclass of kind


def stripe_error(kind: type[E]) -> type[E]:
    """The class raised for ``kind`` on Stripe: ``kind`` and ``StripeError``."""
    return cast("type[E]", _STRIPE.get(kind, kind))  # a subclass of kind
