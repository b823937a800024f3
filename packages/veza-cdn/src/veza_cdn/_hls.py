"""HLS and DASH: cache headers per object type, and signing every URI in a playlist.

Cache policy (the SPEC's numbers): segments and init segments are content-addressed, so
``public, max-age=86400, immutable`` is safe; VOD and live media playlists change (or
may) and get ``public, max-age=60``; LL-HLS playlists 1 second. DASH ``.mpd`` follows
playlists, ``.m4s`` segments.

Playlist signing rewrites every URI that needs authorisation: segment and variant lines
and the ``URI="…"`` attribute of any tag (``EXT-X-KEY``, ``EXT-X-MAP``, ``EXT-X-PART``,
``EXT-X-MEDIA``, ``EXT-X-I-FRAME-STREAM-INF``, ``EXT-X-PRELOAD-HINT``, ...). URIs are
resolved against the playlist's URL and written back absolute. Where the scheme can
scope one token to a directory (Bunny directory token, Akamai ACL, Google URL prefix,
CloudFront wildcard policy) the whole playlist shares one token; otherwise each URI is
signed on its own. URIs on other hosts, and non-HTTP URIs (``skd://``, ``data:``), are
left untouched.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urljoin

import attrs

from veza_cdn._encoding import split_url
from veza_cdn._errors import SigningError

_SEGMENT_EXTENSIONS = frozenset(
    {
        ".ts",
        ".m4s",
        ".mp4",
        ".m4a",
        ".m4v",
        ".aac",
        ".mp3",
        ".ac3",
        ".ec3",
        ".vtt",
        ".webvtt",
        ".cmfv",
        ".cmfa",
        ".cmft",
        ".fmp4",
        ".mp2t",
    }
)
_PLAYLIST_EXTENSIONS = frozenset({".m3u8", ".m3u", ".mpd"})
_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')
# relative references made only of unreserved characters, no segment starting with "."
_SIMPLE_RELATIVE = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*")


class PlaylistError(SigningError):
    """The text is not an HLS playlist (it must start with ``#EXTM3U``)."""


class UnknownMediaTypeError(SigningError):
    """``cache_control_for`` was asked about a file that is neither segment nor playlist."""


@attrs.frozen
class CachePolicy:
    """``Cache-Control`` values for streaming objects.

    Attributes:
        segment_max_age: Seconds segments (and init segments) are cached.
        playlist_max_age: Seconds VOD/live media playlists and ``.mpd`` are cached.
        low_latency_max_age: Seconds LL-HLS playlists are cached.
    """

    segment_max_age: int = 86400
    playlist_max_age: int = 60
    low_latency_max_age: int = attrs.field(default=1, kw_only=True)

    def header_for(self, name: str, *, low_latency: bool = False) -> str:
        """The ``Cache-Control`` header for the object called ``name`` (path or URL)."""
        base = name.split("?", 1)[0].split("#", 1)[0]
        extension = posixpath.splitext(base.lower())[1]
        if extension in _SEGMENT_EXTENSIONS:
            return f"public, max-age={self.segment_max_age}, immutable"
        if extension in _PLAYLIST_EXTENSIONS:
            age = self.low_latency_max_age if low_latency else self.playlist_max_age
            return f"public, max-age={age}"
        msg = f"{posixpath.basename(base)!r} is neither an HLS/DASH segment nor a playlist"
        raise UnknownMediaTypeError(msg)


DEFAULT_CACHE_POLICY = CachePolicy()


def cache_control_for(
    name: str, *, low_latency: bool = False, policy: CachePolicy = DEFAULT_CACHE_POLICY
) -> str:
    """The ``Cache-Control`` header for a streaming object.

    Raises:
        UnknownMediaTypeError: ``name`` is neither a segment nor a playlist.
    """
    return policy.header_for(name, low_latency=low_latency)


class URLSigner(Protocol):
    """What the playlist signer needs from a scheme's signer."""

    def sign_url(self, url: str, *, expires: int) -> str:
        """Sign one URL."""
        ...


class ScopedURLSigner(URLSigner, Protocol):
    """A signer that can also issue one token for a whole directory."""

    def scoped(self, prefix_url: str, *, expires: int) -> Callable[[str], str]:
        """A function signing any URL under ``prefix_url`` with one shared token."""
        ...


def sign_playlist(
    playlist: str,
    *,
    playlist_url: str,
    signer: URLSigner,
    expires: int,
    scope_url: str | None = None,
) -> str:
    """Return ``playlist`` with every URI that needs authorisation signed.

    Args:
        playlist: The m3u8 text (multivariant or media).
        playlist_url: Where the playlist lives on the CDN (relative URIs resolve here).
        signer: Any veza-cdn signer.
        expires: Expiry of every signature, UTC epoch seconds.
        scope_url: The directory one scoped token covers; default the playlist's own
            directory. URIs on the CDN host outside it are signed one by one.

    Raises:
        PlaylistError: The text does not start with ``#EXTM3U``.
        SigningError: A URI cannot be signed.
    """
    if not playlist.lstrip("\ufeff").startswith("#EXTM3U"):
        msg = "not an HLS playlist: the first line must be #EXTM3U"
        raise PlaylistError(msg)
    origin, _, _ = split_url(playlist_url)
    scope = scope_url or urljoin(playlist_url, "./")
    scoped_sign: Callable[[str], str] | None = None
    scoped_factory = getattr(signer, "scoped", None)
    if scoped_factory is not None:
        try:
            scoped_sign = scoped_factory(scope, expires=expires)
        except SigningError:  # e.g. Bunny's md5 form has no directory tokens
            scoped_sign = None
    base_dir = playlist_url.split("?", 1)[0].rsplit("/", 1)[0] + "/"
    cache: dict[str, str] = {}

    def sign_uri(uri: str) -> str:
        uri = uri.strip()
        signed = cache.get(uri)
        if signed is not None:
            return signed
        # Most playlist URIs are plain relative names, on the playlist's origin by
        # construction: join them by concatenation. Anything with a scheme, a root,
        # dot segments or a query goes through urljoin and the origin check.
        if _SIMPLE_RELATIVE.fullmatch(uri):
            absolute = base_dir + uri
        else:
            absolute = urljoin(playlist_url, uri)
            if not absolute.startswith(("http://", "https://")) or split_url(absolute)[0] != origin:
                cache[uri] = uri
                return uri
        if scoped_sign is not None and absolute.startswith(scope):
            signed = scoped_sign(absolute)
        else:
            signed = signer.sign_url(absolute, expires=expires)
        cache[uri] = signed
        return signed

    out: list[str] = []
    for line in playlist.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        stripped = body.strip().lstrip("\ufeff")
        if not stripped:
            out.append(line)
        elif stripped.startswith("#"):
            if stripped.startswith("#EXT") and 'URI="' in stripped:
                body = _URI_ATTRIBUTE.sub(lambda m: f'URI="{sign_uri(m.group(1))}"', body)
            out.append(body + ending)
        else:
            out.append(sign_uri(stripped) + ending)
    return "".join(out)
