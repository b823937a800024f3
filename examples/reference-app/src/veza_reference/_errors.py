"""Package errors to HTTP answers, in one place.

Every package raises typed errors; the routes let them propagate and these handlers
answer ``{"error": {"type": …, "message": …}}`` with the status that fits. Bad input is a
4xx, a provider outage a 503; nothing a client sends should produce a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from veza_ledger import (
    IllegalTransitionError,
    LedgerConfigurationError,
    LedgerError,
    RecordNotFoundError,
    RefundExceedsCapturedError,
    TransitionConflictError,
)
from veza_payments import (
    APIConnectionError,
    AuthenticationError,
    IdempotencyConflictError,
    InvalidRequestError,
    PaymentBlockedError,
    PaymentsError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from veza_storage import (
    ChecksumMismatchError,
    ChunkConflictError,
    ChunkError,
    ChunkTooLargeError,
    InvalidKeyError,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    SignatureError,
    StorageError,
    UploadIncompleteError,
    UploadNotFoundError,
)

logger = logging.getLogger("veza_reference")

STATUS: list[tuple[type[Exception], int]] = [
    # storage
    (InvalidKeyError, 400),
    (ChunkConflictError, 409),  # before ChunkError: its subclasses first
    (ChunkTooLargeError, 413),
    (ChunkError, 400),
    (ChecksumMismatchError, 422),
    (UploadIncompleteError, 409),
    (UploadNotFoundError, 404),
    (ObjectNotFoundError, 404),
    (RangeNotSatisfiableError, 416),
    (SignatureError, 403),
    (StorageError, 503),
    # ledger
    (RecordNotFoundError, 404),
    (RefundExceedsCapturedError, 422),
    (IllegalTransitionError, 409),
    (TransitionConflictError, 409),
    (LedgerConfigurationError, 400),
    (LedgerError, 409),
    # payments (the provider's refusals are the client's problem; its outages are not)
    (IdempotencyConflictError, 409),
    (PaymentBlockedError, 402),
    (AuthenticationError, 503),
    (RateLimitError, 503),
    (ServerError, 503),
    (APIConnectionError, 503),
    (InvalidRequestError, 409),
    (ProviderError, 503),  # every provider's outage (Stripe's is no HyperswitchError)
    (PaymentsError, 400),
]


class ClientError(Exception):
    """An app-level 4xx (``status``, ``message``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _answer(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def client_error(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ClientError):  # registered for ClientError only
            raise exc
        kind = {401: "unauthenticated", 403: "forbidden", 429: "rate_limited"}
        answer = _answer(exc.status, kind.get(exc.status, "invalid_request"), exc.message)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            answer.headers["Retry-After"] = str(retry_after)
        return answer

    async def package_error(request: Request, exc: Exception) -> JSONResponse:
        for kind, status in STATUS:
            if isinstance(exc, kind):
                if status >= 500:
                    logger.warning(
                        "%s %s: %s", request.method, request.url.path, type(exc).__name__
                    )
                return _answer(status, type(exc).__name__, str(exc))
        raise exc  # pragma: no cover - only registered for the types above

    app.add_exception_handler(ClientError, client_error)
    for kind in {k for k, _ in STATUS}:
        app.add_exception_handler(kind, package_error)
