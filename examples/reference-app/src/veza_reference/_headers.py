"""Security headers on every response: a strict CSP, no framing, no sniffing, no referrer.

HTML pages get a Content-Security-Policy with no inline script and no inline style: the
page's code is ``/static/*.js``, its style ``/static/style.css``. Media and fetches may
also go to the CDN edge and the storage's presigned-URL host (playback redirects
there), found by signing a probe URL at start-up. Other responses get
``default-src 'none'`` so a JSON answer opened as a page runs nothing. A route that
serves a page with known inline scripts (the API viewer) sets its own policy, with
their hashes; this middleware leaves that one alone.

A plain ASGI middleware, not ``BaseHTTPMiddleware``: it adds headers to the first
message and never buffers a body, so the stream redirect stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = b"content-security-policy"
NOT_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # signed URLs never leak to other sites
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
    (b"cross-origin-opener-policy", b"same-origin"),
]


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, or ``None`` for a relative or odd URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def page_policy(media_origins: Iterable[str], *, scripts: Iterable[str] = ()) -> str:
    """The CSP of the app's pages; ``scripts`` adds ``'sha256-…'`` sources or origins."""
    media = " ".join(sorted({o for o in media_origins if o}))
    script_sources = " ".join(["'self'", *scripts])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_sources}",
            "style-src 'self'",
            "img-src 'self' data:",
            f"media-src 'self' blob: {media}".rstrip(),
            f"connect-src 'self' {media}".rstrip(),
            "worker-src 'self' blob:",  # hls.js runs its demuxer in a blob: worker
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def inline_hashes(html: str, tag: str = "script") -> list[str]:
    """``'sha256-…'`` CSP sources for each inline ``<script>`` (or ``tag``) of ``html``."""
    sources = []
    for body in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        sources.append(f"'sha256-{digest}'")
    return sources


class SecurityHeaders:
    """Adds the headers above to every HTTP response of ``app``."""

    def __init__(self, app: ASGIApp, *, html_policy: str) -> None:
        """``html_policy``: the CSP of HTML responses (see :func:`page_policy`)."""
        self.app = app
        self.html_policy = html_policy.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to add the headers to ``http.response.start``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        html_policy = self.html_policy

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if CSP not in names:
                    content_type = next(
                        (v for n, v in headers if n.lower() == b"content-type"), b""
                    )
                    policy = html_policy if content_type.startswith(b"text/html") else None
                    headers.append((CSP, policy or NOT_HTML_POLICY.encode()))
                headers.extend(h for h in COMMON if h[0] not in names)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
