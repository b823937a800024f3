"""``veza-payments``: sign and verify webhook bodies from the shell.

For integrators testing their endpoint: pipe a body in, get the signature Hyperswitch
would send (``webhook-sign``), or check one (``webhook-verify``: exit 0 valid, 1
invalid, 2 usage error). The key is read from ``--key`` or, better (shell history),
from the environment variable named by ``--key-env``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from veza_payments._signatures import sign_payload, verify_signature
from veza_payments._version import __version__


def _key(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.key:
        return str(args.key)
    if args.key_env:
        value = os.environ.get(args.key_env, "")
        if value:
            return value
        parser.error(f"environment variable {args.key_env} is empty or unset")
    parser.error("one of --key or --key-env is required")
    raise AssertionError  # pragma: no cover - parser.error exits


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs)."""
    parser = argparse.ArgumentParser(
        prog="veza-payments", description="Sign and verify Hyperswitch webhook bodies (stdin)."
    )
    parser.add_argument("--version", action="version", version=f"veza-payments {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("webhook-sign", "print the X-Webhook-Signature-512 value of the body on stdin"),
        ("webhook-verify", "check a signature against the body on stdin (exit 0 valid, 1 not)"),
    ):
        cmd = sub.add_parser(name, help=helptext, description=helptext)
        keys = cmd.add_mutually_exclusive_group()
        keys.add_argument("--key", help="the payment response hash key")
        keys.add_argument("--key-env", metavar="NAME", help="read the key from this variable")
        if name == "webhook-verify":
            cmd.add_argument(
                "--signature",
                required=True,
                metavar="HEX",
                help="the X-Webhook-Signature-512 header value",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``veza-payments`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    key = _key(args, parser)
    body = sys.stdin.buffer.read()
    if args.command == "webhook-sign":
        print(sign_payload(body, key))
        return 0
    if verify_signature(body, args.signature, key):
        print("valid")
        return 0
    print("invalid: the signature does not match this body under this key", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
