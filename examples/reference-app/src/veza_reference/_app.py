"""``create_app(services)``: the FastAPI application, routes only.

Everything it needs is built once by :func:`veza_reference.build_services`; the app is
the HTTP translation layer over it.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from veza_reference import _errors, _routes_media, _routes_money, _routes_ops
from veza_reference._services import Services
from veza_reference._version import __version__

STATIC = files("veza_reference") / "static"


def create_app(services: Services) -> FastAPI:
    """The ASGI application over ``services``."""
    app = FastAPI(
        title="veza reference app",
        version=__version__,
        description="The thin server where the veza packages meet.",
    )
    _errors.install(app)
    app.include_router(_routes_media.build_router(services))
    app.include_router(_routes_money.build_router(services))
    app.include_router(_routes_ops.build_router(services))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/call", include_in_schema=False)
    def call() -> HTMLResponse:
        return HTMLResponse((STATIC / "call.html").read_text(encoding="utf-8"))

    @app.get("/vendor/hls.min.js", include_in_schema=False)
    def hls_js() -> Response:
        if services.config.hls_js_path is None:
            return Response(
                "// hls.js is not configured (VEZA_HLS_JS_PATH)\n",
                status_code=404,
                media_type="application/javascript",
            )
        return FileResponse(services.config.hls_js_path, media_type="application/javascript")

    app.state.services = services
    return app
