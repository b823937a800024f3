"""``veza-cdn``: sign, verify, explain and probe CDN URLs from the command line.

Prints one result on stdout. Exit codes: 0 success (a valid token for ``verify``, an
edge that answered every check right for ``probe``), 1 a negative answer (``verify``:
the token is invalid, the reason on stderr; ``probe``: the edge got a check wrong or
could not be reached), 2 usage or configuration errors (message on stderr). Keys are
read from options (``probe``: from the ``CDN_*`` environment), never echoed; prefer
``--key @FILE`` to keep them out of shell history.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from veza_cdn._akamai import AkamaiSigner
from veza_cdn._bunny import BunnySigner, SignedBunnyURL, parse_signed_url
from veza_cdn._cloudflare import CloudflareHMACSigner
from veza_cdn._cloudfront import (
    CloudFrontSigner,
    CloudFrontVerifier,
    build_policy,
    load_private_key,
)
from veza_cdn._config import CDNConfig
from veza_cdn._encoding import (
    encode_component,
    normalize_url,
    parse_query,
    split_url,
    strict_b64decode,
)
from veza_cdn._errors import CDNError
from veza_cdn._google import GoogleCDNSigner
from veza_cdn._hls import DEFAULT_CACHE_POLICY
from veza_cdn._probe import CDNProbeReport, http_fetch, probe_cdn
from veza_cdn._service import build_signer
from veza_cdn._verification import Verification
from veza_cdn._version import __version__

PROVIDERS = ("bunny", "cloudfront", "google", "akamai", "cloudflare")


class _UsageError(Exception):
    pass


def _secret_arg(value: str) -> str:
    """``@path`` reads the value from a file (keeps keys out of ``ps`` and history)."""
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"cannot read {value[1:]!r}: {exc.strerror}"
            raise argparse.ArgumentTypeError(msg) from None
    return value


_PRINTABLE = frozenset(range(0x20, 0x7F)) - {ord("\\")}


def _printable(data: bytes) -> str:
    r"""Show signed bytes on one line: printable ASCII as is, anything else as ``\xNN``."""
    return "".join(chr(b) if b in _PRINTABLE else f"\\x{b:02x}" for b in data)


# ---------------------------------------------------------------- option groups


def _bunny_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, type=_secret_arg, help="security key (or @FILE)")
    parser.add_argument("--scheme", choices=("hs256", "sha256", "md5"), default="hs256")


def _bunny_sign_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--expires", required=True, type=int, metavar="EPOCH")
    parser.add_argument("--directory", action="store_true", help="token in the path")
    parser.add_argument("--token-path", metavar="PATH")
    parser.add_argument("--user-ip", metavar="IP")
    parser.add_argument("--countries", metavar="LIST")
    parser.add_argument("--countries-blocked", metavar="LIST")
    parser.add_argument("--speed-limit", type=int, metavar="KBPS")
    parser.add_argument("--ignore-params", action="store_true")


def _cloudfront_key_options(parser: argparse.ArgumentParser, *, public_ok: bool) -> None:
    parser.add_argument("--key-pair-id", required=True, metavar="ID")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--private-key", type=Path, metavar="PEMFILE")
    if public_ok:
        group.add_argument("--public-key", type=Path, metavar="PEMFILE")
    parser.add_argument("--hash-algorithm", choices=("SHA1", "SHA256"), default="SHA1")


def _cloudfront_sign_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--expires", required=True, type=int, metavar="EPOCH")
    parser.add_argument("--policy-resource", metavar="PATTERN")
    parser.add_argument("--ip-address", metavar="CIDR")
    parser.add_argument("--not-before", type=int, metavar="EPOCH")
    parser.add_argument("--cookies", action="store_true", help="print signed cookies")


def _google_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-name", required=True, metavar="NAME")
    parser.add_argument("--key", required=True, type=_secret_arg, metavar="BASE64URL")


def _akamai_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, type=_secret_arg, metavar="HEX")
    parser.add_argument("--algorithm", choices=("sha256", "sha1", "md5"), default="sha256")
    parser.add_argument("--salt", type=_secret_arg)
    parser.add_argument("--escape-early", action="store_true")
    parser.add_argument("--token-name", default="__token__", metavar="NAME")


def _akamai_sign_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", metavar="PATH")
    target.add_argument("--acl", metavar="ACL")
    parser.add_argument("--end-time", required=True, type=int, metavar="EPOCH")
    parser.add_argument("--start-time", type=int, metavar="EPOCH")
    parser.add_argument("--ip", metavar="IP")
    parser.add_argument("--session-id", metavar="ID")
    parser.add_argument("--payload", metavar="DATA")


def _cloudflare_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, type=_secret_arg, metavar="SECRET")


def _verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=int, metavar="EPOCH", help="check time (default: now)")
    parser.add_argument("--user-ip", metavar="IP", help="the client's address")


# ---------------------------------------------------------------- builders


def _bunny(args: argparse.Namespace) -> BunnySigner:
    return BunnySigner(args.key, scheme=args.scheme)


def _cloudfront(args: argparse.Namespace) -> CloudFrontSigner:
    key = load_private_key(args.private_key.read_bytes())
    return CloudFrontSigner(args.key_pair_id, key, hash_algorithm=args.hash_algorithm)


def _cloudfront_verifier(args: argparse.Namespace) -> CloudFrontVerifier:
    if args.private_key is not None:
        return _cloudfront(args).verifier
    public = serialization.load_pem_public_key(args.public_key.read_bytes())
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise _UsageError("--public-key must be an RSA or ECDSA public key")
    return CloudFrontVerifier({args.key_pair_id: public})


def _akamai(args: argparse.Namespace) -> AkamaiSigner:
    return AkamaiSigner(
        args.key,
        algorithm=args.algorithm,
        salt=args.salt,
        escape_early=args.escape_early,
        token_name=args.token_name,
    )


# ---------------------------------------------------------------- commands


def _sign(args: argparse.Namespace) -> int:
    provider = args.provider
    if provider == "bunny":
        print(
            _bunny(args).sign_url(
                args.url,
                expires=args.expires,
                user_ip=args.user_ip,
                directory=args.directory,
                token_path=args.token_path,
                countries=args.countries,
                countries_blocked=args.countries_blocked,
                speed_limit=args.speed_limit,
                ignore_params=args.ignore_params,
            )
        )
    elif provider == "cloudfront":
        signer = _cloudfront(args)
        options = {
            "expires": args.expires,
            "not_before": args.not_before,
            "ip_address": args.ip_address,
            "policy_resource": args.policy_resource,
        }
        if args.cookies:
            for name, value in signer.sign_cookies(args.url, **options).items():
                print(f"{name}={value}")
        else:
            print(signer.sign_url(args.url, **options))
    elif provider == "google":
        signer_g = GoogleCDNSigner(args.key_name, args.key)
        if args.url_prefix:
            print(signer_g.sign_url_prefix(args.url, prefix=args.url_prefix, expires=args.expires))
        else:
            print(signer_g.sign_url(args.url, expires=args.expires))
    elif provider == "akamai":
        signer_a = _akamai(args)
        options_a = {
            "end_time": args.end_time,
            "start_time": args.start_time,
            "ip": args.ip,
            "session_id": args.session_id,
            "payload": args.payload,
        }
        if args.url is not None:
            print(signer_a.url_token(args.url, **options_a))
        else:
            print(signer_a.acl_token(args.acl, **options_a))
    else:
        print(CloudflareHMACSigner(args.key).sign_url_issued_at(args.url, issued_at=args.issued_at))
    return 0


def _verify(args: argparse.Namespace) -> int:
    now, ip = args.now, args.user_ip
    result: Verification
    if args.provider == "bunny":
        result = _bunny(args).verify(args.signed_url, now=now, user_ip=ip, country=args.country)
    elif args.provider == "cloudfront":
        result = _cloudfront_verifier(args).verify(args.signed_url, now=now, user_ip=ip)
    elif args.provider == "google":
        result = GoogleCDNSigner(args.key_name, args.key).verify(args.signed_url, now=now)
    elif args.provider == "akamai":
        result = _akamai(args).verify(args.signed_url, now=now, user_ip=ip)
    else:
        signer = CloudflareHMACSigner(args.key, max_age=args.max_age)
        result = signer.verify(args.signed_url, now=now)
    if result.valid:
        print(f"valid (expires {result.expires})")
        return 0
    reason = result.reason.value if result.reason is not None else "invalid"
    print(f"invalid: {reason}: {result.detail}", file=sys.stderr)
    return 1


# The string-to-sign never contains a key, so explain builds signers with placeholders.
_NO_KEY = "explain-needs-no-key"
_NO_GOOGLE_KEY = "AAAAAAAAAAAAAAAAAAAAAA=="


def _explain(args: argparse.Namespace) -> int:
    """Print what the edge hashes: from a signed URL's own fields, or from the options."""
    provider, url = args.provider, getattr(args, "url", "")
    if provider == "bunny":
        message = _explain_bunny(args)
    elif provider == "cloudfront":
        message = _explain_cloudfront(args)
    elif provider == "google":
        signed_at = url.rfind("&Signature=")
        if signed_at != -1:
            signed = url[:signed_at]
            prefix_at = signed.rfind("URLPrefix=")
            message = (signed[prefix_at:] if prefix_at > 0 else signed).encode()
        else:
            if args.expires is None:
                raise _UsageError("--expires is required to explain an unsigned URL")
            if not args.key_name:
                raise _UsageError("--key-name is required to explain an unsigned URL")
            signer_g = GoogleCDNSigner(args.key_name, _NO_GOOGLE_KEY)
            message = signer_g.string_to_sign(url, expires=args.expires, prefix=args.url_prefix)
    elif provider == "akamai":
        message = _explain_akamai(args)
    else:
        query = split_url(url)[2]
        verify = [v for k, v in parse_query(query) if k == "verify"]
        issued = int(verify[0].partition("-")[0]) if verify else args.issued_at
        if issued is None:
            raise _UsageError("--issued-at is required to explain an unsigned URL")
        message = CloudflareHMACSigner(_NO_KEY).string_to_sign(url, issued_at=issued)
    print(_printable(message))
    return 0


