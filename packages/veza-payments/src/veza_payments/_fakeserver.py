"""A tiny threaded HTTP server on 127.0.0.1 with fault injection, shared by the fakes.

Faults model what goes wrong between a client and a payments provider, and on which
side of the provider's commit it happens: that difference is the whole point of
idempotency. ``drop`` closes the connection without an answer; ``status`` answers an
error; ``slow`` answers after a delay longer than the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import attrs

FAULT_KINDS = frozenset({"drop", "status", "slow"})


@attrs.frozen
class Fault:
    """One injected failure.

    Attributes:
        kind: ``drop`` (close without answering), ``status`` (answer ``status``) or
            ``slow`` (sleep ``delay`` seconds, then answer normally).
        after_commit: Whether the provider applies the request first (the dangerous
            case: the object exists but the client never hears of it).
        status: For ``status``: 429, 500, 502, 503, 504, or 422 (``HE_00``, busy).
        retry_after: ``Retry-After`` seconds to send with a 429/503.
        delay: For ``slow``: seconds to wait before answering.
        method: Only requests with this method (``None``: any).
        path_prefix: Only paths starting with this (``None``: any).
    """

    kind: str
    after_commit: bool = False
    status: int = 503
    retry_after: float | None = None
    delay: float = 1.0
    method: str | None = None
    path_prefix: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            msg = f"fault kind must be one of {sorted(FAULT_KINDS)}, got {self.kind!r}"
            raise ValueError(msg)

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@attrs.frozen
class Response:
    """What a fake's route answers."""

    status: int
    body: Any
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def encoded(self) -> bytes:
        """The body as bytes (JSON unless already bytes)."""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


@attrs.frozen
class Request:
    """A request as a fake's route sees it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


class FakeServer:
    """Base of the provider fakes: routing, faults, request log, lifecycle.

    Subclasses implement :meth:`route`. ``error_for_fault`` renders an injected error
    in the provider's own error shape.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._inflight = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Listen on an ephemeral port of 127.0.0.1 (in a daemon thread)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *_args: object) -> None:
                return

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            msg = "the fake is not started"
            raise RuntimeError(msg)
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------ faults

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each applies once, to the next request it matches."""
        with self._faults_lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        """Forget queued faults."""
        with self._faults_lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Faults not yet consumed."""
        with self._faults_lock:
            return len(self._faults)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._faults_lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    return self._faults.pop(index)
        return None

    # ------------------------------------------------------------------ serving

    def route(self, request: Request) -> Response:
        """Answer a request (subclasses)."""
        raise NotImplementedError

    def error_for_fault(self, fault: Fault) -> Response:
        """The provider-shaped error answer for an injected ``status`` fault."""
        raise NotImplementedError

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being served (a slow fault may still be sleeping).

        Returns:
            Whether the fake became idle within ``timeout`` seconds.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)

    def reset(self) -> None:
        """Forget requests and faults (subclasses also forget their objects)."""
        self.clear_faults()
        with self.lock:
            self.requests.clear()

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        with self._idle:
            self._inflight += 1
        try:
            self._serve(handler)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = Request(handler.command, path, query, headers, body)
        with self.lock:
            self.requests.append(request)
        fault = self._take_fault(request.method, path)
        if fault is not None and fault.kind == "slow":
            # Before commit: the provider applies the request late, possibly after the
            # client's retry already did (a real race the client must survive).
            if fault.after_commit:
                response = self.route(request)
                time.sleep(fault.delay)
            else:
                time.sleep(fault.delay)
                response = self.route(request)
            self._write(handler, response)
            return
        if fault is not None and not fault.after_commit:
            self._fail(handler, fault)
            return
        response = self.route(request)
        if fault is not None:
            self._fail(handler, fault)
            return
        self._write(handler, response)

    def _fail(self, handler: BaseHTTPRequestHandler, fault: Fault) -> None:
        if fault.kind == "drop":
            handler.close_connection = True
            return
        error = self.error_for_fault(fault)
        if fault.retry_after is not None:
            error = attrs.evolve(
                error, headers={**error.headers, "Retry-After": f"{fault.retry_after:g}"}
            )
        self._write(handler, error)

    def _write(self, handler: BaseHTTPRequestHandler, response: Response) -> None:
        payload = response.encoded()
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in self.extra_headers().items():
                handler.send_header(name, value)
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            handler.close_connection = True

    def extra_headers(self) -> dict[str, str]:
        """Headers on every response (request ids)."""
        return {}


def counter() -> Callable[[], int]:
    """A thread-safe increasing counter."""
    lock = threading.Lock()
    state = [0]

    def next_value() -> int:
        with lock:
            state[0] += 1
            return state[0]

    return next_value
