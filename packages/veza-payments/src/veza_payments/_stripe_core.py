"""Stripe Connect without I/O: one core for :class:`StripeConnect` and its async twin.

The wire format belongs to stripe-python (form encoding, headers, ``Stripe-Version``,
error bodies): both clients call its :class:`stripe.StripeClient`, the sync one through
its ``requests`` transport as since 0.1.0, the async one through its httpx transport
(``httpx.AsyncClient``). Everything veza decides lives here once, like the Hyperswitch
core in ``_core.py``: the idempotency key sent, the parameters, which failures are
retried and for how long, the mapping into the error hierarchy, paging and the
client-side metadata filter.

An operation is a generator. It yields :class:`Request` (make this Stripe call, retries
included) and :class:`Emit` (hand these items to the caller, for paged reads), receives
the Stripe object, and returns the result. :meth:`StripeCore.attempts` is the retry
loop of one :class:`Request`: it yields :class:`Invoke` (call the SDK once) and
:class:`~veza_payments._core.Sleep`, and receives an :class:`Outcome`. The drivers
only call the SDK, sleep and open spans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, TypeVar

import attrs

from veza_payments._core import Sleep
from veza_payments._errors import (
    APIConnectionError,
    AuthenticationError,
    IdempotencyConflictError,
    InvalidIdempotencyKeyError,
    InvalidRequestError,
    NotFoundError,
    PaymentsConfigurationError,
    ProviderError,
    RateLimitError,
    ServerError,
    StripeError,
    stripe_error,
)
from veza_payments._ids import check_namespace, is_blank, require_key
from veza_payments._money import check_amount, normalise_currency
from veza_payments._retry import RetryPolicy

T = TypeVar("T")

logger = logging.getLogger("veza_payments.stripe")

METADATA_KEY = "veza_idempotency_key"
"""Metadata entry holding the caller's key on every object this client creates."""

MAX_KEY = 200


