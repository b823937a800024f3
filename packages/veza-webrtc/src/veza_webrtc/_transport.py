"""Carry STUN/TURN frames over UDP, TCP or TLS, with one deadline for everything.

UDP sockets are *connected*, so an ICMP port-unreachable surfaces as
``ConnectionRefusedError`` (nothing listening) rather than as a silent timeout, which
is what tells "TURN is down" from "UDP is filtered" in a diagnosis. Over TCP and TLS
frames are delimited by their own length fields (RFC 8656 section 12.5: STUN messages
and padded ChannelData back to back).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Literal

from veza_webrtc._stun import frame_length

TransportName = Literal["udp", "tcp", "tls"]
_MAX_DATAGRAM = 65_535


class Channel:
    """One connection to a STUN/TURN server.

    Args:
        host: Server host name or address (IPv6 without brackets).
        port: Server port.
        transport: ``udp``, ``tcp`` or ``tls``.
        deadline: ``time.monotonic()`` value after which connecting gives up.
        tls_context: Context for ``tls`` (default: the system's trust store, hostname
            checked).
    """

    def __init__(
        self,
        host: str,
        port: int,
        transport: TransportName,
        *,
        deadline: float,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.transport: TransportName = transport
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        family, _, _, _, address = socket.getaddrinfo(host, port, type=kind)[0]
        self.server: tuple[str, int] = (str(address[0]), int(address[1]))
        sock = socket.socket(family, kind)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
            if transport == "tls":
                context = tls_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._buffer = b""

    @property
    def local_address(self) -> tuple[str, int]:
        """The local ``(ip, port)`` of this connection."""
        name = self._sock.getsockname()
        return str(name[0]), int(name[1])

    def send(self, frame: bytes) -> None:
        """Send one frame (a datagram over UDP)."""
        if self.transport == "udp":
            self._sock.send(frame)
        else:
            self._sock.sendall(frame)

    def receive(self, deadline: float) -> bytes:
        """The next frame; ``TimeoutError`` once ``deadline`` passes."""
        if self.transport == "udp":
            self._sock.settimeout(_remaining(deadline))
            return self._sock.recv(_MAX_DATAGRAM)
        while True:
            if len(self._buffer) >= 4:
                size = frame_length(self._buffer[:4])
                if len(self._buffer) >= size:
                    frame, self._buffer = self._buffer[:size], self._buffer[size:]
                    return frame
            self._sock.settimeout(_remaining(deadline))
            chunk = self._sock.recv(_MAX_DATAGRAM)
            if not chunk:
                msg = "the server closed the connection"
                raise ConnectionResetError(msg)
            self._buffer += chunk

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._sock.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        msg = "the probe's time ran out"
        raise TimeoutError(msg)
    return left
