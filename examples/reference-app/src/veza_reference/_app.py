"""``create_app(services)``: the FastAPI application, routes only.

Everything it needs is built once by :func:`veza_reference.build_services`; the app is
the HTTP translation layer over it. Every response carries the security headers of
``_headers`` (a strict CSP on pages); the pages build their DOM with text APIs only.

Every asset a page loads is served by the app itself under ``/vendor/``, so the demo
works offline and the CSP stays ``'self'``: Swagger UI from the ``swagger-ui-bundle-v2``
wheel (a PyPI dependency), hls.js from the package data the build hook fetched (pinned
by version and sha512, see ``hatch_build.py``). No page loads anything from a CDN.
"""

from __future__ import annotations

import contextlib
import threading
from importlib.resources import files
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from veza_reference import (
    _auth,
    _errors,
    _routes_media,
    _routes_money,
    _routes_ops,
    _routes_shares,
)
from veza_reference._access import Access
from veza_reference._headers import SecurityHeaders, origin_of, page_policy
from veza_reference._hls_jobs import HlsJobs
from veza_reference._services import Services
from veza_reference._version import __version__

STATIC = files("veza_reference") / "static"
VENDOR = files("veza_reference") / "vendor"
SWAGGER_UI = Path(swagger_ui_bundle.swagger_ui_path)
NO_HLS_JS = (
    "// hls.js is not installed: rebuild the app with npm available (uv sync "
    "--reinstall-package veza-reference-app) or set VEZA_HLS_JS_PATH\n"
)


def hls_js_path(services: Services) -> Path | None:
    """The hls.js to serve: ``VEZA_HLS_JS_PATH`` when set, else the pinned package data."""
    if services.config.hls_js_path is not None:
        return services.config.hls_js_path
    bundled = Path(str(VENDOR / "hls.min.js"))
    return bundled if bundled.is_file() else None


def media_origins(services: Services) -> list[str]:
    """Where playback redirects go: the CDN edge and the storage's presigned-URL host."""
    origins = [origin_of(services.public_url)]
    with contextlib.suppress(Exception):  # a probe only: a failing signer adds nothing
        origins.append(origin_of(services.storage.presign_get("csp-probe", expires_in=60)))
    if services.cdn.is_enabled:
        with contextlib.suppress(Exception):
            origins.append(origin_of(services.cdn.signed_url("csp-probe")))
    return sorted({o for o in origins if o})


def create_app(services: Services, *, render_hls: bool = True) -> FastAPI:
    """The ASGI application over ``services``.

    Args:
        services: Everything the routes use.
        render_hls: Cut HLS renditions in a background thread (tracks that lack one
            are submitted now, uploads when they complete). Tests that compare the
            storage before and after a request turn it off.
    """
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
    hls_jobs = HlsJobs(services, enabled=render_hls)
    app.state.hls_jobs = hls_jobs
    app.include_router(_routes_media.build_router(services, access, hls_jobs))
    app.include_router(_routes_money.build_router(services, access))
    app.include_router(_routes_ops.build_router(services))
    app.include_router(_routes_shares.build_router(services))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.mount("/vendor/swagger-ui", StaticFiles(directory=str(SWAGGER_UI)), name="swagger-ui")
    origins = media_origins(services)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/call", include_in_schema=False)
    def call() -> HTMLResponse:
        return HTMLResponse((STATIC / "call.html").read_text(encoding="utf-8"))

    @app.get("/shares", include_in_schema=False)
    def shares() -> HTMLResponse:
        """The owner's share links (the data comes from ``/api/v1/shares``, owner only)."""
        return HTMLResponse((STATIC / "shares.html").read_text(encoding="utf-8"))

    @app.get("/admin", include_in_schema=False)
    def admin() -> HTMLResponse:
        """Findings, webhook deliveries, balances, money flows (``/api/v1/admin``, admins)."""
        return HTMLResponse((STATIC / "admin.html").read_text(encoding="utf-8"))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from ``/vendor/swagger-ui``, started by ``/static/docs.js``."""
        return HTMLResponse((STATIC / "docs.html").read_text(encoding="utf-8"))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        """Kept so old links work: the same offline viewer as ``/docs``."""
        return docs()

    @app.get("/vendor/hls.min.js", include_in_schema=False)
    def hls_js() -> Response:
        path = hls_js_path(services)
        if path is None:
            return Response(NO_HLS_JS, status_code=404, media_type="application/javascript")
        return FileResponse(path, media_type="application/javascript")

    app.add_middleware(SecurityHeaders, html_policy=page_policy(origins))
    app.state.access = access
    # the database scan runs off the caller's thread too: create_app returns at once
    threading.Thread(target=hls_jobs.submit_missing, name="hls-scan", daemon=True).start()
    return app
