"""``create_app(services)``: the FastAPI application, routes only.

Everything it needs is built once by :func:`veza_reference.build_services`; the app is
the HTTP translation layer over it. Every response carries the security headers of
``_headers`` (a strict CSP on pages); the pages build their DOM with text APIs only.
"""

from __future__ import annotations

import contextlib
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from veza_reference import _auth, _errors, _routes_media, _routes_money, _routes_ops
from veza_reference._access import Access
from veza_reference._headers import (
    SecurityHeaders,
    inline_hashes,
    origin_of,
    page_policy,
)
from veza_reference._services import Services
from veza_reference._version import __version__

STATIC = files("veza_reference") / "static"
SWAGGER_CDN = "https://cdn.jsdelivr.net"


def media_origins(services: Services) -> list[str]:
    """Where playback redirects go: the CDN edge and the storage's presigned-URL host."""
    origins = [origin_of(services.public_url)]
    with contextlib.suppress(Exception):  # a probe only: a failing signer adds nothing
        origins.append(origin_of(services.storage.presign_get("csp-probe", expires_in=60)))
    if services.cdn.is_enabled:
        with contextlib.suppress(Exception):
            origins.append(origin_of(services.cdn.signed_url("csp-probe")))
    return sorted({o for o in origins if o})


def _viewer(page: HTMLResponse, origins: list[str]) -> HTMLResponse:
    """The API viewer's page with a CSP admitting exactly its inline script (by hash)."""
    html = bytes(page.body).decode()
    policy = page_policy(origins, scripts=[*inline_hashes(html), SWAGGER_CDN])
    styles = " ".join(["'self'", *inline_hashes(html, "style"), "https:"])
    policy = policy.replace("style-src 'self'", f"style-src {styles}; font-src 'self' https:")
    policy = policy.replace("img-src 'self' data:", "img-src 'self' data: https:")
    page.headers["Content-Security-Policy"] = policy
    return page


def create_app(services: Services) -> FastAPI:
    """The ASGI application over ``services``."""
    app = FastAPI(
        title="veza reference app",
        version=__version__,
        description="The thin server where the veza packages meet.",
        docs_url=None,
        redoc_url=None,
    )
    _errors.install(app)
    app.state.services = services  # the auth dependencies find it here
    access = Access(services)
    app.include_router(_auth.build_router(services))
    app.include_router(_routes_media.build_router(services, access))
    app.include_router(_routes_money.build_router(services, access))
    app.include_router(_routes_ops.build_router(services))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    origins = media_origins(services)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/call", include_in_schema=False)
    def call() -> HTMLResponse:
        return HTMLResponse((STATIC / "call.html").read_text(encoding="utf-8"))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API")
        return _viewer(page, origins)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _viewer(get_redoc_html(openapi_url="/openapi.json", title=app.title), origins)

    @app.get("/vendor/hls.min.js", include_in_schema=False)
    def hls_js() -> Response:
        if services.config.hls_js_path is None:
            return Response(
                "// hls.js is not configured (VEZA_HLS_JS_PATH)\n",
                status_code=404,
                media_type="application/javascript",
            )
        return FileResponse(services.config.hls_js_path, media_type="application/javascript")

    app.add_middleware(SecurityHeaders, html_policy=page_policy(origins))
    app.state.access = access
    return app
