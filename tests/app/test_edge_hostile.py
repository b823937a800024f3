"""The reference app's local edge with a demo track's HLS token: nothing escapes its folder.

Issue 12, item 1: with the HLS token of ``demo-1``, ``/hls/demo-1/../../tracks/demo-2.wav``
(and ``%2e%2e/``, ``..%2f``, ...) returned the other track's whole file. Here the whole
hostile corpus is sent byte for byte over a socket to the running edge.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from veza_cdn.testing import hostile_paths

TRACK, OTHER = "demo-1", "tracks/demo-2.wav"


def _raw_get(base: str, target: str) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        conn.sendall(request.encode("utf-8", "surrogateescape"))
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/"):
        return 999, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _folder_token(demo: Any) -> str:
    """The directory-token prefix of demo-1's HLS segments, as the app hands it out.

    The rendition is cut by the app's background job (ffmpeg): wait until it is there.
    """
    with httpx.Client(base_url=demo.url, timeout=15) as http:
        deadline = time.monotonic() + 90
        while not http.get(f"/api/v1/tracks/{TRACK}").json()["hls"]:
            assert time.monotonic() < deadline, http.get("/api/v1/hls/status").json()
            time.sleep(0.1)
        playlist = http.get(f"/api/v1/tracks/{TRACK}/hls")
    if playlist.status_code == 200:
        segment = next(line for line in playlist.text.splitlines() if "/hls/" in line)
    else:  # the route may need a login: sign as the app does for its playlists
        segment = demo.services.cdn.signer.scoped(f"{demo.edge_url}/hls/{TRACK}/", expires=2**31)(
            f"{demo.edge_url}/hls/{TRACK}/x.ts"
        )
    return segment[len(demo.edge_url) : segment.index(f"/hls/{TRACK}/")]


def test_no_hostile_path_escapes_the_hls_folder(demo: Any) -> None:
    token = _folder_token(demo)
    other = demo.services.storage.open(OTHER).read()
    before = set(demo.edge._cache)
    corpus = hostile_paths(f"/hls/{TRACK}", OTHER)
    escapes = []
    for path in corpus:
        status, body = _raw_get(demo.edge_url, f"{token}{path}")
        if 200 <= status < 300 or (other and other[:64] in body):
            escapes.append((path, status))
    assert len(corpus) >= 100
    assert escapes == []
    pulled = set(demo.edge._cache) - before
    assert all(key.startswith(f"hls/{TRACK}/") for key in pulled), pulled


def test_the_edge_serves_the_verified_path_and_nothing_else(demo: Any) -> None:
    token = _folder_token(demo)
    playlist = _raw_get(demo.edge_url, f"{token}/hls/{TRACK}/index.m3u8")
    assert playlist[0] == 200 and playlist[1].startswith(b"#EXTM3U")
    for path in (
        f"/hls/{TRACK}/../../{OTHER}",
        f"/hls/{TRACK}/%2e%2e/%2e%2e/{OTHER}",
        f"/hls/{TRACK}/..%2f..%2f{OTHER}",
        f"/hls/{TRACK}0/index.m3u8",
    ):
        status, body = _raw_get(demo.edge_url, f"{token}{path}")
        assert status == 403, (path, status, body[:80])