def _as_dict(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of a ``StripeObject`` (a dict subclass with ``to_dict``) or a dict."""
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result: dict[str, Any] = to_dict()
        return result
    return dict(obj)


@attrs.frozen
class Transfer:
    """A Stripe Connect transfer.

    Attributes:
        id: ``tr_…``; persist it on your transfer row.
        amount: Minor units.
        currency: ISO 4217 code (upper case).
        destination: The connected account (``acct_…``).
        transfer_group: The group, if any.
        source_transaction: The charge funding it, if any.
        metadata: Metadata (includes ``veza_idempotency_key``).
        created: UNIX time.
        amount_reversed: Minor units reversed so far.
        reversed: Whether it was fully reversed.
        raw: The full object; never shown in ``repr``.
    """

    id: str
    amount: int
    currency: str
    destination: str | None
    transfer_group: str | None = None
    source_transaction: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    created: int | None = None
    amount_reversed: int = 0
    reversed: bool = False
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_stripe(cls, obj: Mapping[str, Any]) -> Transfer:
        """Build from a ``stripe.Transfer`` (or its dict)."""
        data = _as_dict(obj)
        destination = data.get("destination")
        if isinstance(destination, dict):
            destination = destination.get("id")
        return cls(
            id=str(data["id"]),
            amount=int(data.get("amount") or 0),
            currency=str(data.get("currency", "")).upper(),
            destination=destination,
            transfer_group=data.get("transfer_group"),
            source_transaction=_id_of(data.get("source_transaction")),
            metadata=dict(data.get("metadata") or {}),
            created=data.get("created"),
            amount_reversed=int(data.get("amount_reversed") or 0),
            reversed=bool(data.get("reversed")),
            raw=data,
        )


@attrs.frozen
class TransferReversal:
    """A reversal of (part of) a transfer.

    Attributes:
        id: ``trr_…``; persist it on your transfer row.
        transfer: The reversed transfer's id.
        amount: Minor units reversed by this reversal.
        currency: ISO 4217 code.
        metadata: Metadata (includes ``veza_idempotency_key``).
        created: UNIX time.
        raw: The full object.
    """

    id: str
    transfer: str
    amount: int
    currency: str
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    created: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_stripe(cls, obj: Mapping[str, Any]) -> TransferReversal:
        """Build from a ``stripe.TransferReversal``."""
        data = _as_dict(obj)
        return cls(
            id=str(data["id"]),
            transfer=str(_id_of(data.get("transfer")) or ""),
            amount=int(data.get("amount") or 0),
            currency=str(data.get("currency", "")).upper(),
            metadata=dict(data.get("metadata") or {}),
            created=data.get("created"),
            raw=data,
        )


@attrs.frozen
class Payout:
    """A payout from a connected account to its bank account or card.

    Attributes:
        id: ``po_…``; persist it on your payout row.
        amount: Minor units.
        currency: ISO 4217 code.
        status: ``pending``, ``in_transit``, ``paid``, ``failed``, ``canceled``.
        stripe_account: The connected account it was created on.
        arrival_date: Expected arrival (UNIX time).
        method: ``standard`` or ``instant``.
        metadata: Metadata (includes ``veza_idempotency_key``).
        created: UNIX time.
        raw: The full object.
    """

    id: str
    amount: int
    currency: str
    status: str
    stripe_account: str
    arrival_date: int | None = None
    method: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    created: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_stripe(cls, obj: Mapping[str, Any], stripe_account: str) -> Payout:
        """Build from a ``stripe.Payout``."""
        data = _as_dict(obj)
        return cls(
            id=str(data["id"]),
            amount=int(data.get("amount") or 0),
            currency=str(data.get("currency", "")).upper(),
            status=str(data.get("status", "")),
            stripe_account=stripe_account,
            arrival_date=data.get("arrival_date"),
            method=data.get("method"),
            metadata=dict(data.get("metadata") or {}),
            created=data.get("created"),
            raw=data,
        )


def _id_of(value: object) -> str | None:
    if isinstance(value, dict):
        inner = value.get("id")
        return str(inner) if inner is not None else None
    return str(value) if value is not None else None


def map_stripe_error(exc: Exception, *, requested: Mapping[str, Any] | None = None) -> Exception:
    """Translate a ``stripe`` exception into the veza-payments hierarchy.

    Args:
        exc: What ``stripe`` raised.
        requested: The parameters sent (for :class:`IdempotencyConflictError`).

    Returns:
        The equivalent kind (``NotFoundError``, ...) as a :class:`StripeError`
        and Stripe's request id; ``exc`` itself when it is not a Stripe error.
    """
    import stripe

    if not isinstance(exc, stripe.StripeError):
        return exc
    error_object = getattr(exc, "error", None)
    code = getattr(error_object, "code", None) or exc.code
    kwargs: dict[str, Any] = {
        "status": exc.http_status,
        "code": code,
        "request_id": exc.request_id,
        "body": exc.json_body if exc.json_body is not None else exc.http_body,
        "provider": "stripe",
    }
    message = exc.user_message or str(getattr(exc, "_message", "") or type(exc).__name__)
    mapped: ProviderError
    if isinstance(exc, stripe.APIConnectionError):
        mapped = stripe_error(APIConnectionError)(message, **kwargs)
    elif isinstance(exc, stripe.IdempotencyError):
        mapped = stripe_error(IdempotencyConflictError)(
            message, existing=None, requested=dict(requested or {}), **kwargs
        )
    elif isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        mapped = stripe_error(AuthenticationError)(message, **kwargs)
    elif isinstance(exc, stripe.RateLimitError):
        mapped = stripe_error(RateLimitError)(message, **kwargs)
    elif exc.http_status == 404:
        mapped = stripe_error(NotFoundError)(message, **kwargs)
    elif isinstance(exc, stripe.InvalidRequestError | stripe.CardError):
        mapped = stripe_error(InvalidRequestError)(message, **kwargs)
    elif exc.http_status is not None and (exc.http_status >= 500 or exc.http_status == 409):
        mapped = stripe_error(ServerError)(message, **kwargs)
    else:
        mapped = StripeError(message, **kwargs)
    return mapped


def _retryable(exc: Exception) -> bool:
    import stripe

    if not isinstance(exc, stripe.StripeError):
        return False
    should = (exc.headers or {}).get("stripe-should-retry")
    if should == "false":
        return False
    if should == "true" or isinstance(exc, stripe.APIConnectionError):
        return True
    status = exc.http_status
    return status is not None and (status in (409, 429) or status >= 500)


@attrs.frozen
class Invoke:
    """One call of a ``StripeClient`` service method (``v1.transfers.create``, …).

    Attributes:
        service: The path under ``client.v1`` (``("transfers", "reversals")``).
        method: The sync method's name; the async driver calls ``<method>_async``.
        args: Positional arguments (an id, the parameters).
        options: stripe-python request options (``idempotency_key``, ``stripe_account``).
    """

    service: tuple[str, ...]
    method: str
    args: tuple[Any, ...] = ()
    options: Mapping[str, str] | None = None


@attrs.frozen
class Outcome:
    """What one :class:`Invoke` gave: the Stripe object, or what stripe-python raised."""

    value: Any = None
    error: Exception | None = None


@attrs.frozen
class Request:
    """One Stripe call, retried by :meth:`StripeCore.attempts` and traced as one span.

    Attributes:
        what: The operation's name (``transfer``, ``list payouts``), for logs and spans.
        requested: The parameters, kept on an :class:`IdempotencyConflictError`.
        invoke: The SDK call each attempt makes.
    """

    what: str
    requested: Mapping[str, Any]
    invoke: Invoke


@attrs.frozen
class Emit:
    """Items a paged read hands to its caller before asking for the next page."""

    items: tuple[Any, ...]


Attempts = Generator[Invoke | Sleep, Outcome, Any]
Operation = Generator[Request, Any, T]
Pages = Generator[Request | Emit, Any, None]


def _page_size(page_size: int) -> int:
    return max(1, min(page_size, 100))


def _created(created: int | Mapping[str, int]) -> int | dict[str, int]:
    return dict(created) if isinstance(created, Mapping) else created


def _wanted(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (metadata or {}).items()}


def _required(value: str, what: str, hint: str = "") -> None:
    if is_blank(value):
        msg = f"{what} is required{hint}, got {value!r}"
        raise PaymentsConfigurationError(msg)


class StripeCore:
    """Keys, parameters, retries and paging for Stripe Connect, shared by both clients.

    Args:
        retry: The retry policy of one call.
        idempotency_namespace: Up to 8 of ``[a-z0-9]`` prefixed to every key.
        clock: Monotonic seconds, for the policy's ``max_elapsed``.
    """

    def __init__(
        self,
        retry: RetryPolicy,
        idempotency_namespace: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry = retry
        self.idempotency_namespace = check_namespace(idempotency_namespace)
        self._clock = clock

    def stripe_key(self, operation: str, idempotency_key: str) -> str:
        """The ``Idempotency-Key`` sent for ``operation`` (``transfer``, ``reversal``, …)."""
        key = require_key(idempotency_key)
        if len(key) > MAX_KEY:
            msg = f"idempotency keys are at most {MAX_KEY} characters, got {len(key)}"
            raise InvalidIdempotencyKeyError(msg)
        prefix = f"{self.idempotency_namespace}:" if self.idempotency_namespace else ""
        return f"{prefix}{operation}:{key}"

    def attempts(self, request: Request) -> Attempts:
        """The retry loop of one call: returns the Stripe object or raises the mapped error.

        Retries reuse the idempotency key, so Stripe replays instead of repeating; an
        error that is not stripe-python's is raised as it is, never retried.
        """
        policy = self.retry
        started = self._clock()
        while True:
            outcome = yield request.invoke
            exc = outcome.error
            if exc is None:
                return outcome.value
            mapped = map_stripe_error(exc, requested=request.requested)
            if mapped is exc:
                raise exc
            if (
                policy.exhausted
                or not _retryable(exc)
                or self._clock() - started >= policy.max_elapsed
            ):
                raise mapped from exc
            headers = getattr(exc, "headers", None) or {}
            delay = policy.delay(headers.get("retry-after"))
            logger.warning("retrying Stripe %s in %.2fs after %s", request.what, delay, mapped)
            yield Sleep(delay, reason=request.what)
            policy = policy.increment()

    @staticmethod
    def _metadata(metadata: Mapping[str, str] | None, key: str) -> dict[str, str]:
        out = {str(k): str(v) for k, v in (metadata or {}).items()}
        out[METADATA_KEY] = key
        return out

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
    ) -> Operation[Transfer]:
        """``POST /v1/transfers`` once per key (see ``StripeConnect.create_transfer``)."""
        key = self.stripe_key("transfer", idempotency_key)
        params: dict[str, Any] = {
            "amount": check_amount(amount),
            "currency": normalise_currency(currency).lower(),
            "destination": destination,
            "metadata": self._metadata(metadata, idempotency_key),
        }
        if transfer_group is not None:
            params["transfer_group"] = transfer_group
        if source_transaction is not None:
            params["source_transaction"] = source_transaction
        return self._create_transfer(params, key)

    @staticmethod
    def _create_transfer(params: dict[str, Any], key: str) -> Operation[Transfer]:
        invoke = Invoke(("transfers",), "create", (params,), {"idempotency_key": key})
        result = yield Request("transfer", params, invoke)
        return Transfer.from_stripe(result)

    def reverse_transfer(
        self,
        idempotency_key: str,
        transfer_id: str,
        *,
        amount: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Operation[TransferReversal]:
        """``POST /v1/transfers/{id}/reversals`` once per key."""
        key = self.stripe_key("reversal", idempotency_key)
        _required(transfer_id, "transfer_id")
        params: dict[str, Any] = {"metadata": self._metadata(metadata, idempotency_key)}
        if amount is not None:
            params["amount"] = check_amount(amount)
        return self._reverse_transfer(transfer_id, params, key)

    @staticmethod
    def _reverse_transfer(
        transfer_id: str, params: dict[str, Any], key: str
    ) -> Operation[TransferReversal]:
        invoke = Invoke(
            ("transfers", "reversals"), "create", (transfer_id, params), {"idempotency_key": key}
        )
        result = yield Request("reversal", {"transfer": transfer_id, **params}, invoke)
        return TransferReversal.from_stripe(result)

    @staticmethod
    def retrieve_transfer(transfer_id: str) -> Operation[Transfer]:
        """``GET /v1/transfers/{id}``."""
        invoke = Invoke(("transfers",), "retrieve", (transfer_id,))
        result = yield Request("retrieve transfer", {}, invoke)
        return Transfer.from_stripe(result)

    def list_reversals(self, transfer_id: str, *, page_size: int = 100) -> Pages:
        """Every reversal of a transfer, newest first, page after page."""
        _required(transfer_id, "transfer_id")  # when iteration starts, as since 0.1.0
        yield from self._pages(
            "list reversals",
            ("transfers", "reversals"),
            {"limit": _page_size(page_size)},
            (transfer_id,),
            TransferReversal.from_stripe,
        )

    def find_transfers(
        self,
        *,
        destination: str | None = None,
        transfer_group: str | None = None,
        created: int | Mapping[str, int] | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> Pages:
        """Transfers matching the server-side filters, ``metadata`` filtered here."""
        params: dict[str, Any] = {"limit": _page_size(page_size)}
        if destination is not None:
            params["destination"] = destination
        if transfer_group is not None:
            params["transfer_group"] = transfer_group
        if created is not None:
            params["created"] = _created(created)
        wanted = _wanted(metadata)

        def build(obj: Mapping[str, Any]) -> Transfer | None:
            transfer = Transfer.from_stripe(obj)
            return transfer if _matches(transfer.metadata, wanted) else None

        return self._pages("list transfers", ("transfers",), params, (), build)

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
    ) -> Operation[Payout]:
        """``POST /v1/payouts`` on the connected account, once per key."""
        key = self.stripe_key("payout", idempotency_key)
        _required(stripe_account, "stripe_account", " (acct_...)")
        params: dict[str, Any] = {
            "amount": check_amount(amount),
            "currency": normalise_currency(currency).lower(),
            "metadata": self._metadata(metadata, idempotency_key),
        }
        optional = {
            "method": method,
            "description": description,
            "statement_descriptor": statement_descriptor,
        }
        params.update({name: value for name, value in optional.items() if value is not None})
        return self._create_payout(params, key, stripe_account)

    @staticmethod
    def _create_payout(params: dict[str, Any], key: str, stripe_account: str) -> Operation[Payout]:
        options = {"idempotency_key": key, "stripe_account": stripe_account}
        invoke = Invoke(("payouts",), "create", (params,), options)
        result = yield Request("payout", {"stripe_account": stripe_account, **params}, invoke)
        return Payout.from_stripe(result, stripe_account)

    def find_payouts(
        self,
        *,
        stripe_account: str,
        created: int | Mapping[str, int] | None = None,
        status: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
    ) -> Pages:
        """A connected account's payouts (``Stripe-Account``), ``metadata`` filtered here."""
        _required(stripe_account, "stripe_account", " (acct_...)")  # when iteration starts
        params: dict[str, Any] = {"limit": _page_size(page_size)}
        if created is not None:
            params["created"] = _created(created)
        if status is not None:
            params["status"] = status
        wanted = _wanted(metadata)

        def build(obj: Mapping[str, Any]) -> Payout | None:
            payout = Payout.from_stripe(obj, stripe_account)
            return payout if _matches(payout.metadata, wanted) else None

        yield from self._pages(
            "list payouts",
            ("payouts",),
            params,
            (),
            build,
            account=stripe_account,
        )

    @staticmethod
    def _pages(
        what: str,
        service: tuple[str, ...],
        params: dict[str, Any],
        args: tuple[Any, ...],
        build: Callable[[Any], Any],
        *,
        account: str | None = None,
    ) -> Pages:
        """Page with ``limit``/``starting_after`` until ``has_more`` is false."""
        options = {"stripe_account": account} if account is not None else None
        requested_extra = {"stripe_account": account} if account is not None else {}
        while True:
            page_params = dict(params)
            invoke = Invoke(service, "list", (*args, page_params), options)
            page = yield Request(what, {**requested_extra, **page_params}, invoke)
            data = list(page.data)
            built = (build(obj) for obj in data)
            yield Emit(tuple(item for item in built if item is not None))
            if not page.has_more or not data:
                return
            params["starting_after"] = data[-1]["id"]


def _matches(metadata: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(metadata.get(k) == v for k, v in wanted.items())