def _explain_bunny(args: argparse.Namespace) -> bytes:
    signer = BunnySigner(_NO_KEY, scheme=args.scheme)
    parsed = parse_signed_url(args.url)  # the verifier's own parser: one owner per format
    if isinstance(parsed, SignedBunnyURL):
        named = dict(parsed.params)
        ignore = named.get("token_ignore_params") == "true"
        kept = [
            (k, v)
            for k, v in parsed.params
            if k
            not in (
                "token_countries",
                "token_countries_blocked",
                "limit",
                "token_path",
                "token_ignore_params",
            )
        ]
        query = "&".join(f"{encode_component(k)}={encode_component(v)}" for k, v in kept)
        plain = parsed.origin + parsed.path + (f"?{query}" if query and not ignore else "")
        limit = named.get("limit")
        return signer.string_to_sign(
            plain,
            expires=parsed.expires,
            user_ip=args.user_ip,
            token_path=named.get("token_path"),
            countries=named.get("token_countries"),
            countries_blocked=named.get("token_countries_blocked"),
            speed_limit=int(limit) if limit else None,
            ignore_params=ignore,
        )
    if args.expires is None:
        raise _UsageError("--expires is required to explain an unsigned URL")
    return signer.string_to_sign(
        args.url,
        expires=args.expires,
        user_ip=args.user_ip,
        token_path=args.token_path,
        countries=args.countries,
        countries_blocked=args.countries_blocked,
        speed_limit=args.speed_limit,
        ignore_params=args.ignore_params,
    )


