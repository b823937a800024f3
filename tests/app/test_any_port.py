"""``VEZA_PORT=0``: the port the kernel chose stays the app's until it serves on it.

The app used to pick a free port, close it, and bind it again when the server started.
In between, any outgoing connection (the app's own, to PostgreSQL, say) could take that
port as its source port, and the server failed to start (``address already in use``): a
flaky test first, and a failed start for anyone running with ``VEZA_PORT=0``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import httpx
import pytest


def test_the_chosen_ports_are_held_from_build_to_serve(tmp_path) -> None:
    from veza_reference import build_services
    from veza_reference._serve import start

    services = build_services(
        {
            "VEZA_DATA_DIR": str(tmp_path),
            "VEZA_PORT": "0",
            "VEZA_EDGE_PORT": "0",
            "VEZA_LOCAL_EDGE": "true",
            "VEZA_WORKERS": "false",
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "PATH": os.environ.get("PATH", ""),
        }
    )
    ports = [services.config.port, services.config.edge_port]
    assert all(ports) and len(set(ports)) == 2
    for port in ports:  # another socket cannot take them before the servers start
        with socket.socket() as intruder, pytest.raises(OSError, match="in use"):
            intruder.bind(("127.0.0.1", port))
    running = start(services)
    try:
        assert httpx.get(f"http://127.0.0.1:{ports[0]}/healthz", timeout=5).status_code == 200
        assert running.edge_url == f"http://127.0.0.1:{ports[1]}"
    finally:
        running.stop()
    for port in ports:  # and they are released when the app stops
        with socket.socket() as after:
            after.bind(("127.0.0.1", port))


def _open_sockets() -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


def test_a_failed_build_leaves_no_socket_open(tmp_path) -> None:
    from veza_cdn import CDNConfigurationError
    from veza_reference import build_services

    before = _open_sockets()
    with pytest.raises(CDNConfigurationError, match="CDN_"):
        build_services(
            {
                "VEZA_DATA_DIR": str(tmp_path),
                "VEZA_PORT": "0",
                "VEZA_LOCAL_EDGE": "false",
                "VEZA_WORKERS": "false",
                "CDN_ENABLED": "true",  # with no provider: refused after the port is taken
            }
        )
    assert _open_sockets() == before
