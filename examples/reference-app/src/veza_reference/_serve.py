"""Running the app: the HTTP servers, the sandbox's webhook emitter, the workers.

``veza-reference`` serves from the environment (production settings: ``APP_ENV=production``
with every variable of the Operations page). :func:`start` runs everything in
background threads and returns a handle (the demo and the tests use it). In production,
run the workers as their own processes instead (``VEZA_WORKERS=false`` here, and
``veza-ledger reconcile`` / a worker process beside the app: see the deployment guide).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import attrs
import httpx
import uvicorn

from veza_ledger import run_forever, run_reversal_worker, run_sweep, run_transfer_worker
from veza_reference._app import create_app
from veza_reference._config import AppConfigurationError
from veza_reference._edge import LocalEdge
from veza_reference._services import Services, build_services

logger = logging.getLogger("veza_reference")


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # threads cannot; the caller handles signals
        return None


def _serve_in_thread(app: Any, host: str, port: int, name: str) -> tuple[_Server, threading.Thread]:  # noqa: ANN401
    server = _Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"the {name} server did not start on {host}:{port}"
            raise RuntimeError(msg)
        time.sleep(0.02)
    return server, thread


def worker_pass(services: Services) -> None:
    """One pass of the background jobs: pay transfers, reverse what is due, reconcile."""
    if services.stripe is not None:
        run_transfer_worker(services.ledger, services.stripe)
        run_reversal_worker(services.ledger, services.stripe)
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
    servers = []
    edge = None
    if services.edge_url is not None:
        edge = LocalEdge(
            services.cdn,
            services.edge_url,
            f"{config.public_url}/origin",
            config.origin_secret,
            services.registry,
        )
        servers.append(_serve_in_thread(edge.app, config.host, config.edge_port, "edge"))
    servers.append(_serve_in_thread(create_app(services), config.host, config.port, "app"))
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


def main(argv: list[str] | None = None) -> int:
    """``veza-reference``: serve from the environment until SIGINT/SIGTERM."""
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        running = start(build_services(os.environ))
    except (AppConfigurationError, ValueError) as exc:
        print(f"veza-reference: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"veza reference app on {running.url}", flush=True)  # noqa: T201
    stop.wait()
    running.stop()
    return 0
