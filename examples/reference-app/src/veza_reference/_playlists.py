"""HLS playlists signed by veza-cdn's signer in every mode, the storage's when the CDN is off.

``veza_cdn.sign_playlist`` finds every URI a playlist holds (segment lines and the
``URI="…"`` attribute of ``EXT-X-MAP``, ``EXT-X-KEY``, ``EXT-X-MEDIA``, ...), resolves it
against the playlist's URL and hands it to a signer. With the CDN off the app has no CDN
URL to resolve against, so the playlist is placed under a private pseudo-origin whose
paths are storage keys, and :class:`StorageURLSigner` turns each resolved URL back into
a key and answers the storage's presigned URL. One parser for both modes: the app keeps
no copy of its own that could miss an attribute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

from veza_cdn import SigningError, sign_playlist

# Never resolvable (RFC 6761 ``.invalid``): a URL under it can only come from the
# playlist's own relative URIs, so absolute URIs to real hosts are left untouched.
_STORAGE_ORIGIN = "https://storage.invalid"


class _Presigner(Protocol):
    def presign_get(self, key: str, *, expires_in: int) -> str: ...


class StorageURLSigner:
    """A veza-cdn ``URLSigner`` whose URLs are the storage's presigned GETs.

    Args:
        storage: Any veza-storage backend with ``presign_get`` (local or S3).
        clock: Epoch seconds now; ``expires`` is turned into the ``expires_in`` the
            storage wants.
        scope: A key prefix ending in ``/`` (the playlist's folder): a URI resolving
            outside it (``../other-track/a.wav``) is refused, as the CDN edge refuses a
            path outside a directory token. ``""`` signs any key.
    """

    def __init__(
        self, storage: _Presigner, *, clock: Callable[[], float] = time.time, scope: str = ""
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._scope = scope

    def sign_url(self, url: str, *, expires: int) -> str:
        """Presign the storage key ``url`` names under the pseudo-origin.

        Raises:
            SigningError: ``url`` is not under the pseudo-origin (a playlist URI the
                playlist signer should have left alone), or names no key.
        """
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != _STORAGE_ORIGIN or not parts.path.strip("/"):
            msg = "the storage signer only signs keys resolved from a stored playlist"
            raise SigningError(msg)
        key = unquote(parts.path.lstrip("/"))
        if not key.startswith(self._scope):
            msg = "a playlist URI resolves outside the playlist's folder"
            raise SigningError(msg)
        expires_in = max(1, int(expires - self._clock()))
        return self._storage.presign_get(key, expires_in=expires_in)


def sign_stored_playlist(
    playlist: str,
    *,
    playlist_key: str,
    storage: _Presigner,
    expires_in: int = 3600,
    clock: Callable[[], float] = time.time,
) -> str:
    """Sign every URI of the playlist stored at ``playlist_key`` with storage presigned URLs.

    Raises:
        veza_cdn.PlaylistError: The text is not an HLS playlist.
        veza_cdn.SigningError: A URI cannot be signed.
    """
    return sign_playlist(
        playlist,
        playlist_url=f"{_STORAGE_ORIGIN}/{quote(playlist_key, safe='/')}",
        signer=StorageURLSigner(storage, clock=clock, scope=playlist_key.rpartition("/")[0] + "/"),
        expires=int(clock()) + expires_in,
    )
