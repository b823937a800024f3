"""The Stripe fake (see :mod:`veza_payments.testing`)."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

import attrs

from veza_payments._fakeserver import FakeServer, Fault, Request, Response, counter

__all__ = ["FakeStripe", "Hold"]

KEY_TTL = 24 * 3600.0
"""Seconds Stripe keeps an idempotency key at least (it may prune it afterwards)."""

EMBEDDED_REVERSALS = 10
"""How many of its most recent reversals Stripe embeds in a transfer object."""

PAYOUT_OUTCOMES = frozenset({"paid", "failed", "canceled"})
# ---------------------------------------------------------------------------- Stripe


def _form(body: bytes, query: str = "") -> dict[str, Any]:
    """Decode Stripe's form encoding (``metadata[k]=v``, ``created[gte]=1``)."""
    out: dict[str, Any] = {}
    pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True) + parse_qsl(
        query, keep_blank_values=True
    )
    for name, value in pairs:
        match = re.fullmatch(r"([^\[]+)\[([^\]]*)\]", name)
        if match:
            out.setdefault(match.group(1), {})[match.group(2)] = value
        else:
            out[name] = value
    return out


def _st_error(
    status: int,
    kind: str,
    message: str,
    code: str | None = None,
    **extra: object,
) -> Response:
    error: dict[str, Any] = {"type": kind, "message": message, **extra}
    if code:
        error["code"] = code
    return Response(status, {"error": error})


