"""The local-disk backend: atomic writes, no symlink escapes, metadata that moves with the file.

Writes go to a temporary file in the object's own directory, are fsynced, and are
``os.replace``d into place (``os.link`` when ``if_absent``: it fails atomically if the
name exists), then the directory is fsynced: a crash leaves either the old object or the
new one, never a partial file under the key. Content type, user metadata and the SHA-256
computed while writing are stored in one extended attribute (``user.veza``) set on the
temporary file *before* the rename, so they become visible atomically with the data.
Files without the attribute (written by other tools) still work: their type is guessed
from the name and their checksum is unknown.

Temporary files are named ``.veza-tmp-*``, a name the key validator reserves, so they
never appear in listings; ``sweep_temporary`` removes ones a crash left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import mimetypes
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from veza_storage._copy import copy_into
from veza_storage._errors import (
    InvalidKeyError,
    ObjectExistsError,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    StorageConfigurationError,
)
from veza_storage._keys import RESERVED_PREFIX, is_reserved_name, validate_key
from veza_storage._signing import LocalURLSigner
from veza_storage._stream import BLOCK, ObjectReader, Source
from veza_storage._types import ByteRange, ObjectInfo, validate_metadata

XATTR = "user.veza"
TEMP_PREFIX = f"{RESERVED_PREFIX}tmp-"


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    """Objects as files under ``root``.

    Args:
        root: The directory holding every object (created if missing).
        signer: Issues ``presign_get`` URLs the application serves (see
            :class:`LocalURLSigner`); without it ``presign_get`` is unavailable.
        fsync: Flush data and directory entries to disk on every write (default). Turn
            it off only for throwaway data.

    Raises:
        StorageConfigurationError: The root exists and is not a directory, or its
            filesystem does not support user extended attributes.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        signer: LocalURLSigner | None = None,
        fsync: bool = True,
    ) -> None:
        path = Path(root)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            msg = f"the storage root {str(path)!r} is not a directory"
            raise StorageConfigurationError(msg) from None
        self._root = path.resolve()
        self._signer = signer
        self._fsync = fsync
        self._check_xattrs()

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        return self._root

    @property
    def signer(self) -> LocalURLSigner | None:
        """The URL signer ``presign_get`` uses (the app verifies with it)."""
        return self._signer

    def _check_xattrs(self) -> None:
        fd, probe = tempfile.mkstemp(dir=self._root, prefix=TEMP_PREFIX)
        try:
            os.setxattr(fd, XATTR, b"{}")
        except OSError as exc:
            msg = (
                f"the filesystem of {str(self._root)!r} does not support user extended "
                f"attributes ({exc.strerror}); veza-storage stores metadata there"
            )
            raise StorageConfigurationError(msg) from None
        finally:
            os.close(fd)
            Path(probe).unlink()

    # ------------------------------------------------------------------ paths

    def _inside(self, path: Path) -> bool:
        return path == self._root or self._root in path.parents

    def local_path(self, key: str) -> Path:
        """The file a key maps to, after validation and symlink checks.

        Raises:
            InvalidKeyError: The key is invalid, or resolves outside the root through
                a symbolic link.
        """
        validate_key(key)
        path = self._root.joinpath(*key.split("/"))
        parent = path.parent
        if parent.exists() and not self._inside(parent.resolve()):
            msg = f"invalid storage key {key!r}: a symbolic link leads outside the root"
            raise InvalidKeyError(msg)
        if path.is_symlink():
            msg = f"invalid storage key {key!r}: the object is a symbolic link"
            raise InvalidKeyError(msg)
        return path

    def _parent_for_write(self, path: Path, key: str) -> Path:
        parent = path.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not self._inside(parent.resolve()):
            msg = f"invalid storage key {key!r}: a symbolic link leads outside the root"
            raise InvalidKeyError(msg)
        return parent

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
        """Store ``stream`` atomically, in constant memory; see the module docs.

        Raises:
            InvalidKeyError: Bad key.
            InvalidMetadataError: Non-portable metadata.
            ObjectExistsError: ``if_absent`` and the key exists.
        """
        path = self.local_path(key)
        meta = validate_metadata(metadata)
        parent = self._parent_for_write(path, key)
        fd, temp = tempfile.mkstemp(dir=parent, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                sha256, _ = copy_into(stream, out.fileno())
                record = {"content_type": content_type, "sha256": sha256, "metadata": meta}
                os.setxattr(out.fileno(), XATTR, json.dumps(record).encode())
                if self._fsync:
                    os.fsync(out.fileno())
            self._publish(temp, path, key, if_absent=if_absent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(temp).unlink()
            raise
        return self.stat(key)

    def _publish(self, temp: str, path: Path, key: str, *, if_absent: bool) -> None:
        if if_absent:
            try:
                os.link(temp, path)
            except FileExistsError:
                msg = f"an object already has the key {key!r}"
                raise ObjectExistsError(msg) from None
            Path(temp).unlink()
        else:
            Path(temp).replace(path)
        if self._fsync:
            fsync_directory(path.parent)

    def delete(self, key: str) -> None:
        """Delete the object (missing keys are fine) and prune emptied directories."""
        path = self.local_path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        if self._fsync:
            fsync_directory(path.parent)
        directory = path.parent
        while directory != self._root:
            try:
                directory.rmdir()
            except OSError:
                break
            directory = directory.parent

    def copy(self, source_key: str, destination_key: str, *, if_absent: bool = False) -> ObjectInfo:
        """Copy by streaming through a temporary file (atomic like ``put``)."""
        info = self.stat(source_key)
        with self.open(source_key) as reader:
            return self.put(
                destination_key,
                reader,
                content_type=info.content_type or "application/octet-stream",
                metadata=info.metadata,
                if_absent=if_absent,
            )

    # ------------------------------------------------------------------ reads

    def _record(self, path: Path) -> dict[str, object]:
        try:
            raw = os.getxattr(path, XATTR, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP):
                return {}
            raise
        try:
            record = json.loads(raw)
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def _info(self, key: str, path: Path, status: os.stat_result) -> ObjectInfo:
        record = self._record(path)
        content_type = record.get("content_type")
        if not isinstance(content_type, str):
            content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        sha256 = record.get("sha256")
        metadata = record.get("metadata")
        return ObjectInfo(
            key=key,
            size=status.st_size,
            content_type=content_type,
            sha256=sha256 if isinstance(sha256, str) else None,
            last_modified=datetime.fromtimestamp(status.st_mtime, tz=UTC),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
        )

    def stat(self, key: str) -> ObjectInfo:
        """The object's info.

        Raises:
            ObjectNotFoundError: No such object.
        """
        path = self.local_path(key)
        try:
            status = path.stat(follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            msg = f"no object has the key {key!r}"
            raise ObjectNotFoundError(msg) from None
        if not path.is_file():
            msg = f"no object has the key {key!r}"
            raise ObjectNotFoundError(msg)
        return self._info(key, path, status)

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def open(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectReader:
        """A streaming reader; with ``byte_range``, of that range only.

        Raises:
            ObjectNotFoundError: No such object.
            RangeNotSatisfiableError: The range starts at or after the end.
        """
        path = self.local_path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            msg = f"no object has the key {key!r}"
            raise ObjectNotFoundError(msg) from None
        raw = os.fdopen(fd, "rb", buffering=BLOCK)
        try:
            info = self._info(key, path, os.fstat(fd))
            start, length = 0, info.size
            if byte_range is not None:
                if byte_range.start >= info.size:
                    raise RangeNotSatisfiableError(info.size)  # noqa: TRY301 - closes raw below
                start = byte_range.start
                length = min(byte_range.end, info.size - 1) - start + 1
                raw.seek(start)
        except BaseException:
            raw.close()
            raise
        return ObjectReader(raw, info, start, length)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in UTF-8 byte order (as S3 lists them)."""
        if prefix.startswith("/") or ".." in prefix.split("/") or "\\" in prefix:
            msg = f"invalid prefix {prefix!r}"
            raise InvalidKeyError(msg)
        directory_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._root.joinpath(*directory_part.split("/")) if directory_part else self._root
        if not start.is_dir() or not self._inside(start.resolve()):
            return
        yield from self._walk(start, directory_part, prefix)

    def _walk(self, directory: Path, relative: str, prefix: str) -> Iterator[ObjectInfo]:
        with os.scandir(directory) as scan:
            entries = [e for e in scan if not e.name.lower().startswith(RESERVED_PREFIX)]
        # a directory sorts as "name/" so a depth-first walk yields global byte order
        entries.sort(
            key=lambda e: (e.name + ("/" if e.is_dir(follow_symlinks=False) else "")).encode(
                "utf-8", "surrogateescape"
            )
        )
        for entry in entries:
            key = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_dir(follow_symlinks=False):
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                if is_reserved_name(key):
                    continue
                yield self._info(key, Path(entry.path), entry.stat(follow_symlinks=False))

    # ------------------------------------------------------------------ URLs, hygiene

    def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """An HMAC-signed application URL (see :class:`LocalURLSigner`).

        Raises:
            StorageConfigurationError: No signer configured.
        """
        if self._signer is None:
            msg = "LocalStorage.presign_get needs a signer (TRACK_STORAGE_SIGNING_KEY)"
            raise StorageConfigurationError(msg)
        return self._signer.sign(
            key,
            expires_in=expires_in,
            download_filename=download_filename,
            content_type=content_type,
        )

    def sweep_temporary(self, *, older_than: float = 3600.0) -> int:
        """Remove temporary files a crashed writer left behind; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        for directory, _, files in os.walk(self._root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    path = Path(directory) / name
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < cutoff:
                            path.unlink()
                            removed += 1
        return removed