def _explain_cloudfront(args: argparse.Namespace) -> bytes:
    url = args.url
    if "Signature=" in url:
        base, _, query = url.partition("?")
        kept: list[str] = []
        fields: dict[str, str] = {}
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if name in ("Policy", "Expires", "Signature", "Key-Pair-Id", "Hash-Algorithm"):
                fields[name] = value
            else:
                kept.append(part)
        if "Policy" in fields:
            policy = strict_b64decode(fields["Policy"], alphabet="cloudfront")
            if policy is None:
                raise _UsageError("the Policy parameter is not valid CloudFront base64")
            return policy
        if not fields.get("Expires", "").isdigit():
            raise _UsageError("a signed CloudFront URL needs Policy or a numeric Expires")
        resource = base + ("?" + "&".join(kept) if kept else "")
        return build_policy(resource, int(fields["Expires"])).encode()
    if args.expires is None:
        raise _UsageError("--expires is required to explain an unsigned URL")
    resource = normalize_url(args.policy_resource or url)
    return build_policy(
        resource, args.expires, not_before=args.not_before, ip_address=args.ip_address
    ).encode()


def _explain_akamai(args: argparse.Namespace) -> bytes:
    signer = AkamaiSigner(
        "00", escape_early=args.escape_early, salt="<salt>" if args.salt else None
    )
    if args.end_time is None:
        raise _UsageError("--end-time is required")
    if (args.url_path is None) == (args.acl is None):
        raise _UsageError("give exactly one of URL (a URL token) or --acl (an ACL token)")
    return signer.string_to_sign(
        url=args.url_path,
        acl=args.acl,
        end_time=args.end_time,
        start_time=args.start_time,
        ip=args.ip,
        session_id=args.session_id,
        payload=args.payload,
    )


