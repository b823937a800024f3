"""veza-cdn signing cost beside the primitive floor and the vendors' own code, in one run.

Run: ``nox -s bench -- cdn`` (or ``python bench/cdn.py`` where veza-cdn[r2,test] is
installed). Prints one table; every row is timed with the same ``timeit`` settings.

Targets (issue #3): HMAC schemes within 2x of the floor (the bare HMAC/hash plus base64
of the same bytes) and faster than akamai-edgeauth; an HLS playlist of 1,000 segments on
CloudFront at least 100x faster than signing each segment with botocore; a repeated
CloudFront URL inside one expiry window at least 50x faster than a cold one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import platform
import sys
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from veza_cdn import (
    AkamaiSigner,
    BunnySigner,
    CloudflareHMACSigner,
    CloudFrontSigner,
    GoogleCDNSigner,
    sign_playlist,
)

EXPIRES = 2_000_000_000
URL = "https://zone.b-cdn.net/tracks/8f3a/9c1e2d7b4a6f.mp3"
PATH = "/tracks/8f3a/9c1e2d7b4a6f.mp3"
KEY = b"bunny-security-key-0123456789"


def per_call(fn: Callable[[], object], *, number: int = 0, repeat: int = 5) -> float:
    """Best-of-``repeat`` seconds per call."""
    timer = timeit.Timer(fn)
    if not number:
        number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def edgeauth_class() -> type:
    before = os.environ.get("TZ")
    from akamai.edgeauth import EdgeAuth

    # akamai-edgeauth sets TZ=GMT for the whole process at import; undo it
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()
    return EdgeAuth


def main() -> None:
    rows: list[tuple[str, float, str, float, str, str]] = []

    def row(
        name: str, ours: float, against: str, theirs: float, target: float | None = None
    ) -> None:
        ratio = ours / theirs
        verdict = (
            "" if target is None else f"<= {target:g}x {'met' if ratio <= target else 'MISSED'}"
        )
        rows.append((name, ours, against, theirs, f"{ratio:.3f}x", verdict))

    # ---- Bunny HS256 --------------------------------------------------------------
    bunny = BunnySigner(KEY.decode())
    message = f"{PATH}{EXPIRES}".encode()
    floor = per_call(lambda: base64.urlsafe_b64encode(hmac.digest(KEY, message, "sha256")))
    row(
        "bunny hs256 sign_url",
        per_call(lambda: bunny.sign_url(URL, expires=EXPIRES)),
        "floor: HMAC-SHA256 + base64",
        floor,
        2,
    )
    legacy = BunnySigner(KEY.decode(), scheme="sha256")
    floor_sha = per_call(lambda: base64.urlsafe_b64encode(hashlib.sha256(KEY + message).digest()))
    row(
        "bunny sha256 sign_url",
        per_call(lambda: legacy.sign_url(URL, expires=EXPIRES)),
        "floor: SHA-256 + base64",
        floor_sha,
    )

    # ---- Google ---------------------------------------------------------------------
    google = GoogleCDNSigner("k", "nZtRohdNF9m3cKM24IcK4w==")
    gkey = base64.urlsafe_b64decode("nZtRohdNF9m3cKM24IcK4w==")
    gmsg = f"{URL}?Expires={EXPIRES}&KeyName=k".encode()
    row(
        "google sign_url",
        per_call(lambda: google.sign_url(URL, expires=EXPIRES)),
        "floor: HMAC-SHA1 + base64",
        per_call(lambda: base64.urlsafe_b64encode(hmac.digest(gkey, gmsg, "sha1"))),
        2,
    )

    # ---- Cloudflare -----------------------------------------------------------------
    cloudflare = CloudflareHMACSigner("secret")
    cmsg = f"{PATH}{EXPIRES}".encode()
    row(
        "cloudflare sign_url",
        per_call(lambda: cloudflare.sign_url(URL, expires=EXPIRES)),
        "floor: HMAC-SHA256 + base64",
        per_call(lambda: base64.b64encode(hmac.digest(b"secret", cmsg, "sha256"))),
        2,
    )

    # ---- Akamai ---------------------------------------------------------------------
    akamai = AkamaiSigner("0123456789abcdef0123456789abcdef")
    akey = bytes.fromhex("0123456789abcdef0123456789abcdef")
    amsg = f"exp={EXPIRES}~url={PATH}".encode()
    ours_akamai = per_call(lambda: akamai.url_token(PATH, end_time=EXPIRES))
    row(
        "akamai url_token",
        ours_akamai,
        "floor: HMAC-SHA256 hex",
        per_call(lambda: hmac.new(akey, amsg, "sha256").hexdigest()),
        2,
    )
    vendor = edgeauth_class()(key="0123456789abcdef0123456789abcdef", end_time=EXPIRES)
    row(
        "akamai url_token",
        ours_akamai,
        "akamai-edgeauth generate_url_token",
        per_call(lambda: vendor.generate_url_token(PATH)),
        1,
    )

    # ---- CloudFront -----------------------------------------------------------------
    from botocore.signers import CloudFrontSigner as BotocoreSigner

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    botocore = BotocoreSigner("K1", lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
    expiry = datetime.fromtimestamp(EXPIRES, tz=UTC)
    cf_url = "https://d1.cloudfront.net/tracks/8f3a/9c1e2d7b4a6f.mp3"
    boto_one = per_call(
        lambda: botocore.generate_presigned_url(cf_url, date_less_than=expiry), number=200
    )
    cold = CloudFrontSigner("K1", key, cache_size=0)
    cold_one = per_call(lambda: cold.sign_url(cf_url, expires=EXPIRES), number=200)
    row("cloudfront sign_url (cold, RSA)", cold_one, "botocore CloudFrontSigner", boto_one)
    warm = CloudFrontSigner("K1", key)
    warm.sign_url(cf_url, expires=EXPIRES)
    warm_one = per_call(lambda: warm.sign_url(cf_url, expires=EXPIRES))
    row("cloudfront sign_url (same window)", warm_one, "cloudfront cold", cold_one, 1 / 50)

    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n" + "".join(
        f"#EXTINF:4.0,\nseg-{i:05d}.ts\n" for i in range(1000)
    )
    base = "https://d1.cloudfront.net/hls/track-1/"
    hls_signer = CloudFrontSigner("K1", key, cache_size=0)
    ours_hls = per_call(
        lambda: sign_playlist(
            playlist, playlist_url=base + "index.m3u8", signer=hls_signer, expires=EXPIRES
        ),
        number=5,
    )

    def botocore_each() -> None:
        for i in range(1000):
            botocore.generate_presigned_url(f"{base}seg-{i:05d}.ts", date_less_than=expiry)

    row(
        "HLS playlist, 1000 segments (cloudfront)",
        ours_hls,
        "botocore, each segment",
        per_call(botocore_each, number=1, repeat=3),
        1 / 100,
    )

    # ---- R2 (boto3 underneath; presigning is local, no request is sent) -------------
    import boto3
    from botocore.config import Config

    from veza_cdn import R2Presigner

    endpoint = "https://acct.r2.cloudflarestorage.com"
    r2 = R2Presigner(
        account_id="acct",
        access_key_id="AKID",
        secret_access_key="secret",
        bucket="media",
        endpoint_url=endpoint,
    )
    raw = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
        region_name="auto",
        config=Config(signature_version="s3v4"),
    )
    params = {"Bucket": "media", "Key": "tracks/a.mp3"}
    row(
        "r2 presign_get",
        per_call(lambda: r2.presign_get("tracks/a.mp3", expires_in=600)),
        "boto3 generate_presigned_url",
        per_call(lambda: raw.generate_presigned_url("get_object", Params=params, ExpiresIn=600)),
    )

    print(
        f"# veza-cdn benchmark: {platform.python_implementation()} {sys.version.split()[0]},"
        f" {platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'operation':41} {'veza':>11}  {'against':36} {'theirs':>12} {'veza/theirs':>11}  target"
    )
    for name, ours, against, theirs, ratio, verdict in rows:
        print(
            f"{name:41} {ours * 1e6:>9.2f}µs  {against:36} {theirs * 1e6:>10.2f}µs"
            f" {ratio:>11}  {verdict}"
        )


if __name__ == "__main__":
    main()
