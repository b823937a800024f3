"""HLS with the CDN off: the app signs playlists with veza-cdn's signer, not a copy.

The storage signs each URI the playlist names, ``URI="…"`` attributes of ``EXT-X-MAP``
and ``EXT-X-KEY`` included (issue 16, item 4): a player fetching the init segment or the
key with a bare relative URI would get a 403 from the signed-files route.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from veza_reference._playlists import StorageURLSigner, sign_stored_playlist
from veza_reference._routes_media import add_track

OBJECTS = {
    "key.bin": secrets.token_bytes(16),
    "init.mp4": b"\x00\x00\x00\x18ftypiso6" + secrets.token_bytes(32),
    "seg000.m4s": secrets.token_bytes(64),
    "seg001.m4s": secrets.token_bytes(64),
}
PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x00000000000000000000000000000001
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.0,
seg000.m4s
#EXTINF:2.0,
seg001.m4s
#EXT-X-ENDLIST
"""


@pytest.fixture(scope="module")
def cdn_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app with the CDN and the local edge off: local storage signs playback URLs."""
    from veza_reference import build_services
    from veza_reference._serve import start

    running = start(
        build_services(
            {
                "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("cdn-off")),
                "VEZA_PORT": "0",
                "VEZA_WORKERS": "false",
                "VEZA_LOCAL_EDGE": "false",
                "VEZA_FAST_PASSWORD_HASHING": "true",
            }
        )
    )
    yield running
    running.stop()


def test_every_playlist_uri_is_signed_and_fetches(cdn_off: Any, login: Any) -> None:
    services = cdn_off.services
    assert not services.cdn.is_enabled
    password = secrets.token_urlsafe(16)
    services.users.create("hls-owner", password, "creator")
    for name, data in OBJECTS.items():
        services.storage.put(
            f"hls/fmp4/{name}", io.BytesIO(data), content_type="application/octet-stream"
        )
    services.storage.put(
        "hls/fmp4/index.m3u8",
        io.BytesIO(PLAYLIST.encode()),
        content_type="application/vnd.apple.mpegurl",
    )
    services.storage.put("tracks/fmp4.wav", io.BytesIO(b"RIFF"), content_type="audio/wav")
    track_id = "fmp4-track"
    add_track(
        services,
        key="tracks/fmp4.wav",
        title="fMP4 rendition",
        owner_id="hls-owner",
        price=0,
        content_type="audio/wav",
        size=4,
        sha256=None,
        track_id=track_id,
    )
    from sqlalchemy.orm import Session

    from veza_reference._db import Track

    with Session(services.engine) as session, session.begin():
        track = session.get(Track, track_id)
        assert track is not None
        track.hls_key = "hls/fmp4/index.m3u8"

    client = login(cdn_off.url, "hls-owner", password)
    answer = client.get(f"/api/v1/tracks/{track_id}/hls")
    assert answer.status_code == 200, answer.text
    signed = answer.text
    attributes = re.findall(r'URI="([^"]*)"', signed)
    lines = [line for line in signed.splitlines() if line and not line.startswith("#")]
    assert len(attributes) == 2 and len(lines) == 2
    expected = [
        OBJECTS["key.bin"],
        OBJECTS["init.mp4"],
        OBJECTS["seg000.m4s"],
        OBJECTS["seg001.m4s"],
    ]
    for uri, data in zip(attributes + lines, expected, strict=True):
        assert uri.startswith(cdn_off.url) and "?" in uri, uri
        fetched = httpx.get(uri, timeout=15)  # anonymous: the signature is the authority
        assert fetched.status_code == 200, (uri, fetched.text)
        assert fetched.content == data
        unsigned = httpx.get(uri.split("?", 1)[0], timeout=15)
        assert unsigned.status_code in (401, 403, 404)


class _RecordingStorage:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def presign_get(self, key: str, *, expires_in: int) -> str:
        assert expires_in > 0
        self.keys.append(key)
        return f"https://files.example/{key}?sig=ok"


_NAME = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,11}\.(ts|m4s|mp4|bin|vtt)", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(_NAME, min_size=1, max_size=6),
    tags=st.lists(st.sampled_from(["EXT-X-MAP", "EXT-X-KEY", "EXT-X-PART"]), max_size=4),
    external=st.booleans(),
)
def test_property_no_relative_uri_survives(
    names: list[str], tags: list[str], external: bool
) -> None:
    """Whatever mix of attribute URIs and segment lines: each relative one is signed,
    resolved to its key under the playlist's directory; other hosts' URIs are untouched."""
    lines = ["#EXTM3U"]
    attribute_names = names[: len(tags)]
    for tag, name in zip(tags, attribute_names, strict=False):
        extra = ",METHOD=AES-128" if tag == "EXT-X-KEY" else ""
        lines.append(f'#{tag}:URI="{name}"{extra}')
    for name in names:
        lines += ["#EXTINF:2.0,", name]
    if external:
        lines += ["#EXTINF:2.0,", "https://other.example/ad.ts"]
    storage = _RecordingStorage()
    signed = sign_stored_playlist(
        "\n".join(lines) + "\n", playlist_key="hls/t 1/index.m3u8", storage=storage
    )
    uris = re.findall(r'URI="([^"]*)"', signed) + [
        line for line in signed.splitlines() if line and not line.startswith("#")
    ]
    for uri in uris:
        assert uri.startswith(("https://files.example/hls/t 1/", "https://other.example/"))
    assert set(storage.keys) == {f"hls/t 1/{name}" for name in [*attribute_names, *names]}


def test_the_storage_signer_refuses_urls_it_did_not_resolve() -> None:
    from veza_cdn import SigningError

    signer = StorageURLSigner(_RecordingStorage())
    for url in ("https://other.example/x.ts", "https://storage.invalid/"):
        with pytest.raises(SigningError):
            signer.sign_url(url, expires=2**31)


def test_a_playlist_uri_outside_its_folder_is_refused() -> None:
    from veza_cdn import SigningError

    storage = _RecordingStorage()
    for uri in ("../other/a.wav", "/tracks/secret.wav", "../../tracks/x.wav"):
        with pytest.raises(SigningError):
            sign_stored_playlist(
                f"#EXTM3U\n#EXTINF:2.0,\n{uri}\n", playlist_key="hls/t1/index.m3u8", storage=storage
            )
    assert storage.keys == []
