"""HLS/DASH cache headers and playlist signing for every scheme."""

import re

import pytest

from veza_cdn import (
    AkamaiSigner,
    BunnySigner,
    CachePolicy,
    CloudflareHMACSigner,
    CloudFrontSigner,
    GoogleCDNSigner,
    PlaylistError,
    UnknownMediaTypeError,
    cache_control_for,
    sign_playlist,
)

CDN = "https://cdn.example.com"
PLAYLIST_URL = f"{CDN}/hls/track-1/index.m3u8"
NOW = 1_700_000_000
EXP = NOW + 3600

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-KEY:METHOD=AES-128,URI="keys/k1.key",IV=0x1
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.0,
seg-00001.m4s
#EXT-X-PART:DURATION=1.0,URI="seg-00002.part1.m4s"
#EXTINF:4.0,
/hls/track-1/seg-00002.m4s
#EXTINF:4.0,
https://other-host.example/ad.ts
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://fairplay-key"
#EXTINF:4.0,
/hls/shared/bumper.m4s
#EXT-X-ENDLIST
"""


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("seg-00001.ts", "public, max-age=86400, immutable"),
        ("hls/init.mp4", "public, max-age=86400, immutable"),
        ("chunk-1.m4s?token=x", "public, max-age=86400, immutable"),
        ("index.m3u8", "public, max-age=60"),
        ("manifest.mpd", "public, max-age=60"),
        ("MASTER.M3U8", "public, max-age=60"),
    ],
)
def test_cache_control(name, header):
    assert cache_control_for(name) == header


def test_low_latency_and_custom_policy():
    assert cache_control_for("live.m3u8", low_latency=True) == "public, max-age=1"
    assert CachePolicy(playlist_max_age=10).header_for("a.m3u8") == "public, max-age=10"


def test_unknown_media_type():
    with pytest.raises(UnknownMediaTypeError):
        cache_control_for("cover.jpg")


def _uris(text: str) -> list[str]:
    found = re.findall(r'URI="([^"]*)"', text)
    found += [line for line in text.splitlines() if line and not line.startswith("#")]
    return found


def _signers(rsa_key):
    return {
        "bunny": (BunnySigner("k"), lambda s, u: s.verify(u, now=NOW)),
        "cloudfront": (CloudFrontSigner("KID", rsa_key), lambda s, u: s.verify(u, now=NOW)),
        "google": (
            GoogleCDNSigner("g", "nZtRohdNF9m3cKM24IcK4w=="),
            lambda s, u: s.verify(u, now=NOW),
        ),
        "akamai": (AkamaiSigner("abcd"), lambda s, u: s.verify(u, now=NOW)),
        "cloudflare": (CloudflareHMACSigner("s", max_age=3600), lambda s, u: s.verify(u, now=NOW)),
        "bunny-md5": (BunnySigner("k", scheme="md5"), lambda s, u: s.verify(u, now=NOW)),
    }


@pytest.mark.parametrize(
    "scheme", ["bunny", "cloudfront", "google", "akamai", "cloudflare", "bunny-md5"]
)
def test_every_uri_on_the_cdn_is_signed_and_verifies(rsa_key, scheme):
    signer, verify = _signers(rsa_key)[scheme]
    signed = sign_playlist(MEDIA, playlist_url=PLAYLIST_URL, signer=signer, expires=EXP)
    uris = _uris(signed)
    on_cdn = [u for u in uris if u.startswith(CDN)]
    assert len(on_cdn) == 6  # key, map, part, two segments, the bumper outside the scope
    for uri in on_cdn:
        assert verify(signer, uri).valid, uri
    assert "https://other-host.example/ad.ts" in uris
    assert 'URI="skd://fairplay-key"' in signed
    assert signed.count("\n") == MEDIA.count("\n")


def test_cloudfront_signs_the_whole_directory_with_one_signature(rsa_key):
    calls = []
    signer = CloudFrontSigner("KID", rsa_key, cache_size=0)
    original = signer._sign
    signer._sign = lambda message: calls.append(message) or original(message)
    segments = "".join(f"#EXTINF:4.0,\nseg-{i:05d}.ts\n" for i in range(1000))
    signed = sign_playlist(
        "#EXTM3U\n" + segments, playlist_url=PLAYLIST_URL, signer=signer, expires=EXP
    )
    assert len(calls) == 1
    assert len({u.split("?", 1)[1] for u in _uris(signed)}) == 1


@pytest.mark.parametrize("scheme", ["bunny", "google", "akamai"])
def test_scoped_schemes_share_one_token_across_the_directory(rsa_key, scheme):
    signer, _ = _signers(rsa_key)[scheme]
    text = "#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:4,\nsub/b.ts\n"
    signed = sign_playlist(text, playlist_url=PLAYLIST_URL, signer=signer, expires=EXP)
    a, b = _uris(signed)
    if scheme == "bunny":
        assert a.split("/hls/")[0] == b.split("/hls/")[0]
    else:
        assert a.split("?", 1)[1] == b.split("?", 1)[1]


def test_bunny_directory_form_lets_relative_uris_inherit_the_token():
    signer = BunnySigner("k")
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n"
    signed = sign_playlist(master, playlist_url=PLAYLIST_URL, signer=signer, expires=EXP)
    variant = _uris(signed)[0]
    # a segment referenced relatively from the variant resolves under the same token
    segment = variant.rsplit("/", 1)[0] + "/seg-1.ts"
    assert signer.verify(segment, now=NOW).valid


def test_crlf_and_bom_are_preserved():
    text = "\ufeff#EXTM3U\r\n#EXTINF:4,\r\na.ts\r\n"
    signed = sign_playlist(text, playlist_url=PLAYLIST_URL, signer=BunnySigner("k"), expires=EXP)
    assert signed.startswith("\ufeff#EXTM3U\r\n")
    assert signed.endswith(".ts\r\n")


def test_not_a_playlist():
    with pytest.raises(PlaylistError):
        sign_playlist("<html>", playlist_url=PLAYLIST_URL, signer=BunnySigner("k"), expires=EXP)
