"""presign_get on both backends: SigV4 over real HTTP on S3, an HMAC app URL on local disk."""

import time
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from veza_storage import (
    LocalURLSigner,
    SignatureError,
    StorageConfigurationError,
    content_disposition,
)

NAME = "Mój utwór – ünïcode.mp3"


def test_s3_presigned_get_is_sigv4_and_downloads(s3_storage):
    s3_storage.put("tracks/a b.mp3", b"0123456789" * 10, content_type="audio/mpeg")
    url = s3_storage.presign_get(
        "tracks/a b.mp3", expires_in=600, download_filename=NAME, content_type="audio/mpeg"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert query["response-content-type"] == ["audio/mpeg"]
    full = httpx.get(url)
    assert full.status_code == 200
    assert full.content == b"0123456789" * 10
    disposition = full.headers["content-disposition"]
    assert (
        "filename*=UTF-8''M%C3%B3j%20utw%C3%B3r%20%E2%80%93%20%C3%BCn%C3%AFcode.mp3" in disposition
    )
    assert 'filename="Moj utwor _ unicode.mp3"' in disposition
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == b"0123456789"
    assert ranged.headers["content-range"] == "bytes 10-19/100"


def test_s3_refuses_expiries_sigv4_cannot_honour(s3_storage):
    with pytest.raises(StorageConfigurationError, match="7 days"):
        s3_storage.presign_get("k", expires_in=7 * 24 * 3600 + 1)


def test_local_presign_and_verify(local_storage):
    local_storage.put("tracks/a b.mp3", b"data", content_type="audio/mpeg")
    url = local_storage.presign_get("tracks/a b.mp3", expires_in=600, download_filename=NAME)
    parts = urlsplit(url)
    assert url.startswith("http://app.test/files/tracks/a%20b.mp3?")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    granted = local_storage.signer.verify(parts.path.removeprefix("/files/"), query)
    assert granted.key == "tracks/a b.mp3"
    assert granted.download_filename == NAME
    assert granted.expires_at > time.time()


def test_local_signatures_refuse_tampering_and_expiry():
    signer = LocalURLSigner("k" * 32, "/files")
    url = signer.sign("a/b.mp3", expires_in=60, content_type="audio/mpeg", now=1000)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert signer.verify("a/b.mp3", query, now=1059).key == "a/b.mp3"
    with pytest.raises(SignatureError) as expired:
        signer.verify("a/b.mp3", query, now=1060)
    assert expired.value.reason == "expired"
    for tampered_key, tampered in (
        ("a/c.mp3", query),
        ("a/b.mp3", query | {"type": "text/html"}),
        ("a/b.mp3", query | {"expires": "999999"}),
        ("a/b.mp3", query | {"dl": "x.exe"}),
    ):
        with pytest.raises(SignatureError) as bad:
            signer.verify(tampered_key, tampered, now=1001)
        assert bad.value.reason == "bad_signature"
    with pytest.raises(SignatureError) as malformed:
        signer.verify("a/b.mp3", {"expires": "x"}, now=0)
    assert malformed.value.reason == "malformed"
    with pytest.raises(SignatureError):
        LocalURLSigner("z" * 32, "/files").verify("a/b.mp3", query, now=1001)


def test_local_limits_and_configuration(tmp_path):
    signer = LocalURLSigner("k" * 32, "/files")
    with pytest.raises(StorageConfigurationError):
        signer.sign("a", expires_in=7 * 24 * 3600 + 1)
    with pytest.raises(StorageConfigurationError):
        LocalURLSigner("short", "/files")
    from veza_storage import LocalStorage

    with pytest.raises(StorageConfigurationError, match="signer"):
        LocalStorage(tmp_path).presign_get("a", expires_in=60)
    assert "k" * 32 not in repr(signer)


def test_content_disposition_fallback_is_plain_ascii():
    value = content_disposition('naïve "quoted"; evil\\name\r\n.mp3')
    fallback = value.split('filename="')[1].split('"')[0]
    assert fallback.isascii()
    assert all(c not in fallback for c in '"\\;\r\n')
    assert unquote(value.split("UTF-8''")[1]) == 'naïve "quoted"; evil\\name\r\n.mp3'
