r"""The one path rule every verifier applies, and whatever serves what a verifier accepted.

An edge that checks a token against one spelling of a path and then fetches another
(``/hls/1/../../tracks/x`` checked as a string under ``/hls/1``, fetched as
``/tracks/x``) serves files the token never covered. The cure is not a better
normaliser: two normalisers (ours, the origin's, a proxy's in between) never agree on
every input. So veza-cdn **refuses** instead of normalising:

1. The raw path (as it travels on the wire) must start with ``/`` and its ``%`` escapes
   must be well formed. Encoded dots, slashes and backslashes (``%2e``, ``%2f``,
   ``%5c``, any case) are refused: no client has a reason to send them.
2. The path is percent-decoded **once**, as UTF-8 (invalid UTF-8, such as the overlong
   ``%c0%ae``, is refused). A decoded path that still contains a ``%XX`` escape
   (double encoding, ``%252e``) is refused too, so a second decoder further down cannot
   see a different path.
3. In the decoded path: no control character (Unicode ``Cc``: C0, DEL, C1), no
   backslash, no empty segment (``//``; a single trailing ``/`` naming a folder is
   allowed), no dot segment (``.``, ``..``, also with a ``;`` parameter such as ``..;``,
   and look-alikes whose NFKC form is a dot segment, such as two U+FF0E), and
   no character whose NFKC form is a slash or a backslash (U+FF0F, U+FF3C).

What passes is a :class:`CanonicalPath`: its decoded segments are what a scope is
compared with, and what an edge must serve. Scopes match **whole segments**:
``/hls/1`` and ``/hls/1/`` both mean the folder ``hls/1``, which contains
``/hls/1/a.ts`` but not ``/hls/10/a.ts``. Wildcard patterns (Akamai ACLs, CloudFront
policy resources) follow the same rule: ``*`` and ``?`` stay inside one segment, except
a ``*`` that is a whole last segment (``/hls/1/*``), which covers the folder's subtree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

import attrs

from veza_cdn._encoding import split_url
from veza_cdn._errors import SigningError
from veza_cdn._verification import FailureReason, Verification

_ENCODED_SEPARATOR = re.compile(r"%(?:2[eEfF]|5[cC])")
_MEMO_LENGTH = 1024
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# printable ASCII without '%' and '\\': most paths, checked segment by segment only
_PLAIN = re.compile(r"[\x20-\x24\x26-\x5b\x5d-\x7e]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc exactly
# controls, lone surrogates, '\\' and characters some decoders or file systems read as one
_BAD_CHAR = re.compile(
    r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff\u2215\u2044\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c]"
)
# what stays literal when a decoded path is written back on the wire
_PATH_SAFE = "/!$&'()*+,;=:@~-._"


class UnsafePathError(SigningError):
    """A path breaks veza-cdn's path rule (dot segment, encoded separator, control, ...).

    Signers raise it (a :class:`SigningError`: such a URL is never issued); verifiers
    turn it into a failed ``Verification`` with ``FailureReason.UNSAFE_PATH``.

    Attributes:
        detail: What is wrong, naming the offending part (never a secret).
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@attrs.frozen
class CanonicalPath:
    """A path that passed the rule, in the forms callers need.

    Attributes:
        decoded: The path decoded once (``/música/a b.mp3``): what a scope compares and
            what an edge serves.
        segments: The decoded segments without the leading empty one; a trailing ``/``
            leaves a final ``""`` (a folder request).
    """

    decoded: str
    segments: tuple[str, ...]

    @property
    def key(self) -> str:
        """The object key an edge fetches: the decoded path without its leading ``/``."""
        return self.decoded[1:]

    @property
    def encoded(self) -> str:
        """The canonical wire form: each segment percent-encoded from its UTF-8 bytes."""
        return quote(self.decoded, safe=_PATH_SAFE)

    def scope_segments(self) -> tuple[str, ...]:
        """The segments of this path read as a folder scope (a trailing ``/`` ignored)."""
        if self.segments and not self.segments[-1]:
            return self.segments[:-1]
        return self.segments

    def within(self, scope: CanonicalPath) -> bool:
        """Whether this path is the folder ``scope`` or inside it, by whole segments."""
        folder = scope.scope_segments()
        return self.segments[: len(folder)] == folder


def _check_decoded(decoded: str, shown: str) -> tuple[str, ...]:
    if not decoded.startswith("/"):
        msg = f"the path must start with '/': {shown!r}"
        raise UnsafePathError(msg)
    if _PLAIN.fullmatch(decoded) is None:  # the common case skips the character checks
        bad = _BAD_CHAR.search(decoded)
        if bad is not None:
            char = bad.group(0)
            kind = "control character" if _CONTROL.match(char) else "backslash or look-alike"
            msg = f"{kind} U+{ord(char):04X} in the path {shown!r}"
            raise UnsafePathError(msg)
        if _ESCAPE.search(decoded):
            msg = f"double-encoded escape (a %XX left after decoding once) in the path {shown!r}"
            raise UnsafePathError(msg)
    segments = tuple(decoded[1:].split("/"))
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if not segment:
            if index != last:
                msg = f"empty segment ('//') in the path {shown!r}"
                raise UnsafePathError(msg)
            continue
        bare = segment.split(";", 1)[0]
        if bare in (".", ".."):
            msg = f"dot segment {segment!r} in the path {shown!r}: refused, never resolved"
            raise UnsafePathError(msg)
        if not segment.isascii():
            folded = unicodedata.normalize("NFKC", segment)
            if folded.split(";", 1)[0] in (".", "..") or "/" in folded or "\\" in folded:
                msg = f"segment {segment!r} folds (NFKC) to a dot segment or a slash in {shown!r}"
                raise UnsafePathError(msg)
    return segments


