"""Akamai EdgeAuth tokens (Token Auth 2.0): URL and ACL tokens, and their verification.

Byte-identical to Akamai's ``akamai-edgeauth`` package, without its faults: it sets
``TZ=GMT`` for the whole process at import and prints the key in verbose mode; this
module touches no global state and never prints or embeds the key.

A token is ``~``-separated fields in this order: ``ip=``, ``st=``, ``exp=``, ``acl=``
(ACL tokens), ``id=``, ``data=``, ``hmac=``. The HMAC (SHA-256, SHA-1 or MD5, keyed with
the hex-decoded key) covers the same fields, plus ``url=`` (URL tokens) and ``salt=``
before the ``hmac`` field. With ``escape_early`` the ``ip``, ``id``, ``data`` and
``url`` values are ``quote_plus``-encoded with lower-case hex before use. Several ACL
entries join with ``!``; ``*`` and ``?`` are wildcards.
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal
from urllib.parse import quote, quote_plus, unquote

from veza_cdn._encoding import normalize_url, refuse_reserved, split_url
from veza_cdn._errors import CDNConfigurationError, SigningError
from veza_cdn._hmac import KeyedHMAC
from veza_cdn._paths import canonical_path, checked_path, glob_matches, plainly_under
from veza_cdn._secret import Secret
from veza_cdn._verification import (
    FailureReason,
    Verification,
    check_time_window,
    constant_time_equal,
)

AkamaiAlgorithm = Literal["sha256", "sha1", "md5"]
_ALGORITHMS = ("sha256", "sha1", "md5")
AKAMAI_QUERY_FIELD = "__token__"
"""The default query parameter (or cookie) that carries an Akamai token."""
_LOWER_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_ACL_SAFE = "=~!*/:,;@$'()+-._"


def _decode_hex_key(value: str | Secret[str], what: str) -> bytes:
    text = (value.reveal() if isinstance(value, Secret) else value).strip()
    if not text:
        msg = f"{what} is empty"
        raise CDNConfigurationError(msg)
    try:
        return binascii.a2b_hex(text)
    except (binascii.Error, ValueError):
        msg = f"{what} must be an even-length hexadecimal string"
        raise CDNConfigurationError(msg) from None


class AkamaiSigner:
    """Issues and verifies Akamai EdgeAuth tokens.

    Args:
        key: The EdgeAuth key, hexadecimal.
        algorithm: ``sha256`` (default), ``sha1`` or ``md5``.
        token_name: The query parameter or cookie name (``__token__``).
        salt: Optional salt mixed into the HMAC.
        escape_early: Percent-encode field values before hashing (must match the
            edge's "escape early" setting).
        field_delimiter: Between token fields (``~``).
        acl_delimiter: Between ACL entries (``!``).
        verify_keys: More hex keys :meth:`verify` accepts during a rotation.
    """

    def __init__(
        self,
        key: str | Secret[str],
        *,
        algorithm: AkamaiAlgorithm = "sha256",
        token_name: str = AKAMAI_QUERY_FIELD,
        salt: str | Secret[str] | None = None,
        escape_early: bool = False,
        field_delimiter: str = "~",
        acl_delimiter: str = "!",
        verify_keys: Iterable[str | Secret[str]] = (),
    ) -> None:
        self._key = _decode_hex_key(key, "the Akamai EdgeAuth key")
        self._verify_keys = tuple(
            _decode_hex_key(k, "an Akamai verify-only key") for k in verify_keys
        )
        if algorithm.lower() not in _ALGORITHMS:
            msg = f"algorithm must be one of {', '.join(_ALGORITHMS)}, got {algorithm!r}"
            raise CDNConfigurationError(msg)
        if not token_name or not field_delimiter or not acl_delimiter:
            msg = "token_name, field_delimiter and acl_delimiter must not be empty"
            raise CDNConfigurationError(msg)
        self._algorithm = algorithm.lower()
        self._macs = {k: KeyedHMAC(k, self._algorithm) for k in (self._key, *self._verify_keys)}
        self._token_name = token_name
        self._salt = salt.reveal() if isinstance(salt, Secret) else salt
        self._escape_early = escape_early
        self._field = field_delimiter
        self._acl = acl_delimiter

    def __repr__(self) -> str:
        return (
            f"AkamaiSigner(algorithm={self._algorithm!r}, token_name={self._token_name!r},"
            f" escape_early={self._escape_early!r}, key=Secret('********'))"
        )

    @property
    def token_name(self) -> str:
        """The query parameter or cookie name the edge reads the token from."""
        return self._token_name

    def _escape(self, text: str) -> str:
        if not self._escape_early:
            return text
        return _LOWER_ESCAPE.sub(lambda m: m.group(0).lower(), quote_plus(text))

    def _fields(
        self,
        *,
        end_time: int,
        start_time: int | None,
        ip: str | None,
        session_id: str | None,
        payload: str | None,
        acl: str | None,
    ) -> list[str]:
        if end_time <= 0:
            msg = f"end_time must be a positive epoch, got {end_time}"
            raise SigningError(msg)
        if start_time is not None and start_time <= 0:
            msg = f"start_time must be a positive epoch, got {start_time}"
            raise SigningError(msg)
        if start_time is not None and end_time <= start_time:
            msg = "end_time must be after start_time: the token would already be expired"
            raise SigningError(msg)
        fields: list[str] = []
        if ip:
            fields.append(f"ip={self._escape(ip)}")
        if start_time:
            fields.append(f"st={int(start_time)}")
        fields.append(f"exp={int(end_time)}")
        if acl is not None:
            fields.append(f"acl={acl}")
        if session_id:
            fields.append(f"id={self._escape(session_id)}")
        if payload:
            fields.append(f"data={self._escape(payload)}")
        for field in fields:
            if self._field in field.partition("=")[2]:
                msg = (
                    f"a token field contains the field delimiter {self._field!r}; the edge "
                    "would split it there (escape_early does not encode '~'): choose another "
                    "field_delimiter or remove it from the value"
                )
                raise SigningError(msg)
        return fields

    def _hmac(self, key: bytes, fields: list[str], url: str | None) -> str:
        source = list(fields)
        if url is not None:
            source.append(f"url={self._escape(url)}")
        if self._salt:
            source.append(f"salt={self._salt}")
        message = self._field.join(source).encode("utf-8")
        return self._macs[key].hexdigest(message)

    def url_token(
        self,
        path: str,
        *,
        end_time: int,
        start_time: int | None = None,
        ip: str | None = None,
        session_id: str | None = None,
        payload: str | None = None,
    ) -> str:
        """A token valid for exactly one URL path."""
        if not path:
            msg = "a URL token needs a path"
            raise SigningError(msg)
        canonical_path(path)  # never issue a token for a path an edge would refuse
        fields = self._fields(
            end_time=end_time,
            start_time=start_time,
            ip=ip,
            session_id=session_id,
            payload=payload,
            acl=None,
        )
        return self._field.join([*fields, f"hmac={self._hmac(self._key, fields, path)}"])

    def acl_token(
        self,
        acl: str | Sequence[str],
        *,
        end_time: int,
        start_time: int | None = None,
        ip: str | None = None,
        session_id: str | None = None,
        payload: str | None = None,
    ) -> str:
        """A token valid for every path matching the ACL.

        ``*`` and ``?`` are wildcards; a list of patterns joins with the ACL delimiter.
        """
        joined = acl if isinstance(acl, str) else self._acl.join(acl)
        if not joined:
            msg = "an ACL token needs at least one ACL entry"
            raise SigningError(msg)
        fields = self._fields(
            end_time=end_time,
            start_time=start_time,
            ip=ip,
            session_id=session_id,
            payload=payload,
            acl=joined,
        )
        return self._field.join([*fields, f"hmac={self._hmac(self._key, fields, None)}"])

    def string_to_sign(
        self,
        *,
        url: str | None = None,
        acl: str | None = None,
        end_time: int,
        start_time: int | None = None,
        ip: str | None = None,
        session_id: str | None = None,
        payload: str | None = None,
    ) -> bytes:
        """The exact bytes the HMAC covers (the salt shown as ``<salt>``)."""
        fields = self._fields(
            end_time=end_time,
            start_time=start_time,
            ip=ip,
            session_id=session_id,
            payload=payload,
            acl=acl,
        )
        if url is not None:
            fields.append(f"url={self._escape(url)}")
        if self._salt:
            fields.append("salt=<salt>")
        return self._field.join(fields).encode("utf-8")

    def _append(self, url: str, token: str) -> str:
        return f"{url}{'&' if '?' in url else '?'}{self._token_name}={quote(token, safe=_ACL_SAFE)}"

    def sign_url(
        self, url: str, *, expires: int, start_time: int | None = None, ip: str | None = None
    ) -> str:
        """``url`` with a URL token for its path as the ``token_name`` query parameter."""
        url = normalize_url(url)
        _, path, _ = split_url(url)
        refuse_reserved(url, frozenset({self._token_name}), "Akamai")
        return self._append(
            url, self.url_token(path, end_time=expires, start_time=start_time, ip=ip)
        )

    def scoped(self, prefix_url: str, *, expires: int) -> Callable[[str], str]:
        """One ACL token (``/dir/*``) appended to every URL under ``prefix_url`` (HLS).

        The prefix names a folder: ``…/hls/1`` and ``…/hls/1/`` both give the ACL
        ``/hls/1/*``, which never covers ``/hls/10/``.
        """
        origin, prefix_path, _ = split_url(normalize_url(prefix_url))
        scope = canonical_path(prefix_path)
        if any(c in prefix_path for c in ("*", "?", self._acl, self._field)):
            msg = (
                f"the folder {prefix_path!r} contains a wildcard, the ACL delimiter"
                f" {self._acl!r} or the field delimiter {self._field!r}: an ACL cannot"
                " name it exactly"
            )
            raise SigningError(msg)
        acl = prefix_path.rstrip("/") + "/*"
        token = self.acl_token(acl, end_time=expires)

        folder = origin + acl[:-1]

        def sign(url: str) -> str:
            normalized = normalize_url(url)
            if plainly_under(normalized, folder):
                return self._append(normalized, token)
            refuse_reserved(normalized, frozenset({self._token_name}), "Akamai")
            url_origin, path, _ = split_url(normalized)
            inside = canonical_path(path)
            if (
                url_origin.lower() != origin.lower()
                or len(inside.segments) <= len(scope.scope_segments())
                or not inside.within(scope)
            ):
                msg = f"{url[:80]!r} is not a file under the ACL {acl!r}"
                raise SigningError(msg)
            return self._append(normalized, token)

        return sign

    # ------------------------------------------------------------------ verification

    def verify_token(
        self,
        token: str,
        *,
        path: str,
        now: float | None = None,
        ip: str | None = None,
    ) -> Verification:
        """Verify a token (URL or ACL) for a request to ``path`` (as sent on the wire).

        The path must pass the path rule first (see :mod:`veza_cdn._paths`); ACL
        wildcards then match within one segment, except a whole last ``*`` segment.
        """
        checked = checked_path(path)
        if isinstance(checked, Verification):
            return checked
        parts = token.split(self._field)
        if not parts or not parts[-1].startswith("hmac="):
            return Verification.fail(FailureReason.MALFORMED, "the token has no hmac field")
        fields, mac = parts[:-1], parts[-1][len("hmac=") :]
        named: dict[str, str] = {}
        for field in fields:
            name, sep, value = field.partition("=")
            if not sep or name in named or name not in ("ip", "st", "exp", "acl", "id", "data"):
                return Verification.fail(FailureReason.MALFORMED, f"unexpected field {name!r}")
            named[name] = value
        if not named.get("exp", "").isdigit() or not named.get("st", "0").isdigit():
            return Verification.fail(FailureReason.MALFORMED, "exp/st are not numbers")
        expires = int(named["exp"])
        acl = named.get("acl")
        url = None if acl is not None else path
        if not any(
            constant_time_equal(mac, self._hmac(key, fields, url))
            for key in (self._key, *self._verify_keys)
        ):
            return Verification.fail(
                FailureReason.BAD_SIGNATURE, "hmac does not match", expires=expires
            )
        not_before = int(named["st"]) if "st" in named else None
        failed = check_time_window(time.time() if now is None else now, expires, not_before)
        if failed is not None:
            return failed
        if acl is not None and not any(
            _acl_matches(pattern, path) for pattern in acl.split(self._acl)
        ):
            return Verification.fail(
                FailureReason.PATH_OUT_OF_SCOPE, "the path matches no ACL entry", expires=expires
            )
        if "ip" in named and named["ip"] != self._escape(ip or ""):
            return Verification.fail(
                FailureReason.IP_MISMATCH, "the token is bound to another IP", expires=expires
            )
        return Verification.ok(expires=expires, path=checked.decoded)

    def verify(
        self, signed_url: str, *, now: float | None = None, user_ip: str | None = None
    ) -> Verification:
        """Verify a URL carrying the token in its ``token_name`` query parameter."""
        try:
            _, path, query = split_url(signed_url)
        except SigningError as exc:
            return Verification.fail(FailureReason.MALFORMED, str(exc))
        prefix = f"{self._token_name}="
        tokens = [unquote(p[len(prefix) :]) for p in query.split("&") if p.startswith(prefix)]
        if len(tokens) != 1:
            return Verification.fail(FailureReason.MALFORMED, f"expected one {self._token_name}")
        return self.verify_token(tokens[0], path=path, now=now, ip=user_ip)


def _acl_matches(pattern: str, path: str) -> bool:
    return glob_matches(pattern, path)
