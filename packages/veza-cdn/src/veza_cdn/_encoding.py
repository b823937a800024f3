r"""URL normalisation and the encodings the CDN schemes use.

The one normalisation rule veza-cdn applies everywhere: **we sign exactly the bytes the
client will send**. Before signing, any character RFC 3986 does not allow in a URL (raw
spaces, non-ASCII, controls, ``"<>\^`{|}``) is percent-encoded from its UTF-8 bytes with
upper-case hex; valid ``%XX`` escapes already present are kept as they are, and a ``%``
that does not start one becomes ``%25``. The signed URL we return contains the same
bytes we signed. Vendors' SDKs disagree here (some sign the decoded path, some the raw
one); for URLs that are already plain ASCII, all of them, and we, agree.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import quote, unquote_plus

from veza_cdn._errors import SigningError

# Everything RFC 3986 allows in a URI (unreserved, reserved and '%').
_NEEDS_ENCODING = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})")


def _encode_match(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode("utf-8"))


def normalize_url(url: str) -> str:
    """Percent-encode what RFC 3986 does not allow; keep everything else byte for byte.

    Raises:
        SigningError: The URL has a fragment (never sent to a server, so never signable).
    """
    if _NEEDS_ENCODING.search(url) is not None:
        url = _NEEDS_ENCODING.sub(_encode_match, url)
    if "#" in url:
        msg = "a URL to sign must not contain a fragment ('#...'): browsers never send it"
        raise SigningError(msg)
    return url


def split_url(url: str) -> tuple[str, str, str]:
    """Split an absolute http(s) URL into ``(origin, path, query)`` without decoding.

    ``origin`` is ``scheme://host[:port]``, ``path`` starts with ``/`` (``/`` when empty)
    and ``query`` excludes the ``?``. This is a deliberately small parser: signing is on
    the hot path and must not re-interpret the bytes it signs.

    Raises:
        SigningError: Not an absolute http or https URL with a host.
    """
    scheme_end = url.find("://")
    scheme = url[:scheme_end].lower() if scheme_end > 0 else ""
    if scheme not in ("http", "https"):
        msg = f"expected an absolute http(s) URL, got {url[:60]!r}"
        raise SigningError(msg)
    rest_start = scheme_end + 3
    path_start = url.find("/", rest_start)
    query_start = url.find("?", rest_start)
    if path_start == -1 or (query_start != -1 and query_start < path_start):
        authority_end = query_start if query_start != -1 else len(url)
        origin, path = url[:authority_end], "/"
    else:
        origin = url[:path_start]
        path = url[path_start:query_start] if query_start != -1 else url[path_start:]
    query = url[query_start + 1 :] if query_start != -1 else ""
    if len(origin) <= rest_start:
        msg = f"the URL has no host: {url[:60]!r}"
        raise SigningError(msg)
    return origin, path, query


def parse_query(query: str) -> list[tuple[str, str]]:
    """Decode ``a=1&b=2`` into pairs (``+`` is a space), keeping order and blanks."""
    pairs: list[tuple[str, str]] = []
    if not query:
        return pairs
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def encode_component(value: str) -> str:
    """Percent-encode a query component: only RFC 3986 unreserved characters stay."""
    return quote(value, safe="")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_nopad(raw: bytes) -> str:
    """URL-safe base64 without padding (Bunny tokens)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def b64url(raw: bytes) -> str:
    """URL-safe base64 with padding kept (Google Cloud CDN)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).decode("ascii")


_CF_ENCODE = bytes.maketrans(b"+=/", b"-_~")
_CF_DECODE = bytes.maketrans(b"-_~", b"+=/")


def cloudfront_b64(raw: bytes) -> str:
    """CloudFront's base64 variant: ``+`` → ``-``, ``=`` → ``_``, ``/`` → ``~``."""
    return binascii.b2a_base64(raw, newline=False).translate(_CF_ENCODE).decode("ascii")


def b64_query_component(raw: bytes) -> str:
    """Standard base64 of ``raw``, percent-encoded for a query value (``+``, ``/``, ``=``)."""
    text = binascii.b2a_base64(raw, newline=False).decode("ascii")
    return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def strict_b64decode(text: str, *, alphabet: str) -> bytes | None:
    """Decode base64 and insist the text is the canonical encoding of the result.

    A lenient decoder accepts several spellings of one value (the spare bits of the
    last character), which would let an attacker alter a signature without changing
    what it decodes to. Returns ``None`` for anything non-canonical or invalid.

    Args:
        text: The encoded text.
        alphabet: ``"url"`` (padding optional), ``"url-padded"``, ``"std"`` or
            ``"cloudfront"``.
    """
    try:
        data = text.encode("ascii")
        if alphabet == "cloudfront":
            raw = base64.b64decode(data.translate(_CF_DECODE), validate=True)
            canonical = cloudfront_b64(raw)
        elif alphabet == "std":
            raw = base64.b64decode(data, validate=True)
            canonical = base64.b64encode(raw).decode("ascii")
        elif alphabet == "url":
            raw = base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
            canonical = b64url_nopad(raw)
        else:
            raw = base64.urlsafe_b64decode(data)
            canonical = b64url(raw)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    return raw if canonical == text else None


def refuse_reserved(url: str, reserved: frozenset[str], provider: str) -> None:
    """Refuse a URL whose query already uses a parameter name the token needs.

    The verifier would find two of them, or mistake the caller's for the token's: a
    URL that could never verify is refused when signing instead.

    Raises:
        SigningError: A reserved name is present (raw or decoded).
    """
    query = url.partition("?")[2]
    if not query:
        return
    raw = {part.partition("=")[0] for part in query.split("&")}
    clash = sorted(reserved & (raw | {name for name, _ in parse_query(query)}))
    if clash:
        msg = f"the URL's query uses {provider}'s reserved parameter name(s) {clash}"
        raise SigningError(msg)
