"""Stripe Connect money movement: transfers, reversals, payouts, backfill search.

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

import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import attrs

from veza_payments import _tracing
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
from veza_payments._ids import check_namespace, is_blank, is_count, require_key
from veza_payments._money import check_amount, normalise_currency
from veza_payments._retry import RetryPolicy

if TYPE_CHECKING:
    import stripe
    from opentelemetry.trace import TracerProvider

T = TypeVar("T")

logger = logging.getLogger("veza_payments.stripe")

METADATA_KEY = "veza_idempotency_key"
"""Metadata entry holding the caller's key on every object this client creates."""

MAX_KEY = 200


def _as_dict(obj: Any) -> dict[str, Any]:  # noqa: ANN401 - a StripeObject or a dict
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
    def from_stripe(cls, obj: Any) -> Transfer:  # noqa: ANN401
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
    def from_stripe(cls, obj: Any) -> TransferReversal:  # noqa: ANN401
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
    def from_stripe(cls, obj: Any, stripe_account: str) -> Payout:  # noqa: ANN401
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


class StripeConnect:
    """Transfers, reversals and payouts on Stripe Connect that cannot pay twice.

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
        try:
            import stripe
        except ImportError as exc:  # pragma: no cover - exercised without the extra
            msg = "StripeConnect needs the stripe extra: pip install 'veza-payments[stripe]'"
            raise PaymentsConfigurationError(msg) from exc
        if is_blank(api_key):
            msg = "api_key is required (the platform's Stripe secret key)"
            raise PaymentsConfigurationError(msg)
        if isinstance(max_retries, RetryPolicy):
            self.retry = max_retries
        elif is_count(max_retries):
            self.retry = RetryPolicy(total=max_retries)
        else:
            msg = f"max_retries must be a non-negative int or a RetryPolicy, got {max_retries!r}"
            raise PaymentsConfigurationError(msg)
        self.idempotency_namespace = check_namespace(idempotency_namespace)
        self.base_url = base_url
        self._sleep = sleep
        self._http: Any = None
        if client is None:
            self._http = stripe.RequestsClient(timeout=timeout)
            addresses: Any = {"api": base_url.rstrip("/")} if base_url else None
            client = stripe.StripeClient(
                api_key, base_addresses=addresses, max_network_retries=0, http_client=self._http
            )
        self._client = client
        self._tracer = _tracing.tracer(tracer_provider)
        self._server = urllib.parse.urlsplit(base_url or "https://api.stripe.com").hostname or ""

    def __repr__(self) -> str:
        return (
            f"StripeConnect(base_url={self.base_url!r}, "
            f"idempotency_namespace={self.idempotency_namespace!r}, api_key=<hidden>)"
        )

    def close(self) -> None:
        """Close the HTTP connections this object opened."""
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def stripe_key(self, operation: str, idempotency_key: str) -> str:
        """The ``Idempotency-Key`` sent for ``operation`` (``transfer``, ``reversal``, …)."""
        key = require_key(idempotency_key)
        if len(key) > MAX_KEY:
            msg = f"idempotency keys are at most {MAX_KEY} characters, got {len(key)}"
            raise InvalidIdempotencyKeyError(msg)
        prefix = f"{self.idempotency_namespace}:" if self.idempotency_namespace else ""
        return f"{prefix}{operation}:{key}"

    def _call(self, what: str, requested: Mapping[str, Any], fn: Callable[[], T]) -> T:
        attributes = {"veza.provider": "stripe", "veza.operation": what}
        with _tracing.span(
            self._tracer,
            f"stripe {what}",
            {**attributes, "server.address": self._server},
            client=True,
        ) as current:
            return self._attempts(what, requested, fn, current)

    def _attempts(
        self,
        what: str,
        requested: Mapping[str, Any],
        fn: Callable[[], T],
        current: Any,  # noqa: ANN401 - the call's span, or None
    ) -> T:
        policy = self.retry
        started = time.monotonic()
        while True:
            try:
                return fn()
            except Exception as exc:
                if current is not None:
                    current.add_event("attempt failed", {"error.type": type(exc).__name__})
                mapped = map_stripe_error(exc, requested=requested)
                if mapped is exc:
                    raise
                if (
                    policy.exhausted
                    or not _retryable(exc)
                    or time.monotonic() - started >= policy.max_elapsed
                ):
                    raise mapped from exc
                headers = getattr(exc, "headers", None) or {}
                delay = policy.delay(headers.get("retry-after"))
                logger.warning("retrying Stripe %s in %.2fs after %s", what, delay, mapped)
                self._sleep(delay)
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
    ) -> Transfer:
        """Move ``amount`` to a connected account, once per key.

        Raises:
            MissingIdempotencyKeyError: No key (before any I/O).
            IdempotencyConflictError: The key was used with different parameters.
            StripeError: Any other Stripe failure (every error here is a ``StripeError``).
        """
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
        result = self._call(
            "transfer",
            params,
            lambda: self._client.v1.transfers.create(
                cast("Any", params),
                options={"idempotency_key": key},
            ),
        )
        return Transfer.from_stripe(result)

    def reverse_transfer(
        self,
        idempotency_key: str,
        transfer_id: str,
        *,
        amount: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TransferReversal:
        """Reverse ``amount`` (``None``: all that remains) of a transfer, once per key."""
        key = self.stripe_key("reversal", idempotency_key)
        if is_blank(transfer_id):
            msg = f"transfer_id is required, got {transfer_id!r}"
            raise PaymentsConfigurationError(msg)
        params: dict[str, Any] = {"metadata": self._metadata(metadata, idempotency_key)}
        if amount is not None:
            params["amount"] = check_amount(amount)
        result = self._call(
            "reversal",
            {"transfer": transfer_id, **params},
            lambda: self._client.v1.transfers.reversals.create(
                transfer_id,
                cast("Any", params),
                options={"idempotency_key": key},
            ),
        )
        return TransferReversal.from_stripe(result)

    def retrieve_transfer(self, transfer_id: str) -> Transfer:
        """Read one transfer."""
        result = self._call(
            "retrieve transfer", {}, lambda: self._client.v1.transfers.retrieve(transfer_id)
        )
        return Transfer.from_stripe(result)

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
        if is_blank(transfer_id):
            msg = f"transfer_id is required, got {transfer_id!r}"
            raise PaymentsConfigurationError(msg)
        params: dict[str, Any] = {"limit": max(1, min(page_size, 100))}
        while True:
            page_params = dict(params)
            page = self._call(
                "list reversals",
                page_params,
                partial(
                    self._client.v1.transfers.reversals.list,
                    transfer_id,
                    cast("Any", page_params),
                ),
            )
            data = list(page.data)
            for obj in data:
                yield TransferReversal.from_stripe(obj)
            if not page.has_more or not data:
                return
            params["starting_after"] = data[-1]["id"]

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
        params: dict[str, Any] = {"limit": max(1, min(page_size, 100))}
        if destination is not None:
            params["destination"] = destination
        if transfer_group is not None:
            params["transfer_group"] = transfer_group
        if created is not None:
            params["created"] = dict(created) if isinstance(created, Mapping) else created
        wanted = {str(k): str(v) for k, v in (metadata or {}).items()}
        while True:
            page_params = dict(params)
            page = self._call(
                "list transfers",
                page_params,
                partial(self._client.v1.transfers.list, cast("Any", page_params)),
            )
            data = list(page.data)
            for obj in data:
                transfer = Transfer.from_stripe(obj)
                if all(transfer.metadata.get(k) == v for k, v in wanted.items()):
                    yield transfer
            if not page.has_more or not data:
                return
            params["starting_after"] = data[-1]["id"]

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
        key = self.stripe_key("payout", idempotency_key)
        if is_blank(stripe_account):
            msg = f"stripe_account is required (acct_...), got {stripe_account!r}"
            raise PaymentsConfigurationError(msg)
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
        result = self._call(
            "payout",
            {"stripe_account": stripe_account, **params},
            lambda: self._client.v1.payouts.create(
                cast("Any", params),
                options={"idempotency_key": key, "stripe_account": stripe_account},
            ),
        )
        return Payout.from_stripe(result, stripe_account)

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
        if is_blank(stripe_account):
            msg = f"stripe_account is required (acct_...), got {stripe_account!r}"
            raise PaymentsConfigurationError(msg)
        params: dict[str, Any] = {"limit": max(1, min(page_size, 100))}
        if created is not None:
            params["created"] = dict(created) if isinstance(created, Mapping) else created
        if status is not None:
            params["status"] = status
        wanted = {str(k): str(v) for k, v in (metadata or {}).items()}
        while True:
            page_params = dict(params)
            page = self._call(
                "list payouts",
                {"stripe_account": stripe_account, **page_params},
                partial(
                    self._client.v1.payouts.list,
                    cast("Any", page_params),
                    options={"stripe_account": stripe_account},
                ),
            )
            data = list(page.data)
            for obj in data:
                payout = Payout.from_stripe(obj, stripe_account)
                if all(payout.metadata.get(k) == v for k, v in wanted.items()):
                    yield payout
            if not page.has_more or not data:
                return
            params["starting_after"] = data[-1]["id"]