# ---------------------------------------------------------------- parser


def _add_sign_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign = commands.add_parser("sign", help="print a signed URL (or token, or cookies)")
    providers = sign.add_subparsers(dest="provider", required=True)
    p = providers.add_parser("bunny")
    p.add_argument("url", metavar="URL")
    _bunny_key_options(p)
    _bunny_sign_options(p)
    p = providers.add_parser("cloudfront")
    p.add_argument("url", metavar="URL")
    _cloudfront_key_options(p, public_ok=False)
    _cloudfront_sign_options(p)
    p = providers.add_parser("google")
    p.add_argument("url", metavar="URL")
    _google_key_options(p)
    p.add_argument("--expires", required=True, type=int, metavar="EPOCH")
    p.add_argument("--url-prefix", metavar="PREFIX")
    p = providers.add_parser("akamai")
    _akamai_key_options(p)
    _akamai_sign_options(p)
    p = providers.add_parser("cloudflare")
    p.add_argument("url", metavar="URL")
    _cloudflare_key_options(p)
    p.add_argument("--issued-at", required=True, type=int, metavar="EPOCH")


def _add_verify_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser("verify", help="exit 0 if a signed URL is valid, 1 if not")
    providers = verify.add_subparsers(dest="provider", required=True)
    builders: dict[str, Callable[[argparse.ArgumentParser], None]] = {
        "bunny": _bunny_key_options,
        "cloudfront": lambda q: _cloudfront_key_options(q, public_ok=True),
        "google": _google_key_options,
        "akamai": _akamai_key_options,
        "cloudflare": _cloudflare_key_options,
    }
    for name, add_keys in builders.items():
        p = providers.add_parser(name)
        p.add_argument("signed_url", metavar="SIGNED_URL")
        add_keys(p)
        _verify_options(p)
        if name == "bunny":
            p.add_argument("--country", metavar="CC", help="the client's country code")
        if name == "cloudflare":
            p.add_argument(
                "--max-age",
                type=int,
                default=3600,
                metavar="SECONDS",
                help="the Worker's token lifetime (default 3600)",
            )


def _add_explain_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = commands.add_parser("explain", help="print the exact string-to-sign (no key needed)")
    providers = explain.add_subparsers(dest="provider", required=True)
    p = providers.add_parser("bunny")
    p.add_argument("url", metavar="URL")
    p.add_argument("--scheme", choices=("hs256", "sha256", "md5"), default="hs256")
    p.add_argument("--expires", type=int, metavar="EPOCH")
    p.add_argument("--token-path", metavar="PATH")
    p.add_argument("--user-ip", metavar="IP")
    p.add_argument("--countries", metavar="LIST")
    p.add_argument("--countries-blocked", metavar="LIST")
    p.add_argument("--speed-limit", type=int, metavar="KBPS")
    p.add_argument("--ignore-params", action="store_true")
    p = providers.add_parser("cloudfront")
    p.add_argument("url", metavar="URL")
    p.add_argument("--expires", type=int, metavar="EPOCH")
    p.add_argument("--policy-resource", metavar="PATTERN")
    p.add_argument("--ip-address", metavar="CIDR")
    p.add_argument("--not-before", type=int, metavar="EPOCH")
    p = providers.add_parser("google")
    p.add_argument("url", metavar="URL")
    p.add_argument("--key-name", metavar="NAME", default="")
    p.add_argument("--expires", type=int, metavar="EPOCH")
    p.add_argument("--url-prefix", metavar="PREFIX")
    p = providers.add_parser("akamai")
    p.add_argument("url_path", metavar="URL", nargs="?", help="the URL path (URL tokens)")
    p.add_argument("--acl", metavar="ACL")
    p.add_argument("--escape-early", action="store_true")
    p.add_argument("--salt", action="store_true", help="a salt is configured (shown as <salt>)")
    p.add_argument("--end-time", type=int, metavar="EPOCH")
    p.add_argument("--start-time", type=int, metavar="EPOCH")
    p.add_argument("--ip", metavar="IP")
    p.add_argument("--session-id", metavar="ID")
    p.add_argument("--payload", metavar="DATA")
    p = providers.add_parser("cloudflare")
    p.add_argument("url", metavar="URL")
    p.add_argument("--issued-at", type=int, metavar="EPOCH")


