"""Resumable-upload staging on S3: chunks as multipart parts (small ones grouped)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from veza_storage._errors import ChunkError
from veza_storage._s3 import MAX_PARTS, MIN_PART, S3Storage, _b64_sha256, _code
from veza_storage._sessions import UploadSession
from veza_storage._staging import STAGING, LostChunksError, check_whole
from veza_storage._stream import BLOCK
from veza_storage._types import ObjectInfo


class S3Staging:
    def __init__(self, storage: S3Storage) -> None:
        self._s3 = storage
        self._client = storage.client
        self._bucket = storage.bucket

    def _base(self, session: UploadSession) -> str:
        return self._s3.full_key(f"{STAGING}/{session.id}")

    def _object(self, session: UploadSession) -> str:
        return f"{self._base(session)}/object"

    def _chunk(self, session: UploadSession, index: int) -> str:
        return f"{self._base(session)}/chunk-{index:08d}"

    @staticmethod
    def _group(session: UploadSession) -> int:
        return max(1, -(-MIN_PART // session.chunk_size))

    def begin(self, session: UploadSession) -> dict[str, Any]:
        group = self._group(session)
        parts = -(-session.chunk_count // group) if session.chunk_count else 0
        if parts > MAX_PARTS:
            smallest = session.total_size // MAX_PARTS + 1
            msg = f"{parts} S3 parts needed; use chunks of at least {smallest} bytes"
            raise ChunkError(msg)
        upload = self._client.create_multipart_upload(
            Bucket=self._bucket,
            Key=self._object(session),
            ContentType=session.content_type,
            ChecksumAlgorithm="SHA256",
        )
        return {"upload_id": upload["UploadId"], "group": group, "parts": {}}

    def write_chunk(
        self, session: UploadSession, index: int, data: bytes
    ) -> tuple[int, dict[str, str]] | None:
        if session.backend["group"] == 1:  # a chunk is a part
            return index + 1, self._upload_part(session, index + 1, data)
        # a small chunk waits as a staging object until its group is complete
        self._client.put_object(
            Bucket=self._bucket,
            Key=self._chunk(session, index),
            Body=data,
            ChecksumSHA256=_b64_sha256(data),
        )
        return None

    def _upload_part(self, session: UploadSession, number: int, data: bytes) -> dict[str, str]:
        checksum = _b64_sha256(data)
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._object(session),
            UploadId=session.backend["upload_id"],
            PartNumber=number,
            Body=data,
            ChecksumSHA256=checksum,
        )
        return {"ETag": answer["ETag"], "ChecksumSHA256": checksum}

    @contextlib.contextmanager
    def chunk_lock(self, session: UploadSession) -> Iterator[None]:
        """No lock can span S3 clients: ``complete`` verifies every part instead."""
        del session
        yield

    def ready_parts(
        self, session: UploadSession
    ) -> tuple[list[tuple[int, dict[str, str]]], list[int]]:
        """Upload every grouped part whose chunks are all in and that is not uploaded.

        Each staged chunk is checked against its recorded digest first: a refused
        sender may have overwritten it. Chunks that fail are returned as lost (the
        caller forgets them, so the client sends them again).
        """
        group = session.backend["group"]
        if group == 1:
            return [], []
        done: list[tuple[int, dict[str, str]]] = []
        lost: list[int] = []
        for number in range(1, -(-session.chunk_count // group) + 1):
            if str(number) in session.backend["parts"]:
                continue
            indices = range((number - 1) * group, min(number * group, session.chunk_count))
            if not all(i in session.chunks for i in indices):
                continue
            pieces = self._read_group(session, indices, lost)
            if pieces is None or lost:
                continue
            done.append((number, self._upload_part(session, number, b"".join(pieces))))
            for i in indices:
                self._client.delete_object(Bucket=self._bucket, Key=self._chunk(session, i))
        return done, lost

    def _read_group(
        self, session: UploadSession, indices: range, lost: list[int]
    ) -> list[bytes] | None:
        """A group's staged chunks (under 10 MiB), checked against their recorded digests.

        Returns ``None`` when a chunk object is gone: a concurrent request is uploading
        this group right now and records the part itself.
        """
        pieces = []
        for i in indices:
            try:
                answer = self._client.get_object(Bucket=self._bucket, Key=self._chunk(session, i))
            except Exception as exc:
                if _code(exc)[0] in ("NoSuchKey", "404"):
                    return None
                raise
            with contextlib.closing(answer["Body"]) as body:
                pieces.append(body.read())
            if hashlib.sha256(pieces[-1]).hexdigest() != session.chunks[i]:
                lost.append(i)
        return pieces

    def _parts(self, session: UploadSession) -> list[dict[str, Any]]:
        answer = self._client.list_parts(
            Bucket=self._bucket, Key=self._object(session), UploadId=session.backend["upload_id"]
        )
        parts = answer.get("Parts", [])
        while answer.get("IsTruncated"):
            answer = self._client.list_parts(
                Bucket=self._bucket,
                Key=self._object(session),
                UploadId=session.backend["upload_id"],
                PartNumberMarker=answer["NextPartNumberMarker"],
            )
            parts += answer.get("Parts", [])
        return [
            {
                "PartNumber": p["PartNumber"],
                "ETag": p["ETag"],
                "ChecksumSHA256": p.get("ChecksumSHA256")
                or session.backend["parts"].get(str(p["PartNumber"]), {}).get("ChecksumSHA256"),
            }
            for p in sorted(parts, key=lambda p: p["PartNumber"])
        ]

    def _check_parts(self, session: UploadSession) -> None:
        """Every part holds the bytes recorded for its chunks, or those chunks are lost.

        A part number uploaded again (a refused concurrent sender, a stale retry)
        changes the part's ETag, so the ETag S3 lists must be the one recorded when
        the accepted chunk was uploaded (and its SHA-256 too, where S3 lists it).
        """
        group = session.backend["group"]
        answer = self._client.list_parts(
            Bucket=self._bucket, Key=self._object(session), UploadId=session.backend["upload_id"]
        )
        listed = answer.get("Parts", [])
        while answer.get("IsTruncated"):
            answer = self._client.list_parts(
                Bucket=self._bucket,
                Key=self._object(session),
                UploadId=session.backend["upload_id"],
                PartNumberMarker=answer["NextPartNumberMarker"],
            )
            listed += answer.get("Parts", [])
        found = {p["PartNumber"]: p for p in listed}
        lost: list[int] = []
        for number in range(1, -(-session.chunk_count // group) + 1):
            recorded = session.backend["parts"].get(str(number))
            part = found.get(number)
            if (
                recorded is None
                or part is None
                or part["ETag"] != recorded["ETag"]
                or part.get("ChecksumSHA256", recorded["ChecksumSHA256"])
                != recorded["ChecksumSHA256"]
            ):
                lost += range((number - 1) * group, min(number * group, session.chunk_count))
        if lost:
            raise LostChunksError(lost)

    def complete(self, session: UploadSession, update: Callable[..., UploadSession]) -> ObjectInfo:
        if session.state == "open":
            self._check_parts(session)
            parts = self._parts(session)
            try:
                if session.chunk_count:
                    self._client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._object(session),
                        UploadId=session.backend["upload_id"],
                        MultipartUpload={"Parts": parts},
                    )
                else:  # an empty object: no parts to join
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._object(session),
                        UploadId=session.backend["upload_id"],
                    )
                    self._client.put_object(
                        Bucket=self._bucket, Key=self._object(session), Body=b""
                    )
            except Exception as exc:
                if _code(exc)[0] != "NoSuchUpload":  # a crash after a previous complete
                    raise
            update(lambda s: setattr(s, "state", "assembled"))
        # read the joined object back: the digest of the assembled bytes, verified
        # before the key ever sees it
        answer = self._client.get_object(Bucket=self._bucket, Key=self._object(session))
        digest, size = hashlib.sha256(), 0
        with contextlib.closing(answer["Body"]) as body:
            while block := body.read(BLOCK):
                digest.update(block)
                size += len(block)
        sha256 = digest.hexdigest()
        check_whole(session, size, sha256)
        self._s3.server_side_copy(
            self._object(session),
            self._s3.full_key(session.key),
            size=size,
            metadata={**session.metadata, "sha256": sha256},
            content_type=session.content_type,
        )
        return self._s3.stat(session.key)

    def cleanup(self, session: UploadSession) -> None:
        base = self._base(session) + "/"
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=base):
            for item in page.get("Contents", []):
                self._client.delete_object(Bucket=self._bucket, Key=item["Key"])

    def abort(self, session: UploadSession) -> None:
        with contextlib.suppress(Exception):
            self._client.abort_multipart_upload(
                Bucket=self._bucket,
                Key=self._object(session),
                UploadId=session.backend["upload_id"],
            )
        self.cleanup(session)

    def sweep_orphans(self, older_than: float, known: Callable[[str], bool]) -> int:
        """Abort multipart uploads and delete staged chunks no session remembers."""
        base = self._s3.full_key(STAGING + "/")

        def orphan(key: str, when: float) -> bool:
            session_id = key.removeprefix(base).split("/", 1)[0]
            return when < older_than and not known(session_id)

        removed = 0
        answer = self._client.list_multipart_uploads(Bucket=self._bucket, Prefix=base)
        for upload in answer.get("Uploads", []):
            if orphan(upload["Key"], upload["Initiated"].timestamp()):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=base):
            for item in page.get("Contents", []):
                if orphan(item["Key"], item["LastModified"].timestamp()):
                    self._client.delete_object(Bucket=self._bucket, Key=item["Key"])
        return removed
