"""A blocking-I/O detector for event-loop threads (tests only).

``with loop_io_watch() as seen:`` inside a coroutine records every blocking I/O step
the *current* thread (the loop's) takes until the block ends: files opened, renamed,
removed or listed, host names resolved, blocking sockets connected or written. Worker
threads are not watched, so an offload to ``asyncio.to_thread`` passes and the same call
made on the loop fails. It rests on CPython's audit hooks (PEP 578): no timing, no
patching of the code under test. A non-blocking socket (asyncio's own) is allowed.

The hook is added once per process (audit hooks cannot be removed) and does nothing
while no thread is watched. First imports open ``.py``/``.pyc`` files: warm the code path
up once before watching, as the tests do.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

_FILE_EVENTS = frozenset(
    {
        "open",
        "os.rename",
        "os.remove",
        "os.rmdir",
        "os.mkdir",
        "os.listdir",
        "os.scandir",
        "os.truncate",
        "os.link",
        "os.symlink",
        "shutil.copyfile",
        "shutil.rmtree",
    }
)
_SOCKET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_RESOLVE_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"})

_watched: dict[int, list[str]] = {}
_lock = threading.Lock()
_installed = False


def _blocking_socket(args: tuple[Any, ...]) -> bool:
    sock = args[0] if args else None
    return isinstance(sock, socket.socket) and sock.gettimeout() != 0.0


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _watched:
        return
    seen = _watched.get(threading.get_ident())
    if seen is None:
        return
    if (
        event in _FILE_EVENTS
        or event in _RESOLVE_EVENTS
        or (event in _SOCKET_EVENTS and _blocking_socket(args))
    ):
        seen.append(f"{event} {args[:2]!r}"[:300])


@contextlib.contextmanager
def loop_io_watch(thread: threading.Thread | None = None) -> Iterator[list[str]]:
    """Record blocking I/O on ``thread`` (the calling one by default) until the block ends.

    Pass a server's thread (uvicorn's, running the app's event loop) to watch it while
    the test drives the app over HTTP from its own thread.
    """
    global _installed  # noqa: PLW0603 - one audit hook per process, by design
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
    seen: list[str] = []
    ident = threading.get_ident() if thread is None else thread.ident
    if ident is None:
        msg = "the thread to watch has not started"
        raise RuntimeError(msg)
    _watched[ident] = seen
    try:
        yield seen
    finally:
        _watched.pop(ident, None)