class _InvalidRequestError(Exception):
    """Raised by a handler for a validation failure: Stripe saves no result for it."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@attrs.define
class Hold:
    """A gate inside the fake's handler: the next matching request waits in it.

    ``entered`` is set once the request is inside the provider's call: before it
    executes, or with ``after_commit`` once it executed but before the answer leaves
    (the client may die then, never hearing of the object). The test does what must
    happen meanwhile and calls :meth:`release`.
    """

    method: str
    path_prefix: str
    after_commit: bool = False
    entered: threading.Event = attrs.field(factory=threading.Event)
    released: threading.Event = attrs.field(factory=threading.Event)

    def release(self) -> None:
        """Let the held request execute and answer."""
        self.released.set()


@attrs.define
class _Saved:
    method: str
    path: str
    fingerprint: str
    saved_at: float
    response: Response | None = None


class FakeStripe(FakeServer):
    """A Stripe Connect stand-in: transfers, reversals, payouts, with Stripe's idempotency.

    As documented for API v1: an ``Idempotency-Key`` is scoped to the account (the
    ``Stripe-Account`` header, or the platform), not to a path. Once the endpoint began
    executing, its result is saved, 500s and refusals such as ``balance_insufficient``
    included, and a retry with the same key and parameters gets it again with
    ``Idempotent-Replayed: true``; other parameters or another endpoint get
    ``400 idempotency_error``; a key still in flight answers ``409``. Validation
    failures are not saved (the key may be used again). Keys are forgotten
    ``key_ttl`` seconds after first use, on the fake's clock (:meth:`advance`), after
    which the same request creates a second object, as Stripe does.

    Money moves like on Stripe: a transfer credits its destination's balance, a payout
    debits the connected account (a failed or canceled one gives it back:
    :meth:`settle_payout`), and a reversal needs the destination to hold the amount
    (``400 balance_insufficient`` otherwise).

    Lists page like Stripe's: newest first, ``limit`` (1 to 100, default 10) and
    ``starting_after``. A transfer object embeds only its 10 most recent reversals
    (``has_more`` tells there are others); ``GET /v1/transfers/{id}/reversals`` pages
    through all of them. ``GET /v1/payouts`` lists the payouts of the account named by
    the ``Stripe-Account`` header.

    Args:
        api_key: The secret key requests must carry.
        clock: UNIX time (``time.time`` by default); :meth:`advance` adds to it.
        key_ttl: Seconds an idempotency key is remembered (Stripe: at least 24 h).

    Attributes:
        transfers: Stored transfers by id.
        payouts: Stored payouts by id.
    """

    def __init__(
        self,
        api_key: str = "sk_test_fake",
        *,
        clock: Callable[[], float] = time.time,
        key_ttl: float = KEY_TTL,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.key_ttl = key_ttl
        self.transfers: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}
        self._balances: dict[tuple[str, str], int] = {}
        self._idempotency: dict[tuple[str, str], _Saved] = {}
        self._next = counter()
        self._clock = clock
        self._offset = 0.0
        self._clock_lock = threading.Lock()
        self._last_created = 0
        self._holds: list[Hold] = []
        self._inside_failures: list[tuple[int, str]] = []

    def now(self) -> float:
        """The fake's time (UNIX seconds): the clock plus what :meth:`advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (idempotency keys age, ``created`` moves on)."""
        with self._clock_lock:
            self._offset += seconds

    def hold(self, path_prefix: str, method: str = "POST", *, after_commit: bool = False) -> Hold:
        """Block the next matching request inside the call until ``release()``."""
        gate = Hold(method, path_prefix, after_commit)
        with self.lock:
            self._holds.append(gate)
        return gate

    def fail_inside(self, status: int = 500, *, path_prefix: str = "/") -> None:
        """Make the next matching POST fail after the endpoint began (Stripe saves it)."""
        with self.lock:
            self._inside_failures.append((status, path_prefix))

    def balance(self, account: str, currency: str) -> int:
        """A connected account's available balance in minor units."""
        with self.lock:
            return self._balances.get((account, currency.lower()), 0)

    def extra_headers(self) -> dict[str, str]:
        """Every response carries a ``Request-Id``."""
        return {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}

    def error_for_fault(self, fault: Fault) -> Response:
        """Stripe-shaped answers for injected statuses."""
        if fault.status == 429:
            return _st_error(
                429,
                "invalid_request_error",
                "Request rate limit exceeded. Please retry after a short delay.",
                code="rate_limit",
            )
        if fault.status in {409, 422}:  # concurrent access to one object
            return _st_error(
                409,
                "invalid_request_error",
                "This object cannot be accessed right now because another API request or "
                "Stripe process is currently accessing it.",
                code="lock_timeout",
            )
        return _st_error(fault.status, "api_error", "An unknown error occurred")

    def _created(self) -> int:
        now = int(self.now())
        with self._clock_lock:
            self._last_created = max(self._last_created + 1, now)
            return self._last_created

    def _wait_in_hold(self, request: Request, *, after_commit: bool = False) -> None:
        with self.lock:
            gate = next(
                (
                    g
                    for g in self._holds
                    if g.method == request.method
                    and request.path.startswith(g.path_prefix)
                    and g.after_commit == after_commit
                ),
                None,
            )
            if gate is not None:
                self._holds.remove(gate)
        if gate is not None:
            gate.entered.set()
            gate.released.wait(60)

    def _inside_failure(self, request: Request) -> Response | None:
        with self.lock:
            for index, (status, prefix) in enumerate(self._inside_failures):
                if request.method == "POST" and request.path.startswith(prefix):
                    del self._inside_failures[index]
                    return _st_error(status, "api_error", "An unknown error occurred")
        return None

    def route(self, request: Request) -> Response:
        """Dispatch one request, applying Stripe's idempotency layer to POSTs."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _st_error(
                401, "invalid_request_error", f"Invalid API Key provided: {self.api_key[:8]}****"
            )
        params = _form(request.body, request.query)
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            self._wait_in_hold(request)
            response = self._execute(request, params)
            self._wait_in_hold(request, after_commit=True)
            return response
        scope = (request.headers.get("stripe-account", ""), key)
        fingerprint = json.dumps(params, sort_keys=True)
        now = self.now()
        with self.lock:
            seen = self._idempotency.get(scope)
            if seen is not None and now - seen.saved_at >= self.key_ttl:
                del self._idempotency[scope]  # pruned: the request is new again
                seen = None
            if seen is None:
                self._idempotency[scope] = _Saved(request.method, request.path, fingerprint, now)
        if seen is not None:
            return self._replay(seen, request, fingerprint, key)
        self._wait_in_hold(request)
        try:
            response = self._inside_failure(request) or self._route(request, params)
        except _InvalidRequestError as invalid:
            with self.lock:  # validation failed before the endpoint ran: nothing saved
                del self._idempotency[scope]
            return invalid.response
        with self.lock:
            self._idempotency[scope].response = response
        self._wait_in_hold(request, after_commit=True)
        return response

    def _execute(self, request: Request, params: dict[str, Any]) -> Response:
        try:
            return self._route(request, params)
        except _InvalidRequestError as invalid:
            return invalid.response

    @staticmethod
    def _replay(seen: _Saved, request: Request, fingerprint: str, key: str) -> Response:
        if (seen.method, seen.path) != (request.method, request.path):
            return _st_error(
                400,
                "idempotency_error",
                f"Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{seen.method} {seen.path}'). Try using a key other "
                f"than '{key}' if you meant to execute a different request.",
            )
        if seen.fingerprint != fingerprint:
            return _st_error(
                400,
                "idempotency_error",
                f"Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if you "
                "meant to execute a different request.",
            )
        if seen.response is None:
            return _st_error(
                409,
                "invalid_request_error",
                "There is currently another in-progress request using this "
                f"Idempotent Key (that probably means you submitted twice): {key}.",
                code="idempotency_key_in_use",
            )
        first = seen.response
        return Response(first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"})

    def _route(self, request: Request, params: dict[str, Any]) -> Response:
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        match request.method, parts:
            case "POST", ["v1", "transfers"]:
                return self._create_transfer(params)
            case "GET", ["v1", "transfers"]:
                return self._list_transfers(params)
            case "GET", ["v1", "transfers", transfer_id]:
                with self.lock:
                    if transfer_id in self.transfers:
                        return Response(200, self._shown(self.transfers[transfer_id]))
                return self._missing("transfer", transfer_id)
            case "GET", ["v1", "transfers", transfer_id, "reversals"]:
                return self._list_reversals(transfer_id, params)
            case "GET", ["v1", "payouts"]:
                return self._list_payouts(params, request.headers.get("stripe-account"))
            case "POST", ["v1", "transfers", transfer_id, "reversals"]:
                return self._reverse(transfer_id, params)
            case "POST", ["v1", "payouts"]:
                return self._create_payout(params, request.headers.get("stripe-account"))
            case "GET", ["v1", "balance"]:
                return self._balance_of(request.headers.get("stripe-account") or "")
        return _st_error(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({request.method}: {request.path}).",
        )

    def _balance_of(self, account: str) -> Response:
        """``GET /v1/balance``: the account's available funds per currency (a read)."""
        with self.lock:
            available = [
                {"amount": amount, "currency": currency, "source_types": {"card": amount}}
                for (holder, currency), amount in sorted(self._balances.items())
                if holder == account
            ]
        return Response(
            200, {"object": "balance", "available": available, "pending": [], "livemode": False}
        )

    @staticmethod
    def _missing(kind: str, ident: str) -> Response:
        return _st_error(
            404,
            "invalid_request_error",
            f"No such {kind}: '{ident}'",
            code="resource_missing",
            param="id",
        )

    @classmethod
    def _optional_amount(cls, params: dict[str, Any]) -> int | None:
        return None if params.get("amount") is None else cls._amount(params)

    @staticmethod
    def _amount(params: dict[str, Any]) -> int:
        raw = params.get("amount")
        if raw is None:
            raise _InvalidRequestError(
                _st_error(
                    400,
                    "invalid_request_error",
                    "Missing required param: amount.",
                    code="parameter_missing",
                    param="amount",
                )
            )
        if not str(raw).isdigit() or int(raw) <= 0:
            raise _InvalidRequestError(
                _st_error(
                    400,
                    "invalid_request_error",
                    "Invalid positive integer",
                    code="parameter_invalid_integer",
                    param="amount",
                )
            )
        return int(raw)

    def _create_transfer(self, params: dict[str, Any]) -> Response:
        amount = self._amount(params)
        destination = params.get("destination", "")
        if not str(destination).startswith("acct_"):
            raise _InvalidRequestError(
                _st_error(
                    400,
                    "invalid_request_error",
                    f"No such destination: '{destination}'",
                    code="resource_missing",
                    param="destination",
                )
            )
        transfer_id = f"tr_{uuid.uuid4().hex[:24]}"
        transfer = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "currency": str(params.get("currency", "")).lower(),
            "destination": destination,
            "transfer_group": params.get("transfer_group"),
            "source_transaction": params.get("source_transaction"),
            "metadata": dict(params.get("metadata") or {}),
            "created": self._created(),
            "amount_reversed": 0,
            "reversed": False,
            "livemode": False,
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{transfer_id}/reversals",
            },
        }
        with self.lock:
            self.transfers[transfer_id] = transfer
            self._credit(str(destination), transfer["currency"], amount)
            return Response(200, self._shown(transfer))

    @staticmethod
    def _shown(transfer: dict[str, Any]) -> dict[str, Any]:
        """A transfer as Stripe shows it: only its 10 most recent reversals embedded."""
        stored = transfer["reversals"]
        shown = dict(transfer)
        shown["reversals"] = {
            **stored,
            "data": [dict(r) for r in stored["data"][:EMBEDDED_REVERSALS]],
            "has_more": len(stored["data"]) > EMBEDDED_REVERSALS,
        }
        return shown

    @staticmethod
    def _in_created(value: int, created: object) -> bool:
        if isinstance(created, dict):
            bounds = {k: int(v) for k, v in created.items()}
            return not (
                ("gt" in bounds and not value > bounds["gt"])
                or ("gte" in bounds and not value >= bounds["gte"])
                or ("lt" in bounds and not value < bounds["lt"])
                or ("lte" in bounds and not value <= bounds["lte"])
            )
        return created is None or value == int(str(created))

    def _page(
        self, kind: str, url: str, selected: list[dict[str, Any]], params: dict[str, Any]
    ) -> Response:
        """One page of ``selected`` (newest first) after ``starting_after``, ``limit`` long."""
        raw = str(params.get("limit", 10))
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            return _st_error(
                400,
                "invalid_request_error",
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                code="parameter_invalid_integer",
                param="limit",
            )
        limit = int(raw)
        after = params.get("starting_after")
        if after:
            ids = [item["id"] for item in selected]
            if after not in ids:
                return self._missing(kind, after)
            selected = selected[ids.index(after) + 1 :]
        page = selected[:limit]
        return Response(
            200,
            {
                "object": "list",
                "url": url,
                "has_more": len(selected) > limit,
                "data": page,
            },
        )

    def _list_transfers(self, params: dict[str, Any]) -> Response:
        created = params.get("created")
        with self.lock:
            items = sorted(self.transfers.values(), key=lambda t: t["created"], reverse=True)
            selected = [
                self._shown(transfer)
                for transfer in items
                if (
                    not params.get("destination")
                    or transfer["destination"] == params["destination"]
                )
                and (
                    not params.get("transfer_group")
                    or transfer["transfer_group"] == params["transfer_group"]
                )
                and self._in_created(transfer["created"], created)
            ]
        return self._page("transfer", "/v1/transfers", selected, params)

    def _list_reversals(self, transfer_id: str, params: dict[str, Any]) -> Response:
        with self.lock:
            transfer = self.transfers.get(transfer_id)
            if transfer is None:
                return self._missing("transfer", transfer_id)
            selected = [dict(r) for r in transfer["reversals"]["data"]]  # newest first
        return self._page(
            "transfer_reversal", f"/v1/transfers/{transfer_id}/reversals", selected, params
        )

    def _list_payouts(self, params: dict[str, Any], account: str | None) -> Response:
        created, status = params.get("created"), params.get("status")
        with self.lock:
            items = sorted(self.payouts.values(), key=lambda p: p["created"], reverse=True)
            selected = [
                dict(payout)
                for payout in items
                if payout["account"] == account
                and (not status or payout["status"] == status)
                and self._in_created(payout["created"], created)
            ]
        return self._page("payout", "/v1/payouts", selected, params)

    def _reverse(self, transfer_id: str, params: dict[str, Any]) -> Response:
        amount = self._optional_amount(params)
        with self.lock:
            transfer = self.transfers.get(transfer_id)
            if transfer is None:
                raise _InvalidRequestError(self._missing("transfer", transfer_id))
            remaining = transfer["amount"] - transfer["amount_reversed"]
            amount = remaining if amount is None else amount
            if amount <= 0 or amount > remaining:
                raise _InvalidRequestError(
                    _st_error(
                        400,
                        "invalid_request_error",
                        f"Amount ({amount}) is greater than the amount that can be reversed "
                        f"({remaining}).",
                        code="amount_too_large",
                        param="amount",
                    )
                )
            destination, currency = transfer["destination"], transfer["currency"]
            if self._balances.get((destination, currency), 0) < amount:
                return self._insufficient(destination)
            self._credit(destination, currency, -amount)
            reversal = {
                "id": f"trr_{uuid.uuid4().hex[:24]}",
                "object": "transfer_reversal",
                "amount": amount,
                "currency": transfer["currency"],
                "transfer": transfer_id,
                "metadata": dict(params.get("metadata") or {}),
                "created": self._created(),
            }
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
            transfer["reversals"]["data"].insert(0, reversal)
            transfer["reversals"]["total_count"] += 1
            return Response(200, dict(reversal))

    def _create_payout(self, params: dict[str, Any], account: str | None) -> Response:
        amount = self._amount(params)
        currency = str(params.get("currency", "")).lower()
        with self.lock:
            if self._balances.get((account or "", currency), 0) < amount:
                return self._insufficient(account or "the platform")
            self._credit(account or "", currency, -amount)
        payout = {
            "id": f"po_{uuid.uuid4().hex[:24]}",
            "object": "payout",
            "amount": amount,
            "currency": str(params.get("currency", "")).lower(),
            "status": "pending",
            "method": params.get("method", "standard"),
            "description": params.get("description"),
            "arrival_date": self._created() + 2 * 86400,
            "created": self._created(),
            "metadata": dict(params.get("metadata") or {}),
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "account": account,
        }
        with self.lock:
            self.payouts[payout["id"]] = payout
        return Response(200, dict(payout))

    def settle_payout(self, payout_id: str, status: str) -> dict[str, Any]:
        """Settle a payout as the bank does, and return the ``payout.<status>`` event.

        ``failed`` (also after ``paid``: a bank return) and ``canceled`` give the
        amount back to the connected account's balance, as Stripe does. The returned
        dict is the Stripe ``Event`` a webhook would carry (``data.object`` the payout).
        """
        if status not in PAYOUT_OUTCOMES:
            msg = f"status must be one of {sorted(PAYOUT_OUTCOMES)}, got {status!r}"
            raise ValueError(msg)
        with self.lock:
            payout = self.payouts[payout_id]
            if status in ("failed", "canceled") and payout["status"] not in ("failed", "canceled"):
                self._credit(payout["account"] or "", payout["currency"], payout["amount"])
            payout["status"] = status
            if status == "failed":
                payout["failure_code"] = "account_closed"
                payout["failure_message"] = "The bank account has been closed."
            shown = dict(payout)
        return {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": f"payout.{status}",
            "account": shown["account"],
            "created": self._created(),
            "data": {"object": shown},
        }

    def _credit(self, account: str, currency: str, amount: int) -> None:
        key = (account, currency)
        self._balances[key] = self._balances.get(key, 0) + amount

    @staticmethod
    def _insufficient(account: str) -> Response:
        return _st_error(
            400,
            "invalid_request_error",
            f"Insufficient funds in the Stripe account {account} to complete this request.",
            code="balance_insufficient",
        )

    # ------------------------------------------------------------------ test helpers

    def reset(self) -> None:
        """Forget every object, idempotency key, request and fault."""
        super().reset()
        with self.lock:
            self.transfers.clear()
            self.payouts.clear()
            self._idempotency.clear()
            self._balances.clear()
            self._holds.clear()
            self._inside_failures.clear()
            self._offset = 0.0

    def reversals_of(self, transfer_id: str) -> list[dict[str, Any]]:
        """The reversals stored on a transfer."""
        with self.lock:
            return list(self.transfers[transfer_id]["reversals"]["data"])
