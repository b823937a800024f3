"""The S3 backend (AWS, MinIO, Cloudflare R2, Backblaze B2 and other S3-compatible stores).

* Objects up to ``multipart_threshold`` go up in one ``PutObject``; larger ones as a
  multipart upload whose parts start at ``part_size`` and double every 1,000 parts, so
  any stream fits in S3's 10,000 parts without knowing its size in advance. Memory use
  is about one part.
* Integrity: every request body carries ``x-amz-checksum-sha256`` (S3 rejects a body
  that does not match), and the whole object's SHA-256, computed while streaming, is
  stored as the ``sha256`` user metadata (for multipart objects by a server-side copy
  onto itself once the hash is known, up to 5 GiB).
* ``if_absent`` uses conditional writes (``If-None-Match: *``), atomic on the server.
* Profiles preset what differs between providers: boto3 1.36+ computes CRC checksums on
  every request by default (``when_supported``), which MinIO, R2, Backblaze and older
  gateways reject; the ``minio`` and ``r2`` profiles set ``when_required`` for requests
  and responses and use path-style addressing. Throttling (503 SlowDown) and 5xx are
  retried with backoff (botocore's standard mode, ``max_attempts``).

boto3 is imported when an :class:`S3Storage` is created (``veza-storage[s3]``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

from veza_storage._disposition import content_disposition
from veza_storage._errors import (
    ChecksumMismatchError,
    ObjectExistsError,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    StorageConfigurationError,
    StorageError,
)
from veza_storage._keys import is_reserved_name, validate_key
from veza_storage._stream import BufferedSource, ObjectReader, Seekable, Source, seekable_size
from veza_storage._types import ByteRange, ObjectInfo, validate_metadata

if TYPE_CHECKING:
    from veza_storage._capabilities import UploadStaging

Profile = Literal["aws", "minio", "r2"]
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
MAX_PARTS = 10_000
MIN_PART = 5 * 1024 * 1024
MAX_SINGLE_COPY = 5 * 1024**3
PROFILES: dict[str, dict[str, str]] = {
    "aws": {"checksums": "when_supported", "addressing": "auto", "region": "us-east-1"},
    "minio": {"checksums": "when_required", "addressing": "path", "region": "us-east-1"},
    "r2": {"checksums": "when_required", "addressing": "path", "region": "auto"},
}


def _b64_sha256(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class _Prefixed:
    """Bytes already read (the size probe), then the rest of the source."""

    def __init__(self, head: memoryview, rest: BufferedSource) -> None:
        self._head = head
        self._rest = rest

    def fill(self, buffer: memoryview) -> int:
        take = min(len(self._head), len(buffer))
        buffer[:take] = self._head[:take]
        self._head = self._head[take:]
        return take + (self._rest.fill(buffer[take:]) if take < len(buffer) else 0)


def _hash_and_rewind(stream: Source) -> str:
    """SHA-256 of a seekable file from its current position, then seek back."""
    seekable = cast("Seekable", stream)  # the caller checked (``seekable_size``)
    start = seekable.tell()
    digest = hashlib.sha256()
    source = BufferedSource(stream)
    buffer = bytearray(4 * 1024 * 1024)
    while count := source.fill(buffer):
        digest.update(memoryview(buffer)[:count])
    seekable.seek(start)
    return digest.hexdigest()


def make_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    profile: Profile = "aws",
    max_attempts: int = 8,
) -> Any:  # noqa: ANN401 - boto3 clients have no static type
    """A boto3 S3 client configured for ``profile`` (SigV4 always).

    Raises:
        StorageConfigurationError: Unknown profile, or boto3 missing.
    """
    if profile not in PROFILES:
        msg = f"unknown S3 profile {profile!r}; expected one of {', '.join(PROFILES)}"
        raise StorageConfigurationError(msg)
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        msg = "the S3 backend needs boto3: pip install 'veza-storage[s3]'"
        raise StorageConfigurationError(msg) from None
    preset = PROFILES[profile]
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": preset["addressing"]},
        retries={"mode": "standard", "max_attempts": max_attempts},
        request_checksum_calculation=preset["checksums"],
        response_checksum_validation=preset["checksums"],
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or preset["region"],
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def _code(exc: Exception) -> tuple[str, int]:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    error = response.get("Error", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status)


def _check_part_number(number: int) -> None:
    """Refuse a part past S3's limit of 10,000 per multipart upload."""
    if number > MAX_PARTS:
        msg = f"the object needs more than {MAX_PARTS:,} parts"
        raise StorageError(msg)


