"""``veza-webrtc``: ICE configuration, TURN credentials and coturn configuration.

Exit codes: 0 success, 1 ``probe`` found a URL that does not work, 2 a usage or
configuration error (the message names the variable or option; credentials are never
printed in errors).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from veza_webrtc._config import IceConfig
from veza_webrtc._coturn import CoturnBuild, coturn_config
from veza_webrtc._credentials import ephemeral_credentials
from veza_webrtc._errors import WebRTCError
from veza_webrtc._probe import probe_ice_servers
from veza_webrtc._uri import parse_ice_url
from veza_webrtc._version import __version__


def _ice_config(args: argparse.Namespace) -> int:
    config = IceConfig.from_env()
    print(json.dumps(config.build().to_rtc_configuration(user_id=args.user), indent=2))
    return 0


def _value(text: str) -> str:
    """A secret given inline or as ``@FILE`` (keeps it out of ``ps`` and shell history)."""
    if text.startswith("@"):
        return Path(text[1:]).read_text(encoding="utf-8").strip()
    return text


def _credentials(args: argparse.Namespace) -> int:
    secret = _value(args.secret)
    credentials = ephemeral_credentials(
        secret, user_id=args.user, ttl=args.ttl, now=args.now, separator=args.separator
    )
    print(json.dumps(credentials.to_dict()))
    return 0


def _coturn_config(args: argparse.Namespace) -> int:
    secrets = Path(args.secret_file).read_text(encoding="utf-8").split()
    if args.coturn_version:
        build: CoturnBuild | None = CoturnBuild.parse(
            args.coturn_version, prometheus=args.prometheus
        )
    else:
        build = CoturnBuild.detect()
    text = coturn_config(
        realm=args.realm,
        secrets=secrets,
        external_ip=args.external_ip,
        listening_ip=args.listening_ip,
        relay_ip=args.relay_ip,
        listening_port=args.listening_port,
        tls_listening_port=args.tls_listening_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        min_port=args.min_port,
        max_port=args.max_port,
        user_quota=args.user_quota,
        total_quota=args.total_quota,
        prometheus=args.prometheus,
        allow_loopback_peers=args.allow_loopback_peers,
        separator=args.separator,
        log_file=args.log_file,
        pidfile=args.pidfile,
        build=build,
    )
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _peer(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        msg = f"--peer must be HOST:PORT (IPv6 in brackets), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return host, int(port)


def _probe_config(args: argparse.Namespace) -> IceConfig | dict[str, object]:
    """The configuration to probe: the environment's, or the URLs given, every one kept."""
    if not args.urls:
        config = IceConfig.from_env()
        for warning in config.warnings:
            print(f"veza-webrtc: warning: {warning}", file=sys.stderr)
        return config
    urls = [parse_ice_url(u) for u in args.urls]
    username, credential = args.username, _value(args.credential) if args.credential else None
    if args.secret:
        issued = ephemeral_credentials(
            _value(args.secret), user_id=args.user, ttl=600, separator=args.separator
        )
        username, credential = issued.username, issued.credential
    servers: list[dict[str, object]] = []
    stun = [str(u) for u in urls if not u.is_turn]
    turn = [str(u) for u in urls if u.is_turn]
    if stun:
        servers.append({"urls": stun})
    if turn:
        servers.append({"urls": turn, "username": username, "credential": credential})
    return {"iceServers": servers}