def canonical_path(raw: str) -> CanonicalPath:
    """Apply the rule to a path as received on the wire (percent-encoded).

    Results for paths up to 1 KiB are memoised (a bounded LRU of a pure function):
    signers and edges see the same segment paths again and again.

    Raises:
        UnsafePathError: The path breaks the rule; ``detail`` says how.
    """
    if len(raw) <= _MEMO_LENGTH:
        return _canonical_memo(raw)
    return _canonical(raw)


@lru_cache(maxsize=8192)
def _canonical_memo(raw: str) -> CanonicalPath:
    return _canonical(raw)


def _canonical(raw: str) -> CanonicalPath:
    shown = raw[:120]
    if not raw.startswith("/"):
        msg = f"the path must start with '/': {shown!r}"
        raise UnsafePathError(msg)
    if "%" in raw:
        if _BAD_ESCAPE.search(raw):
            msg = f"a '%' that starts no %XX escape in the path {shown!r}"
            raise UnsafePathError(msg)
        if _ENCODED_SEPARATOR.search(raw):
            msg = f"encoded dot, slash or backslash (%2e, %2f, %5c) in the path {shown!r}"
            raise UnsafePathError(msg)
        try:
            decoded = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            msg = f"the path does not decode to UTF-8: {shown!r}"
            raise UnsafePathError(msg) from None
    else:
        decoded = raw
    return CanonicalPath(decoded, _check_decoded(decoded, shown))


def canonical_decoded_path(decoded: str) -> CanonicalPath:
    """Apply the rule to a path that is already decoded (a ``token_path``, an object key).

    Raises:
        UnsafePathError: The path breaks the rule.
    """
    if len(decoded) <= _MEMO_LENGTH:
        return _decoded_memo(decoded)
    return CanonicalPath(decoded, _check_decoded(decoded, decoded[:120]))


@lru_cache(maxsize=1024)
def _decoded_memo(decoded: str) -> CanonicalPath:
    return CanonicalPath(decoded, _check_decoded(decoded, decoded[:120]))


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = len(pattern) - 1
    for index, char in enumerate(pattern):
        if char == "*":
            whole_last_segment = index == last and (index == 0 or pattern[index - 1] == "/")
            parts.append(".*" if whole_last_segment else "[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(pattern: str, text: str) -> bool:
    """Wildcard match by whole segments: ``*``/``?`` never cross a ``/``.

    The one exception is a ``*`` that is the pattern's whole last segment (``/dir/*``,
    or ``*`` alone), which matches everything below: that is how a folder is granted.
    ``/hls/1*`` therefore admits ``/hls/10`` but never ``/hls/10/a.ts``.
    """
    return _glob_regex(pattern).fullmatch(text) is not None


def checked_path(raw: str, *, expires: int | None = None) -> CanonicalPath | Verification:
    """:func:`canonical_path` for verifiers: the path, or the typed refusal to return."""
    try:
        return canonical_path(raw)
    except UnsafePathError as exc:
        return Verification.fail(FailureReason.UNSAFE_PATH, exc.detail, expires=expires)


def prefix_scope(prefix_url: str) -> tuple[str, CanonicalPath]:
    """A URL prefix read as a folder scope: ``(origin, folder)``.

    A prefix is a folder on one origin, so it may not carry a query or a fragment.

    Raises:
        SigningError: Not an absolute http(s) URL, or it has a query.
        UnsafePathError: Its path breaks the path rule.
    """
    origin, path, query = split_url(prefix_url)
    if query or "?" in prefix_url or "#" in prefix_url:
        msg = f"a URL prefix names a folder and carries no query: {prefix_url[:80]!r}"
        raise SigningError(msg)
    return origin.lower(), canonical_path(path)


def url_within_prefix(prefix_url: str, origin: str, path: CanonicalPath) -> bool:
    """Whether a request (``origin``, checked ``path``) lies under ``prefix_url``."""
    try:
        prefix_origin, folder = prefix_scope(prefix_url)
    except SigningError:
        return False
    return prefix_origin == origin.lower() and path.within(folder)


# relative names made of unreserved characters, no segment starting with "." (no dot
# segment, no empty segment, no escape): what almost every HLS playlist URI is
_SIMPLE_TAIL = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*")


def plainly_under(url: str, folder_url: str) -> bool:
    """The scope check's fast path: ``folder_url`` (ending in ``/``) plus a plain name.

    Such a URL is safe and strictly inside the folder. ``False`` means "run the full
    check", never "refuse".
    """
    return url.startswith(folder_url) and _SIMPLE_TAIL.fullmatch(url, len(folder_url)) is not None