class S3Storage:
    """Objects in an S3 bucket, optionally under a key prefix.

    Args:
        bucket: The bucket.
        client: A ready boto3 S3 client (it must sign with SigV4); otherwise one is built
            from the settings below.
        endpoint_url: MinIO, R2 or another S3-compatible endpoint.
        region: The region (the profile's default otherwise).
        access_key_id: Credentials (boto3's default chain when omitted).
        secret_access_key: Credentials.
        profile: ``aws``, ``minio`` or ``r2`` (see the module docs).
        prefix: Prepended to every key (for example ``tracks/``).
        multipart_threshold: Objects above this size use a multipart upload.
        part_size: The first multipart part size (at least 5 MiB).
        max_attempts: Attempts per request, retries included.
    """

    def __init__(
        self,
        bucket: str,
        *,
        client: Any = None,  # noqa: ANN401 - boto3 clients have no static type
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        profile: Profile = "aws",
        prefix: str = "",
        multipart_threshold: int = 8 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        max_attempts: int = 8,
    ) -> None:
        if not bucket:
            msg = "the S3 bucket name is empty"
            raise StorageConfigurationError(msg)
        if part_size < MIN_PART:
            msg = f"part_size must be at least 5 MiB (S3's minimum), got {part_size}"
            raise StorageConfigurationError(msg)
        if prefix and (prefix.startswith("/") or not prefix.endswith("/")):
            msg = f"the key prefix must be relative and end with '/', got {prefix!r}"
            raise StorageConfigurationError(msg)
        if client is None:
            client = make_client(
                endpoint_url=endpoint_url,
                region=region,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
                profile=profile,
                max_attempts=max_attempts,
            )
        elif getattr(client.meta.config, "signature_version", None) not in (None, "s3v4"):
            msg = "the S3 client must sign with SigV4 (signature_version='s3v4')"
            raise StorageConfigurationError(msg)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.multipart_threshold = max(multipart_threshold, 1)
        self.part_size = part_size

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def full_key(self, key: str) -> str:
        """The bucket key for a storage key (prefix applied)."""
        return self.prefix + key

    def _error(self, exc: Exception, key: str) -> Exception:
        code, status = _code(exc)
        if code in ("NoSuchKey", "NotFound") or status == 404:
            return ObjectNotFoundError(f"no object has the key {key!r}")
        if code == "PreconditionFailed" or status == 412:
            return ObjectExistsError(f"an object already has the key {key!r}")
        return exc

    # ------------------------------------------------------------------ writes

    def put(
        self,
        key: str,
        stream: Source,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Upload ``stream`` (one request or multipart), verifying checksums on the way.

        A seekable file larger than the threshold is hashed first, so its SHA-256 goes
        into the upload's metadata directly; other streams get it by a server-side copy
        once the hash is known (up to 5 GiB).

        Raises:
            InvalidKeyError: Bad key.
            ObjectExistsError: ``if_absent`` and the key exists.
            ChecksumMismatchError: The file changed while it was being uploaded.
        """
        validate_key(key)
        meta = validate_metadata(metadata)
        conditional = {"IfNoneMatch": "*"} if if_absent else {}
        full = self.full_key(key)
        try:
            known = seekable_size(stream)
            if known is not None and known > self.multipart_threshold:
                expected = _hash_and_rewind(stream)
                sha256, _ = self._multipart(
                    full,
                    BufferedSource(stream),
                    content_type,
                    {**meta, "sha256": expected},
                    conditional,
                )
                self._drop_if_changed(full, key, uploaded=sha256, expected=expected)
                return self.stat(key)
            source = BufferedSource(stream)
            head = bytearray(self.multipart_threshold + 1)
            count = source.fill(head)
            if count <= self.multipart_threshold:
                body = head[:count]
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=body,
                    ContentType=content_type,
                    Metadata={**meta, "sha256": hashlib.sha256(body).hexdigest()},
                    ChecksumSHA256=_b64_sha256(body),
                    **conditional,
                )
                return self.stat(key)
            sha256, size = self._multipart(
                full, _Prefixed(memoryview(head)[:count], source), content_type, meta, conditional
            )
            if size <= MAX_SINGLE_COPY:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=full,
                    ContentType=content_type,
                    CopySource={"Bucket": self.bucket, "Key": full},
                    Metadata={**meta, "sha256": sha256},
                    MetadataDirective="REPLACE",
                )
        except ChecksumMismatchError:
            raise
        except Exception as exc:
            raise self._error(exc, key) from exc
        return self.stat(key)

    def _drop_if_changed(self, full: str, key: str, *, uploaded: str, expected: str) -> None:
        """Delete an object whose bytes are not the ones hashed before the upload.

        Raises:
            ChecksumMismatchError: The source changed while it was being uploaded.
        """
        if uploaded != expected:
            self.client.delete_object(Bucket=self.bucket, Key=full)
            msg = f"the source of {key!r} changed while it was being uploaded"
            raise ChecksumMismatchError(msg)

    def _multipart(
        self,
        full: str,
        source: BufferedSource | _Prefixed,
        content_type: str,
        meta: dict[str, str],
        conditional: dict[str, str],
    ) -> tuple[str, int]:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=full,
            ContentType=content_type,
            Metadata=meta,
            ChecksumAlgorithm="SHA256",
        )
        upload_id = upload["UploadId"]
        digest, size, parts, number, part_size = hashlib.sha256(), 0, [], 1, self.part_size
        buffer = bytearray(part_size)
        try:
            while count := source.fill(memoryview(buffer)[:part_size]):
                _check_part_number(number)  # raises; the handler below aborts the upload
                # a full part is sent from the reused buffer; only the short last part is copied
                body = buffer if count == len(buffer) else buffer[:count]
                checksum = _b64_sha256(body)
                answer = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumSHA256=checksum,
                )
                parts.append(
                    {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}
                )
                digest.update(memoryview(buffer)[:count])
                size += count
                if number % 1000 == 0:  # grow parts so any stream fits in 10,000
                    part_size *= 2
                    buffer = bytearray(part_size)
                number += 1
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **conditional,
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise
        return digest.hexdigest(), size

    def delete(self, key: str) -> None:
        """Delete the object; a missing key is not an error (S3 semantics)."""
        validate_key(key)
        self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))

    def copy(self, source_key: str, destination_key: str, *, if_absent: bool = False) -> ObjectInfo:
        """Server-side copy (multipart copy above 5 GiB); data never passes through here."""
        validate_key(destination_key)
        info = self.stat(source_key)
        if if_absent and self.exists(destination_key):
            msg = f"an object already has the key {destination_key!r}"
            raise ObjectExistsError(msg)
        try:
            self.server_side_copy(
                self.full_key(source_key),
                self.full_key(destination_key),
                size=info.size,
                if_absent=if_absent,
            )
        except Exception as exc:
            raise self._error(exc, destination_key) from exc
        return self.stat(destination_key)

    def server_side_copy(
        self,
        source: str,
        destination: str,
        *,
        size: int,
        if_absent: bool = False,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Copy bucket keys server-side (used by ``copy`` and resumable uploads)."""
        conditional = {"IfNoneMatch": "*"} if if_absent else {}
        replace: dict[str, Any] = {}
        if metadata is not None:
            replace = {"Metadata": dict(metadata), "MetadataDirective": "REPLACE"}
            if content_type:
                replace["ContentType"] = content_type
        source_ref = {"Bucket": self.bucket, "Key": source}
        if size <= MAX_SINGLE_COPY:
            self.client.copy_object(
                Bucket=self.bucket, Key=destination, CopySource=source_ref, **replace, **conditional
            )
            return
        head = self.client.head_object(Bucket=self.bucket, Key=source)
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=destination,
            ContentType=content_type or head.get("ContentType", "application/octet-stream"),
            Metadata=dict(metadata) if metadata is not None else head.get("Metadata", {}),
        )
        step = max(512 * 1024 * 1024, -(-size // MAX_PARTS))
        parts = []
        try:
            for number, offset in enumerate(range(0, size, step), start=1):
                last = min(offset + step, size) - 1
                answer = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=destination,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    CopySource=source_ref,
                    CopySourceRange=f"bytes={offset}-{last}",
                )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=destination,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
                **conditional,
            )
        except BaseException:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=destination, UploadId=upload["UploadId"]
            )
            raise

    # ------------------------------------------------------------------ reads

    def _info_from(self, key: str, answer: Mapping[str, Any], size: int) -> ObjectInfo:
        metadata = dict(answer.get("Metadata") or {})
        sha256 = metadata.pop("sha256", None)
        etag = answer.get("ETag")
        return ObjectInfo(
            key=key,
            size=size,
            content_type=answer.get("ContentType"),
            sha256=sha256,
            last_modified=answer.get("LastModified"),
            metadata=metadata,
            etag=etag.strip('"') if isinstance(etag, str) else None,
        )

    def stat(self, key: str) -> ObjectInfo:
        """``HEAD`` the object.

        Raises:
            ObjectNotFoundError: No such object.
        """
        validate_key(key)
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except Exception as exc:
            raise self._error(exc, key) from exc
        return self._info_from(key, answer, int(answer["ContentLength"]))

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def open(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectReader:
        """A streaming ``GET`` (ranged when asked).

        Raises:
            ObjectNotFoundError: No such object.
            RangeNotSatisfiableError: The range starts at or after the end.
        """
        validate_key(key)
        extra = {"Range": f"bytes={byte_range.start}-{byte_range.end}"} if byte_range else {}
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key), **extra)
        except Exception as exc:
            code, status = _code(exc)
            if code == "InvalidRange" or status == 416:
                raise RangeNotSatisfiableError(self.stat(key).size) from None
            raise self._error(exc, key) from exc
        length = int(answer["ContentLength"])
        content_range = answer.get("ContentRange")
        if content_range:  # "bytes 0-9/1000"
            span, _, total = content_range.removeprefix("bytes ").partition("/")
            start, size = int(span.split("-")[0]), int(total)
        else:
            start, size = 0, length
        return ObjectReader(
            answer["Body"], self._info_from(key, answer, size), start=start, length=length
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix``, in UTF-8 byte order (S3's listing order)."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.full_key(prefix)):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if is_reserved_name(key):
                    continue
                etag = item.get("ETag")
                yield ObjectInfo(
                    key=key,
                    size=int(item["Size"]),
                    last_modified=item.get("LastModified"),
                    etag=etag.strip('"') if isinstance(etag, str) else None,
                )

    def upload_staging(self) -> UploadStaging:
        """Where ``ResumableUploads`` stages chunks (the ``SupportsUploadStaging`` capability)."""
        from veza_storage._staging_s3 import S3Staging  # noqa: PLC0415 - it imports this module

        return S3Staging(self)

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A SigV4 presigned GET; expiries over 7 days are refused, not issued broken.

        ``download_filename`` sets ``response-content-disposition`` (RFC 5987
        ``filename*`` plus an ASCII fallback); ``content_type`` sets
        ``response-content-type``.
        """
        validate_key(key)
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            msg = f"expires_in must be between 1 second and 7 days (SigV4), got {expires_in}"
            raise StorageConfigurationError(msg)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self.full_key(key)}
        if download_filename:
            params["ResponseContentDisposition"] = content_disposition(download_filename)
        if content_type:
            params["ResponseContentType"] = content_type
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=int(expires_in)
        )
        return url
