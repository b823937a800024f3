"""A local CDN edge for tests: verifies tokens as the CDN does, caches, pulls on a miss.

Your application signs ``<edge base URL>/<key>`` with veza-cdn; the edge checks each
request with the same library (a bad, expired or out-of-scope token, or an unsafe path,
is answered 403 and never reaches the origin), serves a valid request from its cache,
or pulls it once from your origin, sending a secret header your origin requires.

It serves **exactly the path the verifier accepted** (``Verification.path``, decoded
once) and no other spelling of it: it never re-parses the URL, never resolves dot
segments, and asks the origin for that path percent-encoded once. Counters prove the
origin is not hit for cached or refused requests.

Standard library only: :attr:`LocalEdge.app` is a plain ASGI callable (run it with any
ASGI server), and :meth:`LocalEdge.serve` runs it on a ``ThreadingHTTPServer``.
Prometheus counters are kept only when a registry is given (``veza-cdn[metrics]``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hmac
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from veza_cdn._compat import positional_deprecated
from veza_cdn._errors import CDNConfigurationError
from veza_cdn._hls import UnknownMediaTypeError, cache_control_for

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from veza_cdn._service import CDN

ORIGIN_SECRET_HEADER = "X-Veza-Origin-Secret"  # noqa: S105 - a header name
DENIED_HEADERS = {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}
_PARTIAL = 206
_UNSATISFIABLE = 416
_OK = 200
_FORBIDDEN = 403
_NOT_FOUND = 404
_ASCII_END = 0x80

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of the origin secret (for your origin endpoint)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@attrs.frozen
class EdgeResponse:
    """What the edge answers: status, headers, body (empty for ``HEAD``)."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