def _probe(args: argparse.Namespace) -> int:
    config = _probe_config(args)
    context = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
    results = probe_ice_servers(
        config,
        timeout=args.timeout,
        user_id=args.user,
        peer=args.peer,
        tls_context=context,
        channel_data=args.channel_data,
        separator=args.separator,
    )
    if not results:
        print("veza-webrtc: error: no STUN or TURN URL to probe", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            verdict = "ok  " if r.ok else "FAIL"
            rtt = f"{r.rtt_ms:.1f} ms" if r.rtt_ms is not None else "-"
            line = f"{verdict} {r.url}  rtt {rtt}"
            if r.relayed_address:
                line += f"  relayed {r.relayed_address}  echoed {r.bytes_echoed} B"
            print(line)
            if r.diagnosis:
                print(f"     {r.failure}: {r.diagnosis}")
    return 0 if all(r.ok for r in results) else 1


def build_parser() -> argparse.ArgumentParser:
    """The ``veza-webrtc`` argument parser (the command-line contract)."""
    parser = argparse.ArgumentParser(prog="veza-webrtc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"veza-webrtc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    ice = commands.add_parser("ice-config", help="print the RTCConfiguration from WEBRTC_*")
    ice.add_argument("--user", help="user id for ephemeral credentials")
    ice.set_defaults(handler=_ice_config)

    creds = commands.add_parser("credentials", help="issue ephemeral TURN credentials")
    creds.add_argument("--secret", required=True, help="TURN REST secret (or @FILE)")
    creds.add_argument("--user", required=True)
    creds.add_argument("--ttl", required=True, type=int, metavar="SECONDS")
    creds.add_argument("--now", type=int, metavar="EPOCH")
    creds.add_argument("--separator", default=":")
    creds.set_defaults(handler=_credentials)

    cot = commands.add_parser("coturn-config", help="write an annotated turnserver.conf")
    cot.add_argument("--realm", required=True)
    cot.add_argument(
        "--secret-file",
        required=True,
        metavar="FILE",
        help="TURN secrets, one per line, newest first",
    )
    cot.add_argument("--external-ip", metavar="IP")
    cot.add_argument("--listening-ip", metavar="IP")
    cot.add_argument("--relay-ip", metavar="IP")
    cot.add_argument("--listening-port", type=int, default=3478)
    cot.add_argument("--tls-listening-port", type=int, default=5349)
    cot.add_argument("--tls-cert", metavar="FILE")
    cot.add_argument("--tls-key", metavar="FILE")
    cot.add_argument("--min-port", type=int, default=49152)
    cot.add_argument("--max-port", type=int, default=65535)
    cot.add_argument("--user-quota", type=int, default=12)
    cot.add_argument("--total-quota", type=int, default=1200)
    cot.add_argument("--prometheus", action="store_true")
    cot.add_argument(
        "--allow-loopback-peers", action="store_true", help="development and tests only"
    )
    cot.add_argument("--separator", default=":")
    cot.add_argument("--log-file", metavar="FILE")
    cot.add_argument("--pidfile", metavar="FILE")
    cot.add_argument(
        "--coturn-version",
        metavar="X.Y.Z",
        help="target version (default: ask the local turnserver)",
    )
    cot.add_argument("--output", metavar="FILE", help="write here (mode 600) instead of stdout")
    cot.set_defaults(handler=_coturn_config)

    probe = commands.add_parser(
        "probe",
        help="check that STUN/TURN servers answer, authenticate and relay",
        description=(
            "Probe each URL: STUN Binding, TURN Allocate with the credentials, a permission "
            "and data echoed through the relay, then release. Without URLs, the WEBRTC_* "
            "configuration is probed. Exit 0 when every URL works, 1 when one does not."
        ),
    )
    probe.add_argument("urls", nargs="*", metavar="URL", help="stun:, stuns:, turn:, turns:")
    probe.add_argument("--secret", help="TURN REST secret (or @FILE): sign fresh credentials")
    probe.add_argument("--username", help="static TURN username")
    probe.add_argument("--credential", help="static TURN password (or @FILE)")
    probe.add_argument("--separator", default=":", help="TURN REST separator")
    probe.add_argument("--user", default="veza-probe", help="user id in ephemeral usernames")
    probe.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per URL")
    probe.add_argument(
        "--peer", type=_peer, metavar="HOST:PORT", help="a UDP echo peer (default: the probe)"
    )
    probe.add_argument("--ca-file", metavar="FILE", help="trust this CA for stuns:/turns:")
    probe.add_argument(
        "--channel-data", action="store_true", help="relay with ChannelBind + ChannelData"
    )
    probe.add_argument("--json", action="store_true", help="one JSON list of results")
    probe.set_defaults(handler=_probe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (WebRTCError, OSError) as exc:
        detail = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
        print(f"veza-webrtc: error: {detail}", file=sys.stderr)
        return 2
