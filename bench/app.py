"""The reference app under load: the stream redirect and the webhook endpoint.

Run: ``nox -s bench -- app`` (needs Debian's ``wrk``; PostgreSQL on 127.0.0.1:5432 or
``VEZA_TEST_DATABASE_URL`` for the webhook log).

The load comes from ``wrk`` in a second process on loopback (2 threads, 32 connections,
10 s per row). Rows, in one run, one uvicorn worker each:

* a bare FastAPI route that returns a fixed 302: the ceiling of the framework;
* ``GET /api/v1/tracks/{id}/stream`` by the track's owner (a session cookie): the
  cookie's HMAC, the track's facts and the permission from memory, a Bunny-signed CDN
  URL, the 302;
* ``POST /webhooks/hyperswitch`` with 64 KiB bodies and a valid signature: verification,
  parsing, dispatch and one INSERT into the webhook log (PostgreSQL).

Target: the stream redirect at least half the bare route's throughput.
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from _ports import free_port
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from veza_payments import sign_payload
from veza_reference import build_services
from veza_reference._demo import seed
from veza_reference._serve import start

BASE_URL = os.environ.get(
    "VEZA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DURATION = os.environ.get("VEZA_BENCH_DURATION", "10s")


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/redirect")
    async def redirect() -> RedirectResponse:
        return RedirectResponse("https://cdn.example.com/tracks/a.mp3?token=x", status_code=302)

    return app


def serve(app: FastAPI, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


def wrk(url: str, script: Path | None = None, *, cookie: str | None = None) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) of a wrk run."""
    command = ["wrk", "-t2", "-c32", f"-d{DURATION}", "--latency", url]
    if cookie is not None:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert match is not None, out
    value, unit = float(match.group(1)), match.group(2)
    p99 = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx and script is None:
        raise SystemExit(f"{url}: {non2xx.group(1)} error responses:\n{out}")
    return rps, p99


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    name = f"veza_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    data = tempfile.mkdtemp(prefix="veza-bench-")
    env = {
        "VEZA_DATA_DIR": data,
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_DATABASE_URL": sa.make_url(BASE_URL)
        .set(database=name)
        .render_as_string(hide_password=False),
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": "bunny",
        "CDN_BASE_URL": "https://zone.b-cdn.net",
        "CDN_SECURITY_KEY": secrets.token_urlsafe(32),
    }
    services = build_services(env)
    seed(services, hls=False)
    password = secrets.token_urlsafe(16)
    services.users.create("artist-ada", password, "creator")  # demo-1's owner
    running = start(services)
    login = httpx.post(
        f"{running.url}/api/v1/auth/login", json={"user_id": "artist-ada", "password": password}
    )
    cookie = f"veza_session={login.cookies['veza_session']}"
    bare = serve(bare_app(), free_port())
    body = (
        b'{"event_id":"evt_bench","event_type":"mandate_revoked","pad":"'
        + b"x" * (65_536 - 70)
        + b'"}'
    )
    body_file = Path(data) / "body.json"
    body_file.write_bytes(body)
    script = Path(data) / "webhook.lua"
    signature = sign_payload(body, services.sandbox.webhook_key if services.sandbox else "")
    script.write_text(
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Webhook-Signature-512"] = "{signature}"\n'
    )
    try:
        bare_url = f"http://127.0.0.1:{bare.config.port}/redirect"
        wrk(bare_url)  # warm-up
        rows = [
            ("bare FastAPI 302", *wrk(bare_url)),
            (
                "GET /api/v1/tracks/{id}/stream",
                *wrk(f"{running.url}/api/v1/tracks/demo-1/stream", cookie=cookie),
            ),
            (
                "POST /webhooks/hyperswitch, 64 KiB",
                *wrk(f"{running.url}/webhooks/hyperswitch", script),
            ),
        ]
        with services.engine.connect() as c:
            logged = c.execute(sa.text("SELECT count(*) FROM ledger_webhook_log")).scalar_one()
    finally:
        bare.should_exit = True
        running.stop()
        shutil.rmtree(data, ignore_errors=True)
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(
        f"# reference app benchmark: {platform.python_implementation()} {sys.version.split()[0]}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; wrk -t2 -c32 -d{DURATION} on loopback"
    )
    print(f"{'endpoint':40} {'req/s':>10} {'p99':>10}")
    for label, rps, p99 in rows:
        print(f"{label:40} {rps:>10,.0f} {p99:>8.1f}ms")
    print(
        f"stream redirect / bare route: {rows[1][1] / rows[0][1]:.2f} (target >= 0.5); "
        f"webhook log rows written: {logged:,}"
    )


if __name__ == "__main__":
    main()