def _add_probe_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    probe = commands.add_parser(
        "probe",
        help="ask a deployed edge whether it really checks tokens",
        description=(
            "Sign URL with the provider and key of the CDN_* environment (as the "
            "application does), then fetch it from the edge valid, unsigned, tampered, "
            "expired and (with --ip-bound) bound to another IP. Exit 0 when the edge "
            "answered every check right, 1 when it did not (each problem on stdout)."
        ),
    )
    probe.add_argument(
        "url", metavar="URL", help="an existing object: absolute, or a key under CDN_BASE_URL"
    )
    probe.add_argument("--ip-bound", action="store_true", help="tokens bind the client IP")
    probe.add_argument(
        "--client-ip", metavar="IP", help="with --ip-bound: this host's address as the edge sees it"
    )
    probe.add_argument("--ttl", type=int, default=300, metavar="SECONDS", help="valid token life")
    probe.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    probe.add_argument("--cafile", type=Path, metavar="PEM", help="trust this CA for https edges")
    probe.add_argument("--no-cache-check", action="store_true", help="do not compare Cache-Control")
    probe.add_argument("--json", action="store_true", help="print the report as JSON")


def _probe(args: argparse.Namespace) -> int:
    config = CDNConfig.from_env(os.environ)
    signer = build_signer(config)
    url: str = args.url
    if not url.startswith(("http://", "https://")):
        if not config.base_url:
            msg = f"{url!r} is not an absolute URL and CDN_BASE_URL is not set"
            raise _UsageError(msg)
        url = f"{config.base_url.rstrip('/')}/{url.lstrip('/')}"
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    report = probe_cdn(
        url,
        signer,
        ttl=args.ttl,
        ip_bound=args.ip_bound,
        client_ip=args.client_ip,
        cache_policy=None if args.no_cache_check else DEFAULT_CACHE_POLICY,
        fetch=http_fetch(timeout=args.timeout, ssl_context=context),
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else _probe_text(report))
    return 0 if report.ok else 1


def _probe_text(report: CDNProbeReport) -> str:
    lines = [f"probe {report.url} ({report.elapsed_ms:.0f} ms)"]
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        status = check.status if check.status is not None else "-"
        lines.append(f"  {mark} {check.name:<9} {status!s:>4}  {check.detail}")
    lines.extend(f"problem: {problem}" for problem in report.diagnosis)
    lines.append("the edge checks tokens" if report.ok else "the edge got something wrong")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``veza-cdn`` argument parser (the command-line contract)."""
    parser = argparse.ArgumentParser(
        prog="veza-cdn", description="Sign, verify and explain CDN URLs."
    )
    parser.add_argument("--version", action="version", version=f"veza-cdn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_sign_commands(commands)
    _add_verify_commands(commands)
    _add_explain_commands(commands)
    _add_probe_command(commands)
    return parser


def _fail(message: str) -> NoReturn:
    print(f"veza-cdn: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    handlers = {"sign": _sign, "verify": _verify, "explain": _explain, "probe": _probe}
    try:
        return handlers[args.command](args)
    except (CDNError, _UsageError, OSError) as exc:
        _fail(str(exc) if not isinstance(exc, OSError) else f"{exc.filename}: {exc.strerror}")