def _wire_path(raw: bytes) -> str:
    """The request target's path as text: ASCII kept, other bytes percent-encoded.

    A client may send raw UTF-8 in the request line; re-encoding its bytes lets the
    path rule decode it exactly once, like any ``%XX``.
    """
    return "".join(chr(b) if b < _ASCII_END else f"%{b:02X}" for b in raw)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """The single byte range a ``Range`` header asks for.

    ``(start, end)`` when satisfiable, ``False`` when not (416), ``None`` for a full
    answer: multiple or malformed ranges may be ignored (RFC 9110).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[len("bytes=") :].strip().partition("-")
    if not sep or not (first or last) or not (first + last).isdigit():
        return None
    if not first:
        length = int(last)
        if length == 0 or size == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


class LocalEdge:
    """The edge's state (cache, counters) and its ASGI app.

    Args:
        cdn: The application's :class:`~veza_cdn.CDN`; its signer verifies tokens,
            rotation keys included.
        base_url: The edge's own base URL (what the application signs against).
        origin_url: The origin endpoint, e.g. ``http://127.0.0.1:8000/origin``; the
            edge asks ``<origin_url>/<verified path, percent-encoded>``.
        origin_secret: The value of ``ORIGIN_SECRET_HEADER`` the origin requires.
        registry: A ``prometheus_client`` registry for the edge's counters
            (``veza_edge_requests``, ``veza_edge_origin_fetches``); none kept without.
        max_bytes: Cache size; least recently used objects are evicted.

    Attributes:
        stats: Plain counters (``hit``, ``miss``, ``denied``, ``origin_fetches``, ...).
        app: The ASGI application (``/_edge/stats`` and every other path).
    """

    @positional_deprecated
    def __init__(
        self,
        cdn: CDN,
        base_url: str,
        *,
        origin_url: str,
        origin_secret: str,
        registry: CollectorRegistry | None = None,
        max_bytes: int = 256 * 2**20,
    ) -> None:
        if not origin_url.startswith(("http://", "https://")):
            msg = f"origin_url must be an http(s) URL, got {origin_url[:60]!r}"
            raise CDNConfigurationError(msg)
        self.cdn = cdn
        self.base_url = base_url.rstrip("/")
        self.origin_url = origin_url.rstrip("/")
        self.origin_secret = origin_secret
        self.max_bytes = max_bytes
        self._cache: collections.OrderedDict[str, tuple[bytes, str]] = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self.stats = collections.Counter[str]()
        self.requests: Any = None
        self.origin_fetches: Any = None
        if registry is not None:
            from prometheus_client import Counter

            self.requests = Counter(
                "veza_edge_requests", "Edge requests by result.", ["result"], registry=registry
            )
            self.origin_fetches = Counter(
                "veza_edge_origin_fetches", "Pulls from the origin.", registry=registry
            )
        self.app = _ASGIApp(self)

    def __repr__(self) -> str:
        return f"LocalEdge(base_url={self.base_url!r}, origin_url={self.origin_url!r})"

    def close(self) -> None:
        """Release resources (kept for API compatibility: origin pulls hold no pool)."""
        with self._lock:
            self._cache.clear()
            self._size = 0

    # ------------------------------------------------------------------ the edge itself

    @positional_deprecated
    def handle(
        self,
        method: str,
        raw_path: str,
        *,
        query: str,
        headers: Mapping[str, str],
        client_ip: str | None = None,
    ) -> EdgeResponse:
        """Answer one request: the whole edge, independent of any HTTP server.

        Args:
            method: ``GET`` or ``HEAD``.
            raw_path: The path exactly as requested (percent-encoded).
            query: The raw query string, without ``?``.
            headers: Request headers, lower-case names (``range`` is read).
            client_ip: The client's address, checked against IP-bound tokens (a real edge
                sees it on the connection; an IP-bound token without it is refused).
        """
        if method not in ("GET", "HEAD"):
            return EdgeResponse(405, {"Allow": "GET, HEAD", **DENIED_HEADERS})
        if raw_path == "/_edge/stats":
            body = json.dumps(
                {**self.stats, "cached_objects": len(self._cache), "cached_bytes": self._size}
            ).encode()
            return EdgeResponse(_OK, {"Content-Type": "application/json"}, body)
        url = self.base_url + raw_path + (f"?{query}" if query else "")
        verification = self.cdn.verify(url, user_ip=client_ip)
        if not verification or verification.path is None:
            self._count("denied")
            detail = verification.detail if not verification else "no verified path to serve"
            text = f"403 Forbidden: {detail}\n".encode("utf-8", "replace")
            return EdgeResponse(
                _FORBIDDEN, {"Content-Type": "text/plain; charset=utf-8", **DENIED_HEADERS}, text
            )
        key = verification.path[1:]  # exactly the decoded path the token was checked for
        cached = self._get(key)
        if cached is None:
            cached = self._pull(key)
            if cached is None:
                return EdgeResponse(
                    _NOT_FOUND, {"Content-Type": "text/plain", **DENIED_HEADERS}, b"404\n"
                )
        else:
            self._count("hit")
        return self._answer(method, key, cached, headers.get("range"))

    def _answer(
        self, method: str, key: str, cached: tuple[bytes, str], range_header: str | None
    ) -> EdgeResponse:
        body, content_type = cached
        size = len(body)
        headers = {
            "Accept-Ranges": "bytes",
            "Cache-Control": self._cache_control(key),
            "Access-Control-Allow-Origin": "*",
            "Content-Type": content_type,
        }
        wanted = _byte_range(range_header, size)
        if wanted is False:
            headers.update({"Content-Range": f"bytes */{size}", "Content-Length": "0"})
            return EdgeResponse(_UNSATISFIABLE, headers)
        status, chunk = _OK, body
        if isinstance(wanted, tuple):
            start, end = wanted
            status, chunk = _PARTIAL, body[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(len(chunk))
        return EdgeResponse(status, headers, b"" if method == "HEAD" else chunk)

    def _count(self, result: str) -> None:
        self.stats[result] += 1
        if self.requests is not None:
            self.requests.labels(result).inc()

    @staticmethod
    def _cache_control(key: str) -> str:
        try:
            return cache_control_for(key)
        except UnknownMediaTypeError:
            return "public, max-age=86400"

    def _get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _pull(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            gate = self._fetching.setdefault(key, threading.Lock())
        with gate:  # one pull per object, however many requests miss at once
            cached = self._get(key)
            if cached is not None:
                self._count("hit")
                return cached
            self._count("miss")
            self.stats["origin_fetches"] += 1
            if self.origin_fetches is not None:
                self.origin_fetches.inc()
            request = urllib.request.Request(
                f"{self.origin_url}/{quote(key, safe='/')}",
                headers={ORIGIN_SECRET_HEADER: self.origin_secret},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    entry = (
                        response.read(),
                        response.headers.get("content-type", "application/octet-stream"),
                    )
            except (urllib.error.URLError, OSError):
                return None
            with self._lock:
                self._cache[key] = entry
                self._size += len(entry[0])
                while self._size > self.max_bytes and len(self._cache) > 1:
                    _, (old, _) = self._cache.popitem(last=False)
                    self._size -= len(old)
            return entry

    # ------------------------------------------------------------------ servers

    async def asgi(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        """The ASGI 3 entry point (``app`` calls it)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        answer = await asyncio.to_thread(
            functools.partial(
                self.handle,
                scope["method"],
                _wire_path(raw),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                client_ip=client[0] if client else None,
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the edge on a standard-library threaded HTTP server.

        Yields:
            The server's base URL (``http://127.0.0.1:<port>``); stopped on exit.
        """
        edge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _respond(self) -> None:
                target = self.path
                if not target.startswith("/"):
                    self.send_error(400, "origin-form request target expected")
                    return
                path, _, query = target.partition("?")
                answer = edge.handle(
                    self.command,
                    _wire_path(path.encode("latin-1")),
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    client_ip=self.client_address[0],
                )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in answer.headers:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _respond

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="veza-edge", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


class _ASGIApp:
    """The edge as an ASGI 3 application object.

    ASGI servers tell ASGI 3 from ASGI 2 by an ``async def __call__``; a bound method
    would be taken for ASGI 2 by some (uvicorn), so the edge exposes this object.
    """

    def __init__(self, edge: LocalEdge) -> None:
        self._edge = edge

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        await self._edge.asgi(scope, receive, send)
