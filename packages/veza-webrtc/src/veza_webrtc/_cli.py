"""``veza-webrtc``: ICE configuration, TURN credentials and coturn configuration.

Exit codes: 0 success, 2 a usage or configuration error (the message names the
variable or option; credentials are never printed in errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from veza_webrtc._config import IceConfig
from veza_webrtc._coturn import CoturnBuild, coturn_config
from veza_webrtc._credentials import ephemeral_credentials
from veza_webrtc._errors import WebRTCError
from veza_webrtc._version import __version__


def _ice_config(args: argparse.Namespace) -> int:
    config = IceConfig.from_env()
    print(json.dumps(config.to_rtc_configuration(user_id=args.user), indent=2))
    return 0


def _credentials(args: argparse.Namespace) -> int:
    secret = args.secret
    if secret.startswith("@"):
        secret = Path(secret[1:]).read_text(encoding="utf-8").strip()
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
