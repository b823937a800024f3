"""Bunny.net token authentication: the HS256 form, the legacy SHA-256 form and basic MD5.

What the edge computes (the published vectors are the truth; Bunny's SDKs disagree with
each other, and its README documents an order its own code does not use):

* ``hs256`` (current): ``HMAC-SHA256(key, path + expires + ip_bytes + params)``;
  ``ip_bytes`` is the packed address (IPv4: 4 bytes; IPv6: 16 bytes with the last 8
  zeroed, i.e. masked to its /64); ``params`` is ``k=v&k=v`` over the sorted, decoded
  query parameters (plus ``token_countries``, ``token_countries_blocked``, ``limit``,
  ``token_path``). Token: ``HS256-`` + (``1-`` when IP-bound) + base64url, no padding.
* ``sha256`` (legacy "advanced"): ``SHA256(key + path + expires + ip_text + params)``,
  same URL shapes, no prefix. What the original platform used.
* ``md5`` (basic): ``MD5(key + path + expires + ip_text)``; no parameters, query form only.

``path`` is ``token_path`` when one is given, else the request path. URL shapes: query
(``/file?token=…&…&expires=…``) and directory (``/bcdn_token=…&…&expires=…/dir/file``):
relative URLs in an HLS playlist fetched through a directory URL inherit the token.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

from veza_cdn._encoding import (
    b64url_nopad,
    encode_component,
    normalize_url,
    parse_query,
    split_url,
)
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._hmac import KeyedHMAC
from veza_cdn._paths import (
    CanonicalPath,
    UnsafePathError,
    canonical_decoded_path,
    canonical_path,
    plainly_under,
)
from veza_cdn._secret import Secret
from veza_cdn._verification import (
    FailureReason,
    Verification,
    check_time_window,
    constant_time_equal,
)

BunnyScheme = Literal["hs256", "sha256", "md5"]
_SCHEMES: tuple[str, ...] = ("hs256", "sha256", "md5")
_DIR_PREFIX = "/bcdn_token="
_IGNORE_PARAMS_FLAG = "token_ignore_params"
_DIGEST_CHARS = 43  # base64url of a 32-byte digest, unpadded


def pack_ip(user_ip: str) -> bytes:
    """The address bytes HS256 signs: IPv4 as 4 bytes, IPv6 masked to its /64.

    Raises:
        SigningError: ``user_ip`` is not an IP address.
    """
    try:
        address = ipaddress.ip_address(user_ip.strip())
    except ValueError:
        msg = f"user_ip {user_ip!r} is not a valid IP address"
        raise SigningError(msg) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return address.packed
    return address.packed[:8] + bytes(8)


class BunnySigner:
    """Signs and verifies Bunny.net token-authenticated URLs.

    Args:
        security_key: The pull zone's URL token authentication key.
        scheme: ``hs256`` (default), ``sha256`` (legacy) or ``md5`` (basic).
        verify_keys: Older keys still accepted by :meth:`verify` during a rotation.

    Raises:
        CDNConfigurationError: Empty key or unknown scheme.
    """

    __slots__ = ("_hmac", "_key", "_key_bytes", "_scheme", "_verify_hmacs", "_verify_keys")

    def __init__(
        self,
        security_key: str | Secret[str],
        *,
        scheme: BunnyScheme = "hs256",
        verify_keys: Iterable[str | Secret[str]] = (),
    ) -> None:
        key = security_key if isinstance(security_key, Secret) else Secret(security_key)
        if not key.reveal().strip():
            msg = "the Bunny security key is empty: refusing to issue unsigned URLs"
            raise CDNConfigurationError(msg)
        if scheme not in _SCHEMES:
            msg = f"unknown Bunny token scheme {scheme!r}; expected one of {', '.join(_SCHEMES)}"
            raise CDNConfigurationError(msg)
        self._key = key
        self._key_bytes = key.reveal().encode("utf-8")
        self._hmac = KeyedHMAC(self._key_bytes, "sha256")
        self._scheme: BunnyScheme = scheme
        extra = [k if isinstance(k, Secret) else Secret(k) for k in verify_keys]
        if any(not k.reveal().strip() for k in extra):
            msg = "a Bunny verify-only key is empty"
            raise CDNConfigurationError(msg)
        self._verify_keys = tuple(k.reveal().encode("utf-8") for k in extra)
        self._verify_hmacs = {k: KeyedHMAC(k, "sha256") for k in self._verify_keys}

    def __repr__(self) -> str:
        return f"BunnySigner(scheme={self._scheme!r}, security_key={self._key!r})"

    @property
    def scheme(self) -> BunnyScheme:
        """The token scheme this signer issues."""
        return self._scheme

    # ------------------------------------------------------------------ signing

    def sign_url(
        self,
        url: str,
        *,
        expires: int,
        user_ip: str | None = None,
        directory: bool = False,
        token_path: str | None = None,
        countries: str | None = None,
        countries_blocked: str | None = None,
        speed_limit: int | None = None,
        ignore_params: bool = False,
    ) -> str:
        """Return ``url`` signed so the edge accepts it until ``expires``.

        Args:
            url: Absolute URL on the pull zone (normalised first, see the module docs).
            expires: Expiry, UTC epoch seconds.
            user_ip: Bind the token to this client address (IPv6 binds its /64).
            directory: Put the token in the path (``/bcdn_token=…/path``) instead of
                the query; what HLS needs so relative segment URLs inherit it.
            token_path: Sign this path prefix instead of the exact path, so one token
                covers every file under it.
            countries: Comma-separated ISO country codes allowed.
            countries_blocked: Comma-separated ISO country codes refused.
            speed_limit: Download speed limit in kB/s (``limit``).
            ignore_params: Let the edge ignore the query string when validating.

        Raises:
            SigningError: A malformed URL, a duplicated parameter, or an option the
                scheme cannot express.
        """
        origin, path, query = split_url(normalize_url(url))
        _check_scope(canonical_path(path), token_path)
        _check_query_names(query)
        if query or token_path or countries or countries_blocked or speed_limit or ignore_params:
            params = self._parameters(
                query,
                token_path=token_path,
                countries=countries,
                countries_blocked=countries_blocked,
                speed_limit=speed_limit,
                ignore_params=ignore_params,
            )
        else:
            params = []
        if directory and self._scheme == "md5":
            msg = "Bunny's basic (md5) tokens have no directory form"
            raise SigningError(msg)
        ip = user_ip or ""
        expires_text = str(int(expires))
        token = self._token(self._key_bytes, token_path or path, expires_text, ip, params)
        tail = (
            "".join(f"&{encode_component(k)}={encode_component(v)}" for k, v in params)
            if params
            else ""
        )
        kept_query = query if (ignore_params or self._scheme == "md5") and query else ""
        if directory:
            suffix = f"?{kept_query}" if kept_query else ""
            return f"{origin}{_DIR_PREFIX}{token}{tail}&expires={expires_text}{path}{suffix}"
        suffix = f"&{kept_query}" if kept_query else ""
        return f"{origin}{path}?token={token}{tail}&expires={expires_text}{suffix}"

    def scoped(self, prefix_url: str, *, expires: int) -> Callable[[str], str]:
        """One directory token for everything under ``prefix_url`` (HLS playlists).

        Returns a function that turns any URL under the prefix into its signed
        directory form, all sharing one token (one HMAC for the whole playlist).
        """
        if self._scheme == "md5":
            msg = "Bunny's basic (md5) tokens cannot be scoped to a directory"
            raise SigningError(msg)
        origin, prefix_path, _ = split_url(normalize_url(prefix_url))
        scope = canonical_path(prefix_path)
        token_path = scope.decoded  # token_path is signed and compared decoded
        sample = self.sign_url(
            f"{origin}{prefix_path}", expires=expires, directory=True, token_path=token_path
        )
        token_segment = sample[len(origin) : len(sample) - len(prefix_path)]

        folder = origin + prefix_path.rstrip("/") + "/"

        def sign(url: str) -> str:
            normalized = normalize_url(url)
            if plainly_under(normalized, folder):
                return f"{origin}{token_segment}{normalized[len(origin) :]}"
            url_origin, path, query = split_url(normalized)
            if url_origin != origin or not canonical_path(path).within(scope):
                msg = f"{url[:80]!r} is outside the token's scope {prefix_url!r}"
                raise SigningError(msg)
            if query:  # the edge signs query parameters too: this URL needs its own token
                return self.sign_url(url, expires=expires, directory=True, token_path=token_path)
            return f"{origin}{token_segment}{path}"

        return sign

    def string_to_sign(
        self,
        url: str,
        *,
        expires: int,
        user_ip: str | None = None,
        token_path: str | None = None,
        countries: str | None = None,
        countries_blocked: str | None = None,
        speed_limit: int | None = None,
        ignore_params: bool = False,
    ) -> bytes:
        """The exact bytes hashed for ``url`` (the key shown as ``<security-key>``)."""
        _, path, query = split_url(normalize_url(url))
        params = self._parameters(
            query,
            token_path=token_path,
            countries=countries,
            countries_blocked=countries_blocked,
            speed_limit=speed_limit,
            ignore_params=ignore_params,
        )
        return self._message(token_path or path, str(int(expires)), user_ip or "", params)

    # ------------------------------------------------------------------ internals

    def _parameters(
        self,
        query: str,
        *,
        token_path: str | None,
        countries: str | None,
        countries_blocked: str | None,
        speed_limit: int | None,
        ignore_params: bool,
    ) -> list[tuple[str, str]]:
        if self._scheme == "md5":
            if token_path or countries or countries_blocked or speed_limit or ignore_params:
                msg = "Bunny's basic (md5) tokens sign only path, expiry and IP"
                raise SigningError(msg)
            return []
        control: dict[str, str | None] = {
            "token_countries": countries,
            "token_countries_blocked": countries_blocked,
        }
        if speed_limit is not None:
            if speed_limit < 0:
                msg = f"speed_limit must not be negative, got {speed_limit}"
                raise SigningError(msg)
            control["limit"] = str(speed_limit) if speed_limit else None
        params: dict[str, str] = {}
        if ignore_params:
            if any(control.values()):
                msg = (
                    "ignore_params cannot be combined with countries or a speed limit: "
                    "Bunny's SDKs silently drop them in that case; veza refuses instead"
                )
                raise SigningError(msg)
            params[_IGNORE_PARAMS_FLAG] = "true"
        else:
            for name, value in parse_query(query):
                if name in params:
                    msg = f"duplicate query parameter {name!r} cannot be signed"
                    raise SigningError(msg)
                params[name] = value
            for name, control_value in control.items():
                if control_value:
                    if name in params:
                        msg = f"the URL already carries {name!r}"
                        raise SigningError(msg)
                    params[name] = control_value
        if token_path:
            if not token_path.startswith("/"):
                msg = f"token_path must start with '/', got {token_path!r}"
                raise SigningError(msg)
            params["token_path"] = token_path
        return sorted(params.items())

    def _message(self, path: str, expires: str, ip: str, params: list[tuple[str, str]]) -> bytes:
        data = "&".join(f"{k}={v}" for k, v in params).encode("utf-8")
        if self._scheme == "hs256":
            ip_bytes = pack_ip(ip) if ip else b""
            return path.encode("utf-8") + expires.encode() + ip_bytes + data
        if self._scheme == "sha256":
            return b"<security-key>" + (path + expires + ip).encode("utf-8") + data
        return b"<security-key>" + (path + expires + ip).encode("utf-8")

    def _token(
        self, key: bytes, path: str, expires: str, ip: str, params: list[tuple[str, str]]
    ) -> str:
        data = "&".join(f"{k}={v}" for k, v in params).encode("utf-8") if params else b""
        if self._scheme == "hs256":
            mac = self._hmac if key is self._key_bytes else self._verify_hmacs[key]
            if ip:
                message = path.encode("utf-8") + expires.encode() + pack_ip(ip) + data
                return "HS256-1-" + b64url_nopad(mac.digest(message))
            return "HS256-" + b64url_nopad(mac.digest((path + expires).encode("utf-8") + data))
        if self._scheme == "sha256":
            message = key + (path + expires + ip).encode("utf-8") + data
            return b64url_nopad(hashlib.sha256(message).digest())
        message = key + (path + expires + ip).encode("utf-8")
        return b64url_nopad(hashlib.md5(message, usedforsecurity=False).digest())

    # ------------------------------------------------------------------ verification

    def verify(
        self,
        signed_url: str,
        *,
        now: float | None = None,
        user_ip: str | None = None,
        country: str | None = None,
    ) -> Verification:
        """Check a signed URL the way the edge does.

        Args:
            signed_url: The URL as the client requested it.
            now: The time to check against (default: the current time).
            user_ip: The client's address; required for IP-bound tokens.
            country: The client's ISO country code, to enforce country lists.

        Returns:
            A :class:`Verification`; failures carry a :class:`FailureReason`. For HS256
            the IP is folded into the HMAC, so a token used from another address fails
            as ``bad_signature`` (indistinguishable from a forgery).
        """
        parsed = parse_signed_url(signed_url)
        if isinstance(parsed, Verification):
            return parsed
        path, token, expires, params = parsed.path, parsed.token, parsed.expires, parsed.params
        try:
            request_path = canonical_path(path)
        except UnsafePathError as exc:
            return Verification.fail(FailureReason.UNSAFE_PATH, exc.detail, expires=expires)
        ip_bound = False
        if self._scheme == "hs256":
            # A digest's base64 may itself start with "1-": only the length tells an
            # IP-bound token ("HS256-1-" + 43 characters) from an unbound one.
            body = token.removeprefix("HS256-")
            if body == token or len(body) not in (_DIGEST_CHARS, _DIGEST_CHARS + 2):
                return Verification.fail(FailureReason.MALFORMED, "not an HS256 token")
            ip_bound = len(body) == _DIGEST_CHARS + 2 and body.startswith("1-")
        if ip_bound and not user_ip:
            return Verification.fail(
                FailureReason.IP_MISMATCH, "the token is bound to a client IP; none given"
            )
        named = dict(params)
        token_path = named.get("token_path")
        if named.get("token_ignore_params") == "true":
            signed_params = [
                (k, v) for k, v in params if k in ("token_ignore_params", "token_path")
            ]
        else:
            signed_params = params
        if self._scheme == "hs256":
            ips = [user_ip or ""] if ip_bound else [""]
        else:  # legacy forms carry no IP flag: the token is valid with or without it
            ips = ["", user_ip] if user_ip else [""]
        hashed = _hashed_paths(path, request_path, token_path)
        try:
            candidates = [
                self._token(key, signed_path, str(expires), ip, sorted(signed_params))
                for key in (self._key_bytes, *self._verify_keys)
                for ip in ips
                for signed_path in hashed
            ]
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc), expires=expires)
        if not any(constant_time_equal(token, c) for c in candidates):
            detail = "the token does not match the URL under any known key"
            if ip_bound:
                detail += " (it is IP-bound: a different client IP fails the same way)"
            return Verification.fail(FailureReason.BAD_SIGNATURE, detail, expires=expires)
        failed = check_time_window(time.time() if now is None else now, expires)
        if failed is not None:
            return failed
        failure = _scope_failure(request_path, token_path, expires)
        if failure is None:  # not "or": a failed Verification is falsy
            failure = _check_country(named, country, expires)
        if failure is not None:
            return failure
        return Verification.ok(expires=expires, path=request_path.decoded)


def _hashed_paths(path: str, request: CanonicalPath, token_path: str | None) -> list[str]:
    """The path forms a token may have been computed over.

    With ``token_path`` the edge hashes it (decoded, as the parameter carries it).
    Otherwise it hashes the request path: veza signs it as sent on the wire (as Bunny's
    Node, Rust and C# SDKs do); its Go SDK, and its Python SDK given a Unicode URL,
    sign the decoded form. Both name the same decoded path, which is what is served.
    """
    if token_path:
        return [token_path]
    if request.decoded != path:
        return [path, request.decoded]
    return [path]


def _scope_failure(
    request: CanonicalPath, token_path: str | None, expires: int
) -> Verification | None:
    try:
        inside = _check_scope(request, token_path, strict=False)
    except UnsafePathError as exc:
        return Verification.fail(FailureReason.UNSAFE_PATH, exc.detail, expires=expires)
    if inside:
        return None
    return Verification.fail(
        FailureReason.PATH_OUT_OF_SCOPE,
        f"path is outside the token's scope {token_path!r} (whole segments)",
        expires=expires,
    )


_RESERVED = frozenset({"token", "expires", "token_path", "token_ignore_params"})


def _check_query_names(query: str) -> None:
    """Refuse a query the edge would read differently from what was signed.

    Raises:
        SigningError: A parameter is repeated, or carries a name the token itself uses
            (pass ``token_path``/``ignore_params`` as arguments instead).
    """
    names = [name for name, _ in parse_query(query)]
    reserved = sorted(_RESERVED.intersection(names))
    if reserved:
        msg = f"the URL's query uses the reserved parameter name(s) {reserved}"
        raise SigningError(msg)
    if len(set(names)) != len(names):
        msg = "duplicate query parameter: the edge refuses repeated parameters"
        raise SigningError(msg)


def _check_scope(path: CanonicalPath, token_path: str | None, *, strict: bool = True) -> bool:
    """Whether ``path`` lies in the folder ``token_path`` (decoded), by whole segments.

    Raises:
        UnsafePathError: ``token_path`` breaks the path rule.
        SigningError: (``strict``, the signer's case) the path is outside the scope.
    """
    if not token_path:
        return True
    try:
        scope = canonical_decoded_path(token_path)
    except UnsafePathError as exc:
        raise UnsafePathError(f"token_path: {exc.detail}") from None
    inside = path.within(scope)
    if strict and not inside:
        msg = (
            f"the path {path.decoded[:80]!r} is outside token_path {token_path!r} (token_path"
            " is a decoded folder, matched by whole segments)"
        )
        raise SigningError(msg)
    return inside


class SignedBunnyURL(NamedTuple):
    """A Bunny signed URL taken apart.

    The one parser of Bunny's URL shapes: the verifier, the CLI's ``explain`` and any
    edge share it. A named tuple, not an attrs class: it is made on every verification
    and a frozen attrs instance costs several times more to build.

    Attributes:
        origin: ``scheme://host[:port]``.
        path: The request path as sent (the directory token segment removed).
        query: The raw query string (without ``?``).
        token: The token.
        expires: The expiry, UTC epoch seconds.
        params: Every other parameter, decoded, in URL order (directory segment first).
        directory: Whether the token was in the path (``/bcdn_token=…/path``).
    """

    origin: str
    path: str
    query: str
    token: str
    expires: int
    params: list[tuple[str, str]]
    directory: bool


def parse_signed_url(signed_url: str) -> SignedBunnyURL | Verification:
    """Take a signed Bunny URL apart, or say why it is malformed (a failed Verification)."""
    try:
        origin, path, query = split_url(signed_url)
    except SigningError as exc:
        return Verification.fail(FailureReason.MALFORMED, str(exc))
    directory = path.startswith(_DIR_PREFIX)
    if directory:
        end = path.find("/", 1)
        if end == -1:
            return Verification.fail(FailureReason.MALFORMED, "directory token without a path")
        segment, path = path[1:end], path[end:]
        raw = [("token", v) if k == "bcdn_token" else (k, v) for k, v in parse_query(segment)]
        raw += parse_query(query)
    else:
        raw = parse_query(query)
    tokens = [v for k, v in raw if k == "token"]
    expiries = [v for k, v in raw if k == "expires"]
    if len(tokens) != 1 or len(expiries) != 1 or not expiries[0].isdigit():
        return Verification.fail(FailureReason.MALFORMED, "missing or repeated token/expires")
    params = [(k, v) for k, v in raw if k not in ("token", "expires")]
    if len({k for k, _ in params}) != len(params):
        return Verification.fail(FailureReason.MALFORMED, "a query parameter is repeated")
    return SignedBunnyURL(origin, path, query, tokens[0], int(expiries[0]), params, directory)


def _check_country(named: dict[str, str], country: str | None, expires: int) -> Verification | None:
    if not country:
        return None
    code = country.strip().upper()
    allowed = named.get("token_countries")
    if allowed and code not in {c.strip().upper() for c in allowed.split(",")}:
        return Verification.fail(
            FailureReason.COUNTRY_NOT_ALLOWED, f"{code} is not in the allowed list", expires=expires
        )
    blocked = named.get("token_countries_blocked")
    if blocked and code in {c.strip().upper() for c in blocked.split(",")}:
        return Verification.fail(
            FailureReason.COUNTRY_NOT_ALLOWED, f"{code} is blocked", expires=expires
        )
    return None
