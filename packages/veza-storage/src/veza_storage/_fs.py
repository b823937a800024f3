"""Walking a storage root through directory file descriptors, never through a symlink.

Every filesystem call under a root goes through a descriptor of the directory that holds
the name (``*at`` system calls via ``dir_fd``), and every directory on the way is opened
with ``O_NOFOLLOW | O_DIRECTORY``. A path string is never handed to the kernel for
resolution, so a symbolic link planted anywhere on the way (or swapped in while we walk)
cannot lead outside the root: it is refused with :class:`SymlinkRefusedError`, including
when a missing folder is being created (``mkdirat`` never follows a link; the fresh
folder is then opened with ``O_NOFOLLOW`` like any other).

The root itself is opened by the path the operator configured and is trusted.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from veza_storage._errors import InvalidKeyError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class SymlinkRefusedError(InvalidKeyError):
    """A symbolic link (or a file where a folder should be) is on a key's path."""


class _NotFoundError(FileNotFoundError):
    """A folder on the path does not exist (reads) -- callers turn it into their error."""


def open_root(root: Path) -> int:
    """A descriptor of the (trusted) root directory."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _refusal(name: str, dir_fd: int, key: str) -> InvalidKeyError:
    try:
        status = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return SymlinkRefusedError(f"invalid storage key {key!r}: the path changed while walked")
    if stat.S_ISLNK(status.st_mode):
        reason = f"{name!r} on its path is a symbolic link"
    else:
        reason = f"{name!r} on its path is an object, not a folder"
    return SymlinkRefusedError(f"invalid storage key {key!r}: {reason}")


def open_dir_at(dir_fd: int, name: str, *, key: str, create: bool, durable: bool = False) -> int:
    """Open (or create, then open) the folder ``name`` in ``dir_fd`` without following links.

    Raises:
        SymlinkRefusedError: ``name`` is a symbolic link or not a folder.
        FileNotFoundError: It does not exist and ``create`` is false.
    """
    for _ in range(3):  # a concurrent rmdir between mkdir and open: try again
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise _NotFoundError(name) from None
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS:
                raise _refusal(name, dir_fd, key) from None
            raise
        try:
            os.mkdir(name, 0o777, dir_fd=dir_fd)  # mkdirat: never follows a link
        except FileExistsError:
            pass  # a concurrent writer made it (or a link is there: the open refuses it)
        else:
            if durable:
                os.fsync(dir_fd)
    msg = f"invalid storage key {key!r}: a folder on its path keeps disappearing"
    raise SymlinkRefusedError(msg)


@contextmanager
def walk(
    root: Path, folders: Sequence[str], *, key: str, create: bool, durable: bool = False
) -> Iterator[list[int]]:
    """Descriptors of the root and of each folder in ``folders`` under it, in order.

    The last descriptor is the folder holding the object; the whole chain stays open
    for the caller (``delete`` prunes emptied folders bottom-up through it) and is
    closed on exit.

    Raises:
        SymlinkRefusedError: A link or a file is on the way.
        FileNotFoundError: A folder is missing and ``create`` is false.
    """
    chain = [open_root(root)]
    try:
        for name in folders:
            chain.append(open_dir_at(chain[-1], name, key=key, create=create, durable=durable))
        yield chain
    finally:
        for fd in reversed(chain):
            os.close(fd)


def open_file_at(dir_fd: int, name: str, *, key: str) -> int | None:
    """A read descriptor of the regular file ``name``; ``None`` if absent or not a regular file.

    ``O_NOFOLLOW`` refuses a final link, ``O_NONBLOCK`` keeps a planted FIFO from
    blocking the open, and ``fstat`` checks what was actually opened.

    Raises:
        SymlinkRefusedError: ``name`` is a symbolic link.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            msg = f"invalid storage key {key!r}: the object is a symbolic link"
            raise SymlinkRefusedError(msg) from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
