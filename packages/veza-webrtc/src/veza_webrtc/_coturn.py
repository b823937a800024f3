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
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from veza_webrtc._errors import WebRTCConfigurationError
from veza_webrtc._version import __version__

# (range, why it must never be a relay peer)
DENIED_PEER_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local, including the cloud metadata service 169.254.169.254"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved and broadcast"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped: would bypass every IPv4 rule above"),
    ("64:ff9b::/96", "NAT64: reaches IPv4 through a translator"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4: embeds an IPv4 address"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
# Deliberately absent: the IPv6 unspecified address "::". coturn 4.6.1 treats a
# denied-peer-ip entry of "::" (in any spelling, even "::-::") as matching every peer,
# IPv4 included, so the server would refuse all relays; coturn already refuses the
# unspecified address as a peer by itself. A test against the real server guards this.
_LOOPBACK = {"127.0.0.0/8", "::1/128"}


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
        version_out = subprocess.run(  # noqa: S603 - a fixed binary found on PATH
            [path, "--version"], capture_output=True, text=True, check=False, timeout=10
        )
        help_out = subprocess.run(  # noqa: S603
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


def coturn_config(  # noqa: PLR0912 - one line per option, each with its reason
    *,
    realm: str,
    secrets: Sequence[str],
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

    Args:
        realm: The TURN realm (your domain).
        secrets: TURN REST shared secrets, newest first; all are accepted.
        external_ip: The public address when coturn runs behind 1:1 NAT (cloud VMs).
        listening_ip: Bind to this address only.
        relay_ip: The address relayed traffic leaves from.
        listening_port: STUN/TURN port (UDP and TCP).
        tls_listening_port: TURNS port (TLS and DTLS), used with a certificate.
        tls_cert: Certificate chain file (PEM) for TURNS.
        tls_key: Its private key file.
        min_port: Lowest relay port.
        max_port: Highest relay port.
        user_quota: Concurrent allocations per user.
        total_quota: Concurrent allocations in total.
        prometheus: Enable the Prometheus exporter (port 9641); the build must have it.
        allow_loopback_peers: Development and tests only: let peers be on 127.0.0.0/8
            and ::1 (the loopback ranges are then not denied).
        separator: ``rest-api-separator``, as used by the credential issuer.
        log_file: Log file path (coturn's default is syslog/stdout).
        pidfile: PID file path.
        build: The target coturn; without it, no build-specific option is assumed.

    Raises:
        WebRTCConfigurationError: A contradictory or unsupported combination.
    """
    if not realm.strip():
        msg = "the TURN realm is empty"
        raise WebRTCConfigurationError(msg)
    clean = [s.strip() for s in secrets if s.strip()]
    if not clean:
        msg = "at least one TURN secret is required (use-auth-secret)"
        raise WebRTCConfigurationError(msg)
    if any(c.isspace() or c == "#" for s in clean for c in s):
        msg = "TURN secrets must not contain whitespace or '#' (coturn's config syntax)"
        raise WebRTCConfigurationError(msg)
    if (tls_cert is None) != (tls_key is None):
        msg = "--tls-cert and --tls-key go together"
        raise WebRTCConfigurationError(msg)
    if not 0 < min_port <= max_port <= 65535:  # noqa: PLR2004
        msg = f"the relay port range {min_port}-{max_port} is invalid"
        raise WebRTCConfigurationError(msg)
    if prometheus and build is not None and not build.prometheus:
        version = ".".join(map(str, build.version))
        msg = (
            f"this coturn ({version}) was built without Prometheus support (Debian's package "
            "is): drop --prometheus or install a build that has it"
        )
        raise WebRTCConfigurationError(msg)

    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d")
    target = ".".join(map(str, build.version)) if build else "unknown (not detected)"
    lines = [
        f"# turnserver.conf generated by veza-webrtc {__version__} on {stamp}",
        f"# target coturn: {target}",
        "# Contains TURN secrets: keep this file readable by coturn only (chmod 600).",
        "",
        "# --- listeners ---",
        "# STUN and TURN over UDP and TCP.",
        f"listening-port={listening_port}",
    ]
    if listening_ip:
        lines += ["# Bind to one address only.", f"listening-ip={listening_ip}"]
    if relay_ip:
        lines += ["# Relayed traffic leaves from this address.", f"relay-ip={relay_ip}"]
    if external_ip:
        lines += [
            "# The public address clients see (coturn behind 1:1 NAT, e.g. a cloud VM).",
            f"external-ip={external_ip}",
        ]
    if tls_cert:
        lines += [
            "# TURNS (TURN over TLS) gets through firewalls that only allow HTTPS-like traffic.",
            f"tls-listening-port={tls_listening_port}",
            f"cert={tls_cert}",
            f"pkey={tls_key}",
            "# TLS 1.0 and 1.1 are broken and unsupported by browsers.",
            "no-tlsv1",
            "no-tlsv1_1",
        ]
    lines += [
        "# Relay ports: open this UDP range in the firewall.",
        f"min-port={min_port}",
        f"max-port={max_port}",
        "",
        "# --- authentication: TURN REST API (ephemeral credentials) ---",
        "# Only time-limited credentials signed with a shared secret are accepted.",
        "use-auth-secret",
        "# coturn tries every secret: rotate by adding the new one, rolling the",
        "# application, then removing the old one after its credentials expired.",
        *(f"static-auth-secret={secret}" for secret in clean),
        f"realm={realm}",
        "# Must match the separator the credentials are issued with.",
        f"rest-api-separator={separator}",
        "# Message integrity fingerprints (RFC 8489), expected by browsers.",
        "fingerprint",
        "# Nonces expire: a captured request cannot be replayed for long.",
        "stale-nonce=600",
        "",
        "# --- abuse limits ---",
        "# Concurrent allocations per user and in total.",
        f"user-quota={user_quota}",
        f"total-quota={total_quota}",
        "",
        "# --- SSRF protection: never relay to internal or special addresses ---",
        "no-multicast-peers",
    ]
    for cidr, reason in DENIED_PEER_RANGES:
        if allow_loopback_peers and cidr in _LOOPBACK:
            continue
        lines += [f"# {cidr}: {reason}", f"denied-peer-ip={_range(cidr)}"]
    if allow_loopback_peers:
        lines += [
            "# DEVELOPMENT ONLY: peers on loopback are allowed (tests on one machine).",
            "allow-loopback-peers",
        ]
    lines += [
        "",
        "# --- operations ---",
        "# The telnet CLI has an empty password by default: keep it off.",
        "no-cli",
    ]
    if prometheus:
        lines += ["# Prometheus exporter on port 9641 (/metrics).", "prometheus"]
    if log_file:
        lines += [
            "# One log file, no rotation by coturn (use logrotate).",
            f"log-file={log_file}",
            "simple-log",
        ]
    if pidfile:
        lines += [f"pidfile={pidfile}"]
    return "\n".join(lines) + "\n"
