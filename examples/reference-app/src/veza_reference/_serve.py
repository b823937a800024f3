"""Running the app: the HTTP servers, the sandbox's webhook emitter, the workers.

``veza-reference`` serves from the environment (production settings: ``APP_ENV=production``
with every variable of the Operations page). :func:`start` runs everything in
background threads and returns a handle (the demo and the tests use it). In production,
run the workers as their own processes instead (``VEZA_WORKERS=false`` here, and
``veza-ledger reconcile`` / a worker process beside the app: see the deployment guide).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time

import attrs
import httpx
import uvicorn
from starlette.types import ASGIApp

from veza_ledger import (
    create_engine,
    run_forever,
    run_reversal_worker,
    run_sweep,
    run_transfer_worker,
)
from veza_ledger.adapters import StripeWorkerProvider
from veza_reference._app import create_app
from veza_reference._config import AppConfig, AppConfigurationError
from veza_reference._db import create_app_tables
from veza_reference._edge import LocalEdge
from veza_reference._services import Services, build_services
from veza_reference._telemetry import configure_tracing
from veza_reference._users import Role, UserError, Users
from veza_reference._version import __version__

logger = logging.getLogger("veza_reference")


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # threads cannot; the caller handles signals
        return None


def _serve_in_thread(
    app: ASGIApp, host: str, port: int, name: str, sock: socket.socket | None = None
) -> tuple[_Server, threading.Thread]:
    """Run ``app`` on ``host:port`` in a thread (on ``sock`` when it already listens there)."""
    server = _Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    sockets = [sock] if sock is not None else None
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": sockets}, name=name, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"the {name} server did not start on {host}:{port}"
            raise RuntimeError(msg)
        time.sleep(0.02)
    return server, thread


def reap_uploads_at_start(services: Services) -> int:
    """Remove expired upload sessions and their staged chunks once, at start-up.

    Abandoned uploads would otherwise keep their chunks (local files or S3 multipart
    parts, which S3 bills) until someone runs ``veza-storage uploads reap``. A storage
    outage must not stop start-up: it is logged, and the next start or the admin route
    (``POST /api/v1/admin/uploads/reap``) tries again.
    """
    try:
        count = services.uploads.reap_expired()
    except Exception:
        logger.exception("reaping expired uploads at start-up failed; continuing")
        return 0
    if count:
        logger.info("reaped %d expired upload session(s) at start-up", count)
    return count


def worker_pass(services: Services) -> None:
    """One pass of the background jobs: pay transfers, reverse what is due, reconcile."""
    if services.stripe is not None:
        # StripeWorkerProvider finds what a lost call made once Stripe forgot its key (24 h)
        stripe = StripeWorkerProvider(services.stripe)
        run_transfer_worker(services.ledger, stripe)
        run_reversal_worker(services.ledger, stripe)
    run_sweep(services.ledger, services.provider_view)


@attrs.define
class Running:
    """A running app: its URLs, its services, and how to stop it."""

    services: Services
    url: str
    edge_url: str | None
    edge: LocalEdge | None
    _servers: list[tuple[_Server, threading.Thread]]
    _cancel: threading.Event
    _workers: threading.Thread | None

    def stop(self) -> None:
        """Stop the workers and the servers, close the services."""
        self._cancel.set()
        if self._workers is not None:
            self._workers.join(timeout=30)
        for server, thread in self._servers:
            server.should_exit = True
            thread.join(timeout=10)
        if self.edge is not None:
            self.edge.close()
        self.services.close()


def start(services: Services) -> Running:
    """Start the edge, the app, the sandbox emitter and the workers in threads."""
    config = services.config
    reap_uploads_at_start(services)
    servers = []
    edge = None
    if services.edge_url is not None:
        edge = LocalEdge(
            services.cdn,
            services.edge_url,
            origin_url=f"{config.public_url}/origin",
            origin_secret=config.origin_secret.reveal(),
            registry=services.registry,
        )
        servers.append(
            _serve_in_thread(
                edge.app,
                config.host,
                config.edge_port,
                "edge",
                services.listeners.get("edge"),
            )
        )
    servers.append(
        _serve_in_thread(
            create_app(services),
            config.host,
            config.port,
            "app",
            services.listeners.get("app"),
        )
    )
    if services.sandbox is not None:
        services.sandbox.run_emitter()
    cancel = threading.Event()
    workers = None
    if config.workers:
        workers = threading.Thread(
            target=run_forever,
            name="workers",
            kwargs={
                "job": lambda: worker_pass(services),
                "interval": config.worker_interval,
                "cancel": cancel,
            },
            daemon=True,
        )
        workers.start()
    url = f"http://{config.host}:{config.port}"
    httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
    return Running(services, url, services.edge_url, edge, servers, cancel, workers)


def settle_heap() -> None:
    """Move everything start-up allocated out of the garbage collector's sight.

    The process's main entry points call it once the server answers. Why: the cyclic
    garbage collector's full (generation 2) pass walks every tracked object, and a
    started app holds hundreds of thousands of them (FastAPI's routes and models,
    SQLAlchemy's metadata, pydantic's validators), none of which will ever be garbage.
    Measured with ``bench/healthz.py``: one full pass took 103 ms, during which no
    thread of the process ran and every request, ``/healthz`` included, waited.
    ``gc.freeze()`` moves the objects alive now into a permanent generation that
    collections skip; later garbage is collected as before.
    """
    gc.collect()  # what start-up left as garbage goes now, not frozen for ever
    gc.freeze()


def port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be bound now (another server holds it)."""
    if port == 0:
        return False
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veza-reference",
        description=(
            "Serve the veza reference app from the environment (APP_ENV=production with "
            "the variables of the deployment guide) until SIGINT/SIGTERM."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--host", help="address to listen on (default: VEZA_HOST, 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help="TCP port (default: VEZA_PORT, 8000; 0 picks a free one)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add = commands.add_parser(
        "add-user",
        help="create an account (the password is read from standard input)",
        description="Create an account in VEZA_DATABASE_URL; the password comes from stdin.",
    )
    add.add_argument("user_id")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    return parser


def _add_user(environ: dict[str, str], user_id: str, role: str) -> int:
    config = AppConfig.from_env(environ)
    engine = create_engine(config.database_url.reveal())
    try:
        create_app_tables(engine)
        password = sys.stdin.readline().rstrip("\n")
        Users(engine).create(user_id, password, role)
    finally:
        engine.dispose()
    print(f"veza-reference: created {role} {user_id!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``veza-reference``: serve from the environment until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    environ = dict(os.environ)
    if args.host is not None:
        environ["VEZA_HOST"] = args.host
    if args.port is not None:
        environ["VEZA_PORT"] = str(args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "add-user":
            return _add_user(environ, args.user_id, args.role)
        config = AppConfig.from_env(environ)
        configure_tracing(environ)  # OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set
        if port_in_use(config.host, config.port):
            print(
                f"veza-reference: port {config.port} on {config.host} is in use: "
                "stop what holds it or choose another with --port (or VEZA_PORT)",
                file=sys.stderr,
            )
            return 2
        running = start(build_services(environ))
        settle_heap()
    except (AppConfigurationError, UserError, ValueError) as exc:
        print(f"veza-reference: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"veza reference app on {running.url}", flush=True)
    stop.wait()
    running.stop()
    return 0
