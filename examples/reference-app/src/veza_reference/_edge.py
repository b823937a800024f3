"""A local CDN edge: checks Bunny tokens exactly as the CDN does, caches, pulls on a miss.

On in the demo and the tests (``VEZA_LOCAL_EDGE``), off in production settings, where
Bunny's own edge does this. It is here so the whole path can be exercised on one
machine: the app signs ``CDN_BASE_URL/<key>`` with veza-cdn; the edge verifies the token
with the same library (a bad or expired token is answered 403 and never reaches the
origin); a valid request is served from the cache, or pulled once from the app's
``/origin`` endpoint (which only answers the edge's secret header). Counters prove the
origin is not hit for a cached object.
"""

from __future__ import annotations

import collections
import hmac
import threading
from urllib.parse import quote, unquote

import httpx
from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veza_cdn import CDN, cache_control_for
from veza_storage import answer_range

ORIGIN_SECRET_HEADER = "X-Veza-Origin-Secret"  # noqa: S105 - a header name
TOKEN_SEGMENT = "bcdn_token="  # noqa: S105 - a URL marker
DENIED_HEADERS = {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of the origin secret."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LocalEdge:
    """The edge's state (cache, counters) and its ASGI app.

    Args:
        cdn: The app's CDN (its signer verifies tokens, rotation keys included).
        base_url: The edge's own base URL (what the app signs against).
        origin_url: The app's origin endpoint, e.g. ``http://127.0.0.1:8000/origin``.
        origin_secret: The header value the origin requires.
        registry: Where the edge's counters go.
        max_bytes: Cache size; least recently used objects are evicted.
    """

    def __init__(
        self,
        cdn: CDN,
        base_url: str,
        origin_url: str,
        origin_secret: str,
        registry: CollectorRegistry,
        *,
        max_bytes: int = 256 * 2**20,
    ) -> None:
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
        self.requests = Counter(
            "veza_edge_requests", "Edge requests by result.", ["result"], registry=registry
        )
        self.origin_fetches = Counter(
            "veza_edge_origin_fetches", "Pulls from the origin.", registry=registry
        )
        self._http = httpx.Client(timeout=30)
        self.app = Starlette(
            routes=[
                Route("/_edge/stats", self._stats, methods=["GET"]),
                Route("/{path:path}", self._serve, methods=["GET", "HEAD"]),
            ]
        )

    def close(self) -> None:
        """Close the origin connection pool."""
        self._http.close()

    def _count(self, result: str) -> None:
        self.stats[result] += 1
        self.requests.labels(result).inc()

    async def _stats(self, _request: Request) -> JSONResponse:
        return JSONResponse(
            {**self.stats, "cached_objects": len(self._cache), "cached_bytes": self._size}
        )

    def _serve(self, request: Request) -> Response:  # sync: Starlette runs it in a thread
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = self.base_url + raw_path + (f"?{query}" if query else "")
        verification = self.cdn.verify(url)
        if not verification:
            self._count("denied")
            return Response(
                f"403 Forbidden: {verification.detail}\n",
                status_code=403,
                media_type="text/plain",
                headers=DENIED_HEADERS,
            )
        path = raw_path.lstrip("/")
        if path.startswith(TOKEN_SEGMENT):  # directory form: /bcdn_token=…/path
            path = path.split("/", 1)[1] if "/" in path else ""
        key = unquote(path)
        cached = self._get(key)
        if cached is None:
            cached = self._pull(key)
            if cached is None:
                return Response(
                    "404 Not Found\n",
                    status_code=404,
                    media_type="text/plain",
                    headers=DENIED_HEADERS,
                )
        else:
            self._count("hit")
        body, content_type = cached
        answer = answer_range(request.headers.get("range"), len(body))
        headers = {
            **answer.headers,
            "Cache-Control": self._cache_control(key),
            "Access-Control-Allow-Origin": "*",
        }
        if answer.status == 416:  # noqa: PLR2004
            return Response(status_code=416, headers=headers)
        chunk = body
        if answer.byte_range is not None:
            chunk = body[answer.byte_range.start : answer.byte_range.end + 1]
        if request.method == "HEAD":
            chunk = b""
        return Response(chunk, status_code=answer.status, media_type=content_type, headers=headers)

    @staticmethod
    def _cache_control(key: str) -> str:
        try:
            return cache_control_for(key)
        except Exception:  # noqa: BLE001 - not a media type veza-cdn knows
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
            self.origin_fetches.inc()
            self.stats["origin_fetches"] += 1
            response = self._http.get(
                f"{self.origin_url}/{quote(key)}",
                headers={ORIGIN_SECRET_HEADER: self.origin_secret},
            )
            if response.status_code != 200:  # noqa: PLR2004
                return None
            entry = (
                response.content,
                response.headers.get("content-type", "application/octet-stream"),
            )
            with self._lock:
                self._cache[key] = entry
                self._size += len(entry[0])
                while self._size > self.max_bytes and len(self._cache) > 1:
                    _, (old, _) = self._cache.popitem(last=False)
                    self._size -= len(old)
            return entry
