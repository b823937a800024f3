"""``veza-payments``: sign and verify webhook bodies, probe a deployment, from the shell.

For integrators testing their endpoint: pipe a body in, get the signature Hyperswitch
would send (``webhook-sign``), or check one (``webhook-verify``: exit 0 valid, 1
invalid, 2 usage error). The key is read from ``--key`` or, better (shell history),
from the environment variable named by ``--key-env``.

For operators: ``probe`` checks the API keys of the environment's configuration
against the providers, the webhook key against the deployed endpoint, and the clock
(exit 0 all good, 1 a check failed, 2 a configuration error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from veza_payments._config import PaymentsConfig
from veza_payments._errors import PaymentsConfigurationError
from veza_payments._probe import PaymentsProbeReport, probe_payments
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
    probe = sub.add_parser(
        "probe",
        help="check the API keys, the webhook key and the clock of this environment",
        description=(
            "Read HYPERSWITCH_* and STRIPE_* like the application, check each API key with "
            "a read, post a signed and a forged self-test delivery to --webhook-url (event "
            "type veza_probe, which nothing acts on), and compare clocks. Exit 0 when all "
            "checks pass, 1 when one fails, 2 for a configuration error."
        ),
    )
    probe.add_argument("--webhook-url", metavar="URL", help="the deployed webhook endpoint")
    probe.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    probe.add_argument("--max-skew", type=float, default=10.0, metavar="SECONDS")
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _probe(args: argparse.Namespace) -> int:
    try:
        config = PaymentsConfig.from_env(require_webhook_keys=bool(args.webhook_url))
    except PaymentsConfigurationError as exc:
        print(f"veza-payments: error: {exc}", file=sys.stderr)
        return 2
    report = probe_payments(
        config, webhook_url=args.webhook_url, timeout=args.timeout, max_skew=args.max_skew
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else _probe_text(report))
    return 0 if report.ok else 1


def _probe_text(report: PaymentsProbeReport) -> str:
    lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name:<15} {c.detail}" for c in report.checks]
    lines.append(
        "payments configuration works" if report.ok else "payments configuration has problems"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``veza-payments`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "probe":
        return _probe(args)
    key = _key(args, parser)
    body = sys.stdin.buffer.read()
    if args.command == "webhook-sign":
        print(sign_payload(body, key))
        return 0
    if verify_signature(body, args.signature, keys=key):
        print("valid")
        return 0
    print("invalid: the signature does not match this body under this key", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
