"""The local-disk backend: atomic writes, no symlink escapes, metadata that moves with the file.

Writes go to a temporary file in the object's own directory, are fsynced, and are
renamed into place (linked when ``if_absent``: it fails atomically if the name exists),
then the directory is fsynced: a crash leaves either the old object or the new one,
never a partial file under the key. Content type, user metadata and the SHA-256
computed while writing are stored in one extended attribute (``user.veza``) set on the
temporary file *before* the rename, so they become visible atomically with the data.
Files without the attribute (written by other tools) still work: their type is guessed
from the name and their checksum is unknown.

Every filesystem call under the root goes through directory file descriptors opened
with ``O_NOFOLLOW | O_DIRECTORY`` (see ``_fs``), creation of missing folders included:
a symbolic link anywhere on a key's path is refused with an ``InvalidKeyError`` and
nothing is created outside the root, even when the link is swapped in mid-operation.

Temporary files are named ``.veza-tmp-*``, a name the key validator reserves, so they
never appear in listings; ``sweep_temporary`` removes ones a crash left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import mimetypes
import os
import secrets
import stat as stat_module
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from veza_storage._copy import copy_into
from veza_storage._direct import DirectWriter
from veza_storage._errors import (
    InvalidKeyError,
    ObjectExistsError,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    StorageConfigurationError,
)
from veza_storage._fs import DIR_FLAGS as _DIR_FLAGS, SymlinkRefusedError, open_file_at, walk
from veza_storage._keys import RESERVED_PREFIX, is_reserved_name, validate_key
from veza_storage._signing import LocalURLSigner
from veza_storage._stream import BLOCK, ObjectReader, Source
from veza_storage._types import ByteRange, ObjectInfo, validate_metadata

if TYPE_CHECKING:
    from veza_storage._capabilities import UploadStaging

XATTR = "user.veza"
TEMP_PREFIX = f"{RESERVED_PREFIX}tmp-"
# read and write: the hash-behind-copy thread reads back what the kernel copied
_NEW_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECT_WRITE = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _split(key: str) -> tuple[list[str], str]:
    *folders, name = validate_key(key).split("/")
    return folders, name


def _not_found(key: str) -> ObjectNotFoundError:
    return ObjectNotFoundError(f"no object has the key {key!r}")


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _span(byte_range: ByteRange | None, size: int) -> tuple[int, int]:
    """Where a read starts and how many bytes it returns.

    Raises:
        RangeNotSatisfiableError: The range starts at or after the end.
    """
    if byte_range is None:
        return 0, size
    if byte_range.start >= size:
        raise RangeNotSatisfiableError(size)
    return byte_range.start, min(byte_range.end, size - 1) - byte_range.start + 1


class LocalStorage:
    """Objects as files under ``root``.

    Args:
        root: The directory holding every object.
        signer: Issues ``presign_get`` URLs the application serves (see
            :class:`LocalURLSigner`); without it ``presign_get`` is unavailable.
        fsync: Flush data and directory entries to disk on every write (default). Turn
            it off only for throwaway data.
        create: Create a missing root (default). Tools that only read a root pass
            ``False``, so a mistyped path fails instead of yielding empty results.

    Raises:
        StorageConfigurationError: The root exists and is not a directory, is missing
            and ``create`` is false, or its filesystem does not support user extended
            attributes.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        signer: LocalURLSigner | None = None,
        fsync: bool = True,
        create: bool = True,
    ) -> None:
        path = Path(root)
        if not create and not path.exists():
            msg = f"the storage root {str(path)!r} does not exist"
            raise StorageConfigurationError(msg)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            msg = f"the storage root {str(path)!r} is not a directory"
            raise StorageConfigurationError(msg) from None
        self._root = path.resolve()
        self._signer = signer
        self._fsync = fsync
        self._direct = DirectWriter()
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

    @property
    def durable(self) -> bool:
        """Whether writes are fsynced (the ``fsync`` argument)."""
        return self._fsync

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

    def local_path(self, key: str) -> Path:
        """The file a key maps to, for display and for tools that need a path.

        The storage's own operations never resolve this path: they walk directory
        descriptors (see the module docs). A path can change after it is returned.

        Raises:
            InvalidKeyError: The key is invalid, or a symbolic link is on its path.
        """
        folders, name = _split(key)
        with (
            contextlib.suppress(FileNotFoundError),
            walk(self._root, folders, key=key, create=False) as chain,
        ):
            status = _lstat_at(chain[-1], name)
            if status is not None and stat_module.S_ISLNK(status.st_mode):
                msg = f"invalid storage key {key!r}: the object is a symbolic link"
                raise SymlinkRefusedError(msg)
        return self._root.joinpath(*folders, name)

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
            InvalidKeyError: Bad key, or a symbolic link on its path (nothing written).
            InvalidMetadataError: Non-portable metadata.
            ObjectExistsError: ``if_absent`` and the key exists.
        """
        folders, name = _split(key)
        meta = validate_metadata(metadata)
        with walk(self._root, folders, key=key, create=True, durable=self._fsync) as chain:
            parent = chain[-1]
            temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(temp, _NEW_FILE, 0o600, dir_fd=parent)
            direct = None
            try:
                try:
                    if self._fsync:  # durable: around the page cache (see ``_direct``)
                        direct = self._direct.open_direct(parent, temp, _DIRECT_WRITE)
                    sha256, _ = copy_into(stream, fd, direct_fd=direct)
                    record = {"content_type": content_type, "sha256": sha256, "metadata": meta}
                    os.setxattr(fd, XATTR, json.dumps(record).encode())
                    if self._fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                    if direct is not None:
                        os.close(direct)
                publish_at(parent, temp, parent, name, key=key, if_absent=if_absent)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=parent)
                raise
            if self._fsync:
                os.fsync(parent)
            return self._stat_at(parent, name, key)

    def delete(self, key: str) -> None:
        """Delete the object (missing keys are fine) and prune emptied directories.

        Raises:
            InvalidKeyError: Bad key, or a symbolic link on its path.
        """
        folders, name = _split(key)
        try:
            with walk(self._root, folders, key=key, create=False) as chain:
                status = _lstat_at(chain[-1], name)
                if status is None or stat_module.S_ISDIR(status.st_mode):
                    return
                if stat_module.S_ISLNK(status.st_mode):
                    msg = f"invalid storage key {key!r}: the object is a symbolic link"
                    raise SymlinkRefusedError(msg)
                try:
                    os.unlink(name, dir_fd=chain[-1])
                except FileNotFoundError:
                    return
                if self._fsync:
                    os.fsync(chain[-1])
                for depth in range(len(folders) - 1, -1, -1):  # prune emptied folders
                    try:
                        os.rmdir(folders[depth], dir_fd=chain[depth])
                    except OSError:
                        break
        except FileNotFoundError:
            return

    def copy(self, source_key: str, destination_key: str, *, if_absent: bool = False) -> ObjectInfo:
        """Copy by streaming through a temporary file (atomic like ``put``)."""
        with self.open(source_key) as reader:
            info = reader.info
            return self.put(
                destination_key,
                reader,
                content_type=info.content_type or "application/octet-stream",
                metadata=info.metadata,
                if_absent=if_absent,
            )

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _record(fd: int) -> dict[str, object]:
        try:
            raw = os.getxattr(fd, XATTR)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP):
                return {}
            raise
        try:
            record = json.loads(raw)
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def _info(self, key: str, fd: int) -> ObjectInfo:
        status = os.fstat(fd)
        record = self._record(fd)
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

    def _stat_at(self, dir_fd: int, name: str, key: str) -> ObjectInfo:
        fd = open_file_at(dir_fd, name, key=key)
        if fd is None:
            raise _not_found(key)
        try:
            return self._info(key, fd)
        finally:
            os.close(fd)

    def _open_fd(self, key: str) -> int:
        folders, name = _split(key)
        try:
            with walk(self._root, folders, key=key, create=False) as chain:
                fd = open_file_at(chain[-1], name, key=key)
        except FileNotFoundError:
            fd = None
        if fd is None:
            raise _not_found(key)
        return fd

    def stat(self, key: str) -> ObjectInfo:
        """The object's info.

        Raises:
            ObjectNotFoundError: No such object.
            InvalidKeyError: Bad key, or a symbolic link on its path.
        """
        fd = self._open_fd(key)
        try:
            return self._info(key, fd)
        finally:
            os.close(fd)

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
        fd = self._open_fd(key)
        raw = os.fdopen(fd, "rb", buffering=BLOCK)
        try:
            info = self._info(key, fd)
            start, length = _span(byte_range, info.size)
            if start:
                raw.seek(start)
        except BaseException:
            raw.close()
            raise
        return ObjectReader(raw, info, start=start, length=length)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in UTF-8 byte order (as S3 lists them)."""
        if prefix.startswith("/") or ".." in prefix.split("/") or "\\" in prefix:
            msg = f"invalid prefix {prefix!r}"
            raise InvalidKeyError(msg)
        directory_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        folders = directory_part.split("/") if directory_part else []
        try:
            with walk(self._root, folders, key=prefix, create=False) as chain:
                yield from self._walk(chain[-1], directory_part, prefix)
        except (FileNotFoundError, SymlinkRefusedError):
            return

    def _walk(self, dir_fd: int, relative: str, prefix: str) -> Iterator[ObjectInfo]:
        with os.scandir(dir_fd) as scan:
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
                    try:
                        child = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                    except OSError:
                        continue  # replaced by a link (or removed) since the scan
                    try:
                        yield from self._walk(child, key, prefix)
                    finally:
                        os.close(child)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                if is_reserved_name(key):
                    continue
                with contextlib.suppress(SymlinkRefusedError, ObjectNotFoundError):
                    yield self._stat_at(dir_fd, entry.name, key)

    # ------------------------------------------------------------------ URLs, hygiene

    def upload_staging(self) -> UploadStaging:
        """Where ``ResumableUploads`` stages chunks (the ``SupportsUploadStaging`` capability)."""
        from veza_storage._staging_local import LocalStaging  # noqa: PLC0415 - it imports this module

        return LocalStaging(self)

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
            msg = "LocalStorage.presign_get needs a signer (VEZA_STORAGE_SIGNING_KEY)"
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
        for _, _, files, dir_fd in os.fwalk(self._root, follow_symlinks=False):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    status = _lstat_at(dir_fd, name)
                    if status is not None and status.st_mtime < cutoff:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(name, dir_fd=dir_fd)
                            removed += 1
        return removed


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def publish_at(
    src_dir_fd: int, src_name: str, dst_dir_fd: int, dst_name: str, *, key: str, if_absent: bool
) -> None:
    """Move a finished file onto its key: ``renameat`` (``linkat`` + unlink if absent).

    Neither call follows a link: a link planted at the destination name is replaced
    (rename) or refused as an existing object (link), never written through.

    Raises:
        ObjectExistsError: ``if_absent`` and the name is taken.
    """
    if if_absent:
        try:
            os.link(
                src_name,
                dst_name,
                src_dir_fd=src_dir_fd,
                dst_dir_fd=dst_dir_fd,
                follow_symlinks=False,
            )
        except FileExistsError:
            msg = f"an object already has the key {key!r}"
            raise ObjectExistsError(msg) from None
        os.unlink(src_name, dir_fd=src_dir_fd)
    else:
        os.rename(src_name, dst_name, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
