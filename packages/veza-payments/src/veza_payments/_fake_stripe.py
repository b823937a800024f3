"""The Stripe fake (see :mod:`veza_payments.testing`)."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote

from veza_payments._fakeserver import FakeServer, Fault, Request, Response, counter

__all__ = ["FakeStripe"]
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
    **extra: Any,  # noqa: ANN401
) -> Response:
    error: dict[str, Any] = {"type": kind, "message": message, **extra}
    if code:
        error["code"] = code
    return Response(status, {"error": error})


class FakeStripe(FakeServer):
    """A Stripe Connect stand-in: transfers, reversals, payouts, with idempotent replay.

    A request whose ``Idempotency-Key`` was seen (per account, method and path) gets
    the first response again with ``Idempotent-Replayed: true`` when the parameters
    match, and ``400 idempotency_error`` when they differ; a key still in flight
    answers ``409``.

    Args:
        api_key: The secret key requests must carry.

    Attributes:
        transfers: Stored transfers by id.
        payouts: Stored payouts by id.
    """

    def __init__(self, api_key: str = "sk_test_fake") -> None:
        super().__init__()
        self.api_key = api_key
        self.transfers: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[tuple[str, str, str, str], tuple[str, Response | None]] = {}
        self._next = counter()
        self._clock_lock = threading.Lock()
        self._last_created = 0

    def extra_headers(self) -> dict[str, str]:
        """Every response carries a ``Request-Id``."""
        return {"Request-Id": f"req_{uuid.uuid4().hex[:14]}"}

    def error_for_fault(self, fault: Fault) -> Response:
        """Stripe-shaped answers for injected statuses."""
        if fault.status == 429:  # noqa: PLR2004
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
        with self._clock_lock:
            self._last_created = max(self._last_created + 1, int(time.time()))
            return self._last_created

    def route(self, request: Request) -> Response:
        """Dispatch one request, applying Stripe's idempotency layer to POSTs."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _st_error(
                401, "invalid_request_error", f"Invalid API Key provided: {self.api_key[:8]}****"
            )
        params = _form(request.body, request.query)
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return self._route(request, params)
        scope = (request.headers.get("stripe-account", ""), request.method, request.path, key)
        fingerprint = json.dumps(params, sort_keys=True)
        with self.lock:
            seen = self._idempotency.get(scope)
            if seen is None:
                self._idempotency[scope] = (fingerprint, None)
        if seen is not None:
            first_params, first_response = seen
            if first_params != fingerprint:
                return _st_error(
                    400,
                    "idempotency_error",
                    f"Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                )
            if first_response is None:
                return _st_error(
                    409,
                    "invalid_request_error",
                    "There is currently another in-progress request using this "
                    f"Idempotent Key (that probably means you submitted twice): {key}.",
                    code="idempotency_key_in_use",
                )
            return Response(
                first_response.status,
                first_response.body,
                {**first_response.headers, "Idempotent-Replayed": "true"},
            )
        response = self._route(request, params)
        with self.lock:
            if response.status >= 500:  # noqa: PLR2004 - not executed: the key may be reused
                del self._idempotency[scope]
            else:
                self._idempotency[scope] = (fingerprint, response)
        return response

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
                        return Response(200, dict(self.transfers[transfer_id]))
                return self._missing("transfer", transfer_id)
            case "POST", ["v1", "transfers", transfer_id, "reversals"]:
                return self._reverse(transfer_id, params)
            case "POST", ["v1", "payouts"]:
                return self._create_payout(params, request.headers.get("stripe-account"))
        return _st_error(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({request.method}: {request.path}).",
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

    @staticmethod
    def _amount(params: dict[str, Any], required: bool = True) -> int | Response | None:
        raw = params.get("amount")
        if raw is None:
            if required:
                return _st_error(
                    400,
                    "invalid_request_error",
                    "Missing required param: amount.",
                    code="parameter_missing",
                    param="amount",
                )
            return None
        if not str(raw).isdigit() or int(raw) <= 0:
            return _st_error(
                400,
                "invalid_request_error",
                "Invalid positive integer",
                code="parameter_invalid_integer",
                param="amount",
            )
        return int(raw)

    def _create_transfer(self, params: dict[str, Any]) -> Response:
        amount = self._amount(params)
        if isinstance(amount, Response):
            return amount
        destination = params.get("destination", "")
        if not str(destination).startswith("acct_"):
            return _st_error(
                400,
                "invalid_request_error",
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
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
        return Response(200, dict(transfer))

    def _list_transfers(self, params: dict[str, Any]) -> Response:
        limit = max(1, min(int(params.get("limit", 10)), 100))
        created = params.get("created")
        with self.lock:
            items = sorted(self.transfers.values(), key=lambda t: t["created"], reverse=True)
        selected = []
        for transfer in items:
            if params.get("destination") and transfer["destination"] != params["destination"]:
                continue
            if params.get("transfer_group") and (
                transfer["transfer_group"] != params["transfer_group"]
            ):
                continue
            if isinstance(created, dict):
                bounds = {k: int(v) for k, v in created.items()}
                value = transfer["created"]
                if (
                    ("gt" in bounds and not value > bounds["gt"])
                    or ("gte" in bounds and not value >= bounds["gte"])
                    or ("lt" in bounds and not value < bounds["lt"])
                    or ("lte" in bounds and not value <= bounds["lte"])
                ):
                    continue
            elif created is not None and transfer["created"] != int(created):
                continue
            selected.append(transfer)
        after = params.get("starting_after")
        if after:
            ids = [t["id"] for t in selected]
            if after not in ids:
                return self._missing("transfer", after)
            selected = selected[ids.index(after) + 1 :]
        page = selected[:limit]
        return Response(
            200,
            {
                "object": "list",
                "url": "/v1/transfers",
                "has_more": len(selected) > limit,
                "data": [dict(t) for t in page],
            },
        )

    def _reverse(self, transfer_id: str, params: dict[str, Any]) -> Response:
        amount = self._amount(params, required=False)
        if isinstance(amount, Response):
            return amount
        with self.lock:
            transfer = self.transfers.get(transfer_id)
            if transfer is None:
                return self._missing("transfer", transfer_id)
            remaining = transfer["amount"] - transfer["amount_reversed"]
            amount = remaining if amount is None else amount
            if amount <= 0 or amount > remaining:
                return _st_error(
                    400,
                    "invalid_request_error",
                    f"Amount ({amount}) is greater than the amount that can be reversed "
                    f"({remaining}).",
                    code="amount_too_large",
                    param="amount",
                )
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
        if isinstance(amount, Response):
            return amount
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
            "livemode": False,
            "account": account,
        }
        with self.lock:
            self.payouts[payout["id"]] = payout
        return Response(200, dict(payout))

    # ------------------------------------------------------------------ test helpers

    def reset(self) -> None:
        """Forget every object, idempotency key, request and fault."""
        super().reset()
        with self.lock:
            self.transfers.clear()
            self.payouts.clear()
            self._idempotency.clear()

    def reversals_of(self, transfer_id: str) -> list[dict[str, Any]]:
        """The reversals stored on a transfer."""
        with self.lock:
            return list(self.transfers[transfer_id]["reversals"]["data"])
