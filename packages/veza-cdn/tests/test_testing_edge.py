"""``veza_cdn.testing.LocalEdge`` over real HTTP: it serves exactly the verified path.

A strict origin (a real HTTP server on 127.0.0.1 that answers only the edge's secret
header and records every path it is asked for) holds files inside and outside the
token's folder. The hostile corpus is sent byte for byte over a socket, through every
provider's folder token: nothing is served, and the origin is never asked for anything
outside the folder.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from veza_cdn import (
    CDN,
    AkamaiSigner,
    BunnySigner,
    CDNConfig,
    CloudFrontSigner,
    GoogleCDNSigner,
)
from veza_cdn.testing import ORIGIN_SECRET_HEADER, LocalEdge, hostile_paths, secret_matches

SECRET = "origin-secret"
FILES = {
    "hls/1/a.ts": b"segment-a",
    "hls/1/música b.m4s": b"unicode-segment",
    "hls/10/a.ts": b"SIBLING",
    "tracks/secret.wav": b"SECRET",
    "hls/1/tracks/secret.wav": b"inside-scope-decoy",
}


class _Origin:
    def __init__(self) -> None:
        self.asked: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.asked.append(self.path)
                body = FILES.get(unquote(self.path.removeprefix("/origin/")))
                if not secret_matches(self.headers.get(ORIGIN_SECRET_HEADER), SECRET):
                    self.send_response(403)
                    body = b""
                elif body is None:
                    self.send_response(404)
                    body = b""
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/origin"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def origin() -> Iterator[_Origin]:
    server = _Origin()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _raw_get(base: str, target: str, headers: str = "") -> tuple[int, bytes]:
    """Send ``target`` byte for byte (no client-side normalisation), return (status, body)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
        conn.sendall(request.encode("utf-8", "surrogateescape"))
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/"):  # closed, or an HTTP/0.9 answer: judge the bytes
        return 999, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


Folder = Callable[[str], str]


def _folder_tokens(base: str, ec_key) -> dict[str, tuple[CDN, Folder]]:
    """provider -> (CDN, function from a path to the request target carrying the token)."""
    exp = 2_000_000_000
    config = CDNConfig(enabled=False)

    def query_form(signed: str) -> Folder:
        query = signed.partition("?")[2]
        return lambda path: f"{path}?{query}"

    bunny = BunnySigner("k")
    directory = bunny.scoped(f"{base}/hls/1", expires=exp)(f"{base}/hls/1/a.ts")
    segment = directory[len(base) : directory.index("/hls/1/a.ts")]
    google = GoogleCDNSigner("g", "nZtRohdNF9m3cKM24IcK4w==")
    akamai = AkamaiSigner("0123456789abcdef")
    cloudfront = CloudFrontSigner("K1", ec_key)
    return {
        "bunny-directory": (CDN(config, signer=bunny), lambda path: f"{segment}{path}"),
        "bunny-query": (
            CDN(config, signer=bunny),
            query_form(bunny.sign_url(f"{base}/hls/1/a.ts", expires=exp, token_path="/hls/1")),
        ),
        "google-prefix": (
            CDN(config, signer=google),
            query_form(google.scoped(f"{base}/hls/1", expires=exp)(f"{base}/hls/1/a.ts")),
        ),
        "akamai-acl": (
            CDN(config, signer=akamai),
            query_form(akamai.scoped(f"{base}/hls/1", expires=exp)(f"{base}/hls/1/a.ts")),
        ),
        "cloudfront-wildcard": (
            CDN(config, signer=cloudfront),
            query_form(cloudfront.scoped(f"{base}/hls/1", expires=exp)(f"{base}/hls/1/a.ts")),
        ),
    }


@pytest.mark.parametrize(
    "provider",
    ["bunny-directory", "bunny-query", "google-prefix", "akamai-acl", "cloudfront-wildcard"],
)
def test_no_hostile_path_escapes_through_the_edge(origin, ec_key, provider):
    # the edge's base URL must be known before signing: reserve it, then serve on it
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    base = f"http://127.0.0.1:{port}"
    cdn, target = _folder_tokens(base, ec_key)[provider]
    edge = LocalEdge(cdn, base, origin_url=origin.url, origin_secret=SECRET)
    corpus = hostile_paths("/hls/1")
    with edge.serve(port=port) as url:
        assert url == base
        status, body = _raw_get(base, target("/hls/1/a.ts"))
        assert (status, body) == (200, b"segment-a")
        status, body = _raw_get(base, target("/hls/1/m%C3%BAsica%20b.m4s"))
        assert (status, body) == (200, b"unicode-segment")
        asked_before = list(origin.asked)
        escapes = []
        for path in corpus:
            status, body = _raw_get(base, target(path))
            if status < 400 or b"SECRET" in body or b"SIBLING" in body:
                escapes.append((path, status))
    assert len(corpus) >= 100
    assert escapes == []
    # the origin is never asked for anything outside the folder (a raw newline can end
    # a request line early: http.server then reads an HTTP/0.9 GET of a shorter path)
    outside = [p for p in origin.asked[len(asked_before) :] if not p.startswith("/origin/hls/1/")]
    assert outside == []
    assert edge.stats["denied"] >= len(corpus) - 10  # a few die earlier, as HTTP 400


def test_edge_caches_ranges_heads_and_counts(origin):
    registry = CollectorRegistry()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    base = f"http://127.0.0.1:{port}"
    signer = BunnySigner("k")
    cdn = CDN(CDNConfig(enabled=False), signer=signer)
    edge = LocalEdge(cdn, base, origin_url=origin.url, origin_secret=SECRET, registry=registry)
    signed = signer.sign_url(f"{base}/hls/1/a.ts", expires=2_000_000_000)
    with edge.serve(port=port):
        first = httpx.get(signed)
        assert first.status_code == 200 and first.content == b"segment-a"
        assert first.headers["cache-control"] == "public, max-age=86400, immutable"
        ranged = httpx.get(signed, headers={"Range": "bytes=2-4"})
        assert (ranged.status_code, ranged.content) == (206, b"gme")
        assert ranged.headers["content-range"] == "bytes 2-4/9"
        assert httpx.get(signed, headers={"Range": "bytes=50-"}).status_code == 416
        head = httpx.head(signed)
        assert head.status_code == 200 and head.content == b""
        forged = httpx.get(signed.replace("token=HS256-", "token=HS256-x"))
        assert forged.status_code == 403
        stats = httpx.get(f"{base}/_edge/stats").json()
    assert edge.stats["origin_fetches"] == 1 and stats["origin_fetches"] == 1
    assert stats["denied"] == 1 and stats["hit"] == 3
    assert b'veza_edge_requests_total{result="hit"} 3.0' in generate_latest(registry)
    assert "origin-secret" not in repr(edge)


def test_edge_app_is_plain_asgi(origin):
    """The same edge as an ASGI app (what the reference app serves with uvicorn)."""
    import asyncio

    signer = BunnySigner("k")
    edge = LocalEdge(
        CDN(CDNConfig(enabled=False), signer=signer),
        "http://edge",
        origin_url=origin.url,
        origin_secret=SECRET,
    )
    signed = signer.sign_url("http://edge/hls/1/a.ts", expires=2_000_000_000)
    path, _, query = signed.removeprefix("http://edge").partition("?")
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [],
    }
    asyncio.run(edge.app(scope, receive, send))
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"segment-a"
    hostile = dict(scope, raw_path=b"/hls/1/..%2f..%2ftracks/secret.wav")
    sent.clear()
    asyncio.run(edge.app(hostile, receive, send))
    assert sent[0]["status"] == 403
