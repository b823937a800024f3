"""A hardened, annotated ``turnserver.conf`` for coturn, aware of the coturn build.

Every line carries the reason it is there. The important ones:

* ``use-auth-secret`` + ``static-auth-secret``: TURN REST API credentials only (no
  long-lived passwords). Several secrets give a rotation window: coturn tries each.
* ``denied-peer-ip`` for every private, loopback, link-local, CGNAT, multicast and
  reserved range, IPv4 and IPv6: a TURN server relays to whatever address a client
  names, so without these it is an SSRF proxy into your network (and, on a cloud VM,
  to the metadata service at 169.254.169.254, which coturn only denies by default from
  4.13.1 on; Debian's 4.6.1 does not).
* ``no-multicast-peers``, ``fingerprint``, ``no-cli`` (coturn's telnet CLI has an empty
  password by default; 4.6.1 also refuses ``allow-loopback-peers`` without ``no-cli``).
* A TLS listener (TURNS, 5349) with TLS 1.0 and 1.1 off, when a certificate is given.
* Quotas per user and in total, so one account cannot exhaust the relay ports.
* ``prometheus`` only when the build has it: Debian's coturn 4.6.1 is compiled without
  Prometheus support and the option is not even recognised there.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from veza_webrtc._errors import CoturnOptionError, WebRTCConfigurationError
from veza_webrtc._secret import Secret
from veza_webrtc._version import __version__

# (range, why it must never be a relay peer). Every entry of the IANA IPv4 and IPv6
# Special-Purpose Address Registries (checked against the registry updated 2025-10-09;
# narrower entries such as 192.0.0.0/29 or 2001::/32 lie inside a listed block), plus
# multicast. tests/test_coturn_config.py holds its own copy of the registry.
DENIED_PEER_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local, including the cloud metadata service 169.254.169.254"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, including the limited broadcast 255.255.255.255/32"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped: would bypass every IPv4 rule above"),
    ("64:ff9b::/96", "NAT64: reaches IPv4 through a translator"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
    ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, AMT, ORCHIDv2, ...)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4: embeds an IPv4 address"),
    ("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing (SRv6) SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
# Deliberately absent: the IPv6 unspecified address "::" (::/128 in the registry).
# coturn 4.6.1 treats a denied-peer-ip entry of "::" (in any spelling, even "::-::") as
# matching every peer, IPv4 included, so the server would refuse all relays; coturn
# already refuses the unspecified address as a peer by itself. A test against the real
# server guards this.
_LOOPBACK = {"127.0.0.0/8", "::1/128"}
_MAX_PORT = 65535
_MAX_QUOTA = 1_000_000


@attrs.frozen
class CoturnBuild:
    """What the target coturn can do.

    Attributes:
        version: ``(major, minor, patch)``.
        prometheus: Whether the binary was compiled with Prometheus support.
    """

    version: tuple[int, int, int]
    prometheus: bool

    @classmethod
    def detect(cls, binary: str = "turnserver") -> CoturnBuild | None:
        """Ask a local ``turnserver`` for its version and options; ``None`` if absent."""
        path = shutil.which(binary)
        if path is None:
            return None
        version_out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False, timeout=10
        )
        help_out = subprocess.run(
            [path, "-h"], capture_output=True, text=True, check=False, timeout=10
        )
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", version_out.stdout + version_out.stderr)
        if match is None:
            return None
        major, minor, patch = (int(g) for g in match.groups())
        return cls(
            version=(major, minor, patch),
            prometheus="--prometheus" in help_out.stdout + help_out.stderr,
        )

    @classmethod
    def parse(cls, text: str, *, prometheus: bool) -> CoturnBuild:
        """A build from a version string such as ``4.6.1``."""
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text.strip())
        if match is None:
            msg = f"a coturn version looks like 4.6.1, got {text!r}"
            raise WebRTCConfigurationError(msg)
        major, minor, patch = (int(g) for g in match.groups())
        return cls(version=(major, minor, patch), prometheus=prometheus)


def _range(cidr: str) -> str:
    network = ipaddress.ip_network(cidr)
    first, last = network.network_address, network.broadcast_address
    return str(first) if first == last else f"{first}-{last}"


def _unsafe_character(value: str) -> str | None:
    """The first character that would break coturn's one-option-per-line syntax."""
    for char in value:
        # Cc: C0/C1 controls incl. \n \r NEL; Cf: invisible format characters;
        # Zl/Zp: Unicode line and paragraph separators; Zs: spaces (coturn splits on them)
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Zs") or char == "#":
            return char
    return None


