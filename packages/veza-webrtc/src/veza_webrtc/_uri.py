"""STUN and TURN URLs, validated exactly as browsers do (RFC 7064, RFC 7065, webrtc-pc).

The browser's "validate an ICE server URL" algorithm throws ``SyntaxError`` when the
URL does not parse; its scheme is not ``stun``, ``stuns``, ``turn`` or ``turns`` (the
URL parser lowercases it); it has no opaque path (``stun://host`` is refused); the path
contains ``/`` or ``@``; it has a fragment; a STUN URL has any query (even an empty
``?``); a TURN URL's query is anything but ``transport=udp`` or ``transport=tcp``; or
``"https://" + path`` does not parse as a host with an optional port (1 to 65535, or
empty). Hosts follow the WHATWG URL host parser: bracketed IPv6, IPv4 in the forms the
URL parser accepts (``127.1`` and ``0x7f.0.0.1`` are IPv4), or a domain without
forbidden code points. Checking here means a bad value fails at start-up, not as a
DOMException on a user's page.

Default ports: 3478 for ``stun``/``turn``, 5349 for ``stuns``/``turns``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, cast

import attrs

from veza_webrtc._errors import IceURLSyntaxError

Scheme = Literal["stun", "stuns", "turn", "turns"]
Transport = Literal["udp", "tcp"]
DEFAULT_PORTS: dict[str, int] = {"stun": 3478, "turn": 3478, "stuns": 5349, "turns": 5349}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# WHATWG forbidden domain code points (plus C0 controls, space, '%' and DEL)
_FORBIDDEN_DOMAIN = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
_MAX_PORT = 65535


def _whatwg_ipv4_number(part: str) -> int | None:
    if not part:
        return None
    text, base = part, 10
    if len(text) >= 2 and text[:2] in ("0x", "0X"):
        text, base = text[2:], 16
    elif len(text) >= 2 and text[0] == "0":
        text, base = text[1:], 8
    if not text:
        return 0
    try:
        return int(text, base)
    except ValueError:
        return None


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    last = parts[-1]
    if last and all(c.isdigit() for c in last):
        return True
    return _whatwg_ipv4_number(last) is not None and last[:2] in ("0x", "0X")


def _valid_ipv4(host: str) -> bool:
    """The WHATWG IPv4 parser: 1-4 parts, decimal/octal/hex, last part fills the rest."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if len(parts) > 4:
        return False
    numbers = [_whatwg_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return False
    values = cast("list[int]", numbers)
    if any(n > 255 for n in values[:-1]):
        return False
    limit: int = 256 ** (5 - len(values))
    return values[-1] < limit


def _valid_host(host: str) -> bool:
    if not host:
        return False
    if host.startswith("["):
        if not host.endswith("]"):
            return False
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return "%" not in host  # zone ids are not URL syntax
    if "[" in host or "]" in host:
        return False
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    if _FORBIDDEN_DOMAIN.search(host):
        return False
    if _ends_in_number(host):
        return _valid_ipv4(host)
    return True


@attrs.frozen
class IceURL:
    """A validated STUN/TURN URL.

    Attributes:
        scheme: ``stun``, ``stuns``, ``turn`` or ``turns``.
        host: The host as written (IPv6 in brackets).
        port: The explicit port, or ``None`` for the scheme's default.
        transport: ``udp`` or ``tcp`` for TURN URLs that name one.
    """

    scheme: Scheme
    host: str
    port: int | None = None
    transport: Transport | None = None

    @property
    def is_turn(self) -> bool:
        """Whether this is a TURN (relay) URL."""
        return self.scheme in ("turn", "turns")

    @property
    def effective_port(self) -> int:
        """The port a client connects to (the default when none is written)."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.scheme]

    def __str__(self) -> str:
        text = f"{self.scheme}:{self.host}"
        if self.port is not None:
            text += f":{self.port}"
        if self.transport is not None:
            text += f"?transport={self.transport}"
        return text


def parse_ice_url(url: str) -> IceURL:
    """Validate ``url`` as browsers do and return its parts.

    Raises:
        IceURLSyntaxError: The browser would throw ``SyntaxError`` for this URL. The
            message quotes the URL (ICE URLs carry no credentials).
    """

    def fail(reason: str) -> IceURLSyntaxError:
        return IceURLSyntaxError(f"{url!r} is not a valid ICE server URL: {reason}")

    text = url.strip("\t\n\f\r ")  # the URL parser strips leading/trailing C0 and space
    match = _SCHEME.match(text)
    if match is None:
        raise fail("expected stun:, stuns:, turn: or turns:")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise fail(f"unknown scheme {scheme!r}")
    rest = text[match.end() :]
    if "#" in rest:
        raise fail("a fragment is not allowed")
    path, has_query, query = rest.partition("?")
    if path.startswith("/"):
        raise fail("no '//' after the scheme (it is stun:host, not stun://host)")
    if not path:
        raise fail("no host")
    if "/" in path or "@" in path:
        raise fail("'/' and '@' are not allowed (no path, no user info)")
    transport: Transport | None = None
    if has_query:
        if scheme in ("stun", "stuns"):
            raise fail("STUN URLs take no query")
        if query not in ("transport=udp", "transport=tcp"):
            raise fail("the only query allowed is transport=udp or transport=tcp")
        transport = cast("Transport", query.removeprefix("transport="))
    host, port = _split_host_port(path)
    if host is None or not _valid_host(host):
        raise fail("invalid host")
    if port == "":
        port_number = None
    elif port is not None and port.isdigit() and port.isascii():
        port_number = int(port)
        if not 0 < port_number <= _MAX_PORT:
            raise fail("the port must be between 1 and 65535")
    else:
        raise fail("the port must be digits")
    return IceURL(scheme=cast("Scheme", scheme), host=host, port=port_number, transport=transport)


def _split_host_port(path: str) -> tuple[str | None, str | None]:
    """``host[:port]`` with IPv6 brackets; port ``""`` when absent or empty."""
    if path.startswith("["):
        end = path.find("]")
        if end == -1:
            return None, None
        host, after = path[: end + 1], path[end + 1 :]
        if after and not after.startswith(":"):
            return None, None
        return host, after[1:]
    host, _, port = path.partition(":")
    return host, port
