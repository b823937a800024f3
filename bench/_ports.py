"""A free TCP port for a server a benchmark starts in another process.

Picking a port, closing it and letting the other process bind it leaves a window in
which the port can be taken; a benchmark that loses it fails at start and is run again.
The reference app itself no longer does this for ``VEZA_PORT=0`` (it keeps the socket).
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