def _check_text(option: str, value: object, *, ascii_only: bool = False) -> str:
    if not isinstance(value, str):
        raise CoturnOptionError(option, f"expected a string, got {type(value).__name__}")
    if not value:
        raise CoturnOptionError(option, "is empty")
    bad = _unsafe_character(value)
    if bad is not None:
        reason = (
            f"contains {bad!r} ({unicodedata.name(bad, 'a control character')}): "
            "no whitespace, control character or '#' in turnserver.conf values"
        )
        raise CoturnOptionError(option, reason)
    if ascii_only and not (value.isascii() and value.isprintable()):
        raise CoturnOptionError(option, "must be printable ASCII")
    return value


def _check_secret(value: object) -> str:
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str):
        raise CoturnOptionError("secrets", f"expected strings, got {type(text).__name__}")
    bad = _unsafe_character(text)
    if bad is not None:  # the value is never repeated: it is a secret
        reason = "a secret contains whitespace, a control character or '#' (coturn's syntax)"
        raise CoturnOptionError("secrets", reason)
    return text


def _check_ip(option: str, value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = _check_text(option, value)
    if "%" in text:
        raise CoturnOptionError(option, f"{text!r}: zone ids are not accepted by coturn")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CoturnOptionError(option, f"{text!r} is not an IPv4 or IPv6 address") from None


def _check_int(option: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CoturnOptionError(option, f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _own_addresses(
    external_ip: str | None, relay_ip: str | None, listening_ip: str | None
) -> list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """The server's own addresses, validated; ``external_ip`` may be ``public/private``."""
    found: list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
    if external_ip is not None:
        _check_text("external_ip", external_ip)
        public, slash, private = external_ip.partition("/")
        found.append(("external_ip", _check_ip("external_ip", public)))
        if slash:
            found.append(("external_ip", _check_ip("external_ip", private)))
    if relay_ip is not None:
        found.append(("relay_ip", _check_ip("relay_ip", relay_ip)))
    if listening_ip is not None:
        found.append(("listening_ip", _check_ip("listening_ip", listening_ip)))
    return found


def _already_denied(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for cidr, _ in DENIED_PEER_RANGES:
        if address in ipaddress.ip_network(cidr):
            return cidr
    return None


def coturn_config(
    *,
    realm: str,
    secrets: Sequence[str | Secret[str]],
    external_ip: str | None = None,
    listening_ip: str | None = None,
    relay_ip: str | None = None,
    listening_port: int = 3478,
    tls_listening_port: int = 5349,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    min_port: int = 49152,
    max_port: int = 65535,
    user_quota: int = 12,
    total_quota: int = 1200,
    prometheus: bool = False,
    allow_loopback_peers: bool = False,
    separator: str = ":",
    log_file: str | None = None,
    pidfile: str | None = None,
    build: CoturnBuild | None = None,
) -> str:
    """Render an annotated ``turnserver.conf``.

    Every option is validated before anything is written: coturn's file is one option
    per line, so a newline in a realm or address would inject options of the caller's
    choosing. The server's own external, relay and listening addresses are denied as
    peers too (a client would otherwise reach services bound to them through the relay).

    Args:
        realm: The TURN realm (your domain): printable ASCII, no space or ``#``.
        secrets: TURN REST shared secrets (``str`` or :class:`Secret`), newest first; all
            are accepted.
        external_ip: The public address when coturn runs behind 1:1 NAT (cloud VMs), or
            coturn's ``public/private`` pair.
        listening_ip: Bind to this address only.
        relay_ip: The address relayed traffic leaves from.
        listening_port: STUN/TURN port (UDP and TCP).
        tls_listening_port: TURNS port (TLS and DTLS), used with a certificate.
        tls_cert: Certificate chain file (PEM) for TURNS.
        tls_key: Its private key file.
        min_port: Lowest relay port.
        max_port: Highest relay port.
        user_quota: Concurrent allocations per user (0: no limit).
        total_quota: Concurrent allocations in total (0: no limit).
        prometheus: Enable the Prometheus exporter (port 9641); the build must have it.
        allow_loopback_peers: Development and tests only: let peers be on 127.0.0.0/8
            and ::1 (the loopback ranges, and the server's own loopback addresses, are
            then not denied).
        separator: ``rest-api-separator``, as used by the credential issuer.
        log_file: Log file path (coturn's default is syslog/stdout).
        pidfile: PID file path.
        build: The target coturn; without it, no build-specific option is assumed.

    Raises:
        CoturnOptionError: An option that is malformed or unsafe in the file; ``option``
            names it (a secret's value is never repeated).
        WebRTCConfigurationError: A contradictory or unsupported combination.
    """
    options = _Options(
        realm=realm,
        secrets=secrets,
        external_ip=external_ip,
        listening_ip=listening_ip,
        relay_ip=relay_ip,
        listening_port=listening_port,
        tls_listening_port=tls_listening_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        min_port=min_port,
        max_port=max_port,
        user_quota=user_quota,
        total_quota=total_quota,
        prometheus=prometheus,
        allow_loopback_peers=allow_loopback_peers,
        separator=separator,
        log_file=log_file,
        pidfile=pidfile,
        build=build,
    )
    clean, own = _validated(options)
    return "\n".join(_render(options, clean, own)) + "\n"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.frozen(kw_only=True)
class _Options:
    """:func:`coturn_config`'s arguments, as given (validated by :func:`_validated`)."""

    realm: str
    secrets: Sequence[str | Secret[str]]
    external_ip: str | None
    listening_ip: str | None
    relay_ip: str | None
    listening_port: int
    tls_listening_port: int
    tls_cert: str | None
    tls_key: str | None
    min_port: int
    max_port: int
    user_quota: int
    total_quota: int
    prometheus: bool
    allow_loopback_peers: bool
    separator: str
    log_file: str | None
    pidfile: str | None
    build: CoturnBuild | None


def _validated(o: _Options) -> tuple[list[str], list[tuple[str, Address]]]:
    """Every option checked on its own: the clean secrets and the server's own addresses."""
    _check_text("realm", o.realm, ascii_only=True)
    if isinstance(o.secrets, str | Secret):
        raise CoturnOptionError("secrets", "expected a list of secrets, got a single value")
    clean = [_check_secret(s) for s in o.secrets]
    if not clean or not all(clean):
        msg = "at least one TURN secret is required (use-auth-secret), none may be empty"
        raise CoturnOptionError("secrets", msg)
    own = _own_addresses(o.external_ip, o.relay_ip, o.listening_ip)
    for option in ("listening_port", "tls_listening_port", "min_port", "max_port"):
        _check_int(option, getattr(o, option), 1, _MAX_PORT)
    _check_int("user_quota", o.user_quota, 0, _MAX_QUOTA)
    _check_int("total_quota", o.total_quota, 0, _MAX_QUOTA)
    for option in ("tls_cert", "tls_key", "log_file", "pidfile"):
        path = getattr(o, option)
        if path is not None:
            _check_text(option, path)
    _check_text("separator", o.separator, ascii_only=True)
    if len(o.separator) != 1 or o.separator.isalnum():
        raise CoturnOptionError(
            "separator", f"must be one non-alphanumeric character: {o.separator!r}"
        )
    for option in ("prometheus", "allow_loopback_peers"):
        flag = getattr(o, option)
        if not isinstance(flag, bool):
            raise CoturnOptionError(option, f"must be True or False, got {flag!r}")
    if o.build is not None and not isinstance(o.build, CoturnBuild):
        raise CoturnOptionError("build", f"expected a CoturnBuild, got {type(o.build).__name__}")
    _check_combination(o)
    return clean, own


def _check_combination(o: _Options) -> None:
    """The checks across options, once each one is valid on its own."""
    if (o.tls_cert is None) != (o.tls_key is None):
        msg = "--tls-cert and --tls-key go together"
        raise WebRTCConfigurationError(msg)
    if not o.min_port <= o.max_port:
        msg = f"the relay port range {o.min_port}-{o.max_port} is invalid"
        raise WebRTCConfigurationError(msg)
    if o.prometheus and o.build is not None and not o.build.prometheus:
        version = ".".join(map(str, o.build.version))
        msg = (
            f"this coturn ({version}) was built without Prometheus support (Debian's package "
            "is): drop --prometheus or install a build that has it"
        )
        raise WebRTCConfigurationError(msg)


def _render(o: _Options, clean: list[str], own: list[tuple[str, Address]]) -> list[str]:
    """The file's lines, each option after the comment that says why it is there."""
    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d")
    target = ".".join(map(str, o.build.version)) if o.build else "unknown (not detected)"
    return [
        f"# turnserver.conf generated by veza-webrtc {__version__} on {stamp}",
        f"# target coturn: {target}",
        "# Contains TURN secrets: keep this file readable by coturn only (chmod 600).",
        "",
        *_listener_lines(o),
        "",
        "# --- authentication: TURN REST API (ephemeral credentials) ---",
        "# Only time-limited credentials signed with a shared secret are accepted.",
        "use-auth-secret",
        "# coturn tries every secret: rotate by adding the new one, rolling the",
        "# application, then removing the old one after its credentials expired.",
        *(f"static-auth-secret={secret}" for secret in clean),
        f"realm={o.realm}",
        "# Must match the separator the credentials are issued with.",
        f"rest-api-separator={o.separator}",
        "# Message integrity fingerprints (RFC 8489), expected by browsers.",
        "fingerprint",
        "# Nonces expire: a captured request cannot be replayed for long.",
        "stale-nonce=600",
        "",
        "# --- abuse limits ---",
        "# Concurrent allocations per user and in total.",
        f"user-quota={o.user_quota}",
        f"total-quota={o.total_quota}",
        "",
        *_peer_lines(o, own),
        "",
        *_operations_lines(o),
    ]


def _listener_lines(o: _Options) -> list[str]:
    lines = [
        "# --- listeners ---",
        "# STUN and TURN over UDP and TCP.",
        f"listening-port={o.listening_port}",
    ]
    if o.listening_ip:
        lines += ["# Bind to one address only.", f"listening-ip={o.listening_ip}"]
    if o.relay_ip:
        lines += ["# Relayed traffic leaves from this address.", f"relay-ip={o.relay_ip}"]
    if o.external_ip:
        lines += [
            "# The public address clients see (coturn behind 1:1 NAT, e.g. a cloud VM).",
            f"external-ip={o.external_ip}",
        ]
    if o.tls_cert:
        lines += [
            "# TURNS (TURN over TLS) gets through firewalls that only allow HTTPS-like traffic.",
            f"tls-listening-port={o.tls_listening_port}",
            f"cert={o.tls_cert}",
            f"pkey={o.tls_key}",
            "# TLS 1.0 and 1.1 are broken and unsupported by browsers.",
            "no-tlsv1",
            "no-tlsv1_1",
        ]
    return [
        *lines,
        "# Relay ports: open this UDP range in the firewall.",
        f"min-port={o.min_port}",
        f"max-port={o.max_port}",
    ]


def _peer_lines(o: _Options, own: list[tuple[str, Address]]) -> list[str]:
    lines = [
        "# --- SSRF protection: never relay to internal or special addresses ---",
        "no-multicast-peers",
    ]
    for cidr, reason in DENIED_PEER_RANGES:
        if o.allow_loopback_peers and cidr in _LOOPBACK:
            continue
        lines += [f"# {cidr}: {reason}", f"denied-peer-ip={_range(cidr)}"]
    seen: set[Address] = set()
    for option, address in own:
        if address in seen or address.is_unspecified:
            continue  # "::" means "listen everywhere"; coturn reads a denied "::" as deny-all
        seen.add(address)
        if (o.allow_loopback_peers and address.is_loopback) or _already_denied(address):
            continue
        lines += [
            f"# {address}: this server's own address ({option}): a client must not reach",
            "# services bound to it (or the relay itself) through the relay",
            f"denied-peer-ip={address}",
        ]
    if o.allow_loopback_peers:
        lines += [
            "# DEVELOPMENT ONLY: peers on loopback are allowed (tests on one machine).",
            "allow-loopback-peers",
        ]
    return lines


def _operations_lines(o: _Options) -> list[str]:
    lines = [
        "# --- operations ---",
        "# The telnet CLI has an empty password by default: keep it off.",
        "no-cli",
    ]
    if o.prometheus:
        lines += ["# Prometheus exporter on port 9641 (/metrics).", "prometheus"]
    if o.log_file:
        lines += [
            "# One log file, no rotation by coturn (use logrotate).",
            f"log-file={o.log_file}",
            "simple-log",
        ]
    if o.pidfile:
        lines += [f"pidfile={o.pidfile}"]
    return lines
