"""Long-lived helper threads for work beside a chunk write, safe across ``fork``.

Why not a thread per chunk: on a busy two-core machine ``Thread.start`` waited about
1.5 ms per chunk for the new thread to be scheduled. Why not a bare
``ThreadPoolExecutor``: a process forked after its thread started (a pre-forking
server that warmed up first) inherits an executor that believes its idle thread exists
and would queue work that nobody runs.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")


class ForkAwareLock:
    """A lock that a forked child takes afresh.

    Why: ``fork`` copies a lock in the state it had, and a lock another thread held at
    that instant stays held for ever in the child, where that thread does not exist: a
    pre-forking server's worker would hang on its first upload. The child notices the
    new process id and uses a new lock.
    """

    def __init__(self) -> None:
        self._locks: dict[int, threading.Lock] = {os.getpid(): threading.Lock()}

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock of this process for the ``with`` block.

        One lock per process id: ``dict.setdefault`` is atomic, so two threads of a
        child that arrive first at once both get the one lock it stored (replacing an
        attribute instead let each make its own, and both held "the" lock at once).
        """
        pid = os.getpid()
        lock = self._locks.get(pid)
        if lock is None:
            lock = self._locks.setdefault(pid, threading.Lock())
        with lock:
            yield


class BesideThreads:
    """A thread pool started on first use, and started afresh in a forked child.

    Its threads end when it is garbage-collected (``ThreadPoolExecutor`` semantics).

    Args:
        workers: The most threads running at once. One worker runs work in the order
            it was submitted.
        name: The threads' name prefix (seen in ``py-spy`` and thread dumps).
    """

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        # one executor per process id, like ForkAwareLock's locks: a child never uses
        # the parent's; an executor starts no thread before its first submit
        self._executors: dict[int, ThreadPoolExecutor] = {}

    def submit(self, work: Callable[[], _T]) -> Future[_T] | None:
        """Run ``work`` on one of the threads; its future, or ``None`` if none will run it.

        ``None`` only while the interpreter ends: the caller then runs ``work`` itself.
        """
        pid = os.getpid()
        executor = self._executors.get(pid)
        if executor is None:
            fresh = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self._name)
            executor = self._executors.setdefault(pid, fresh)
        try:
            return executor.submit(work)
        except RuntimeError:
            # The interpreter is ending: concurrent.futures stops accepting work when the
            # main thread returns, before Python joins the non-daemon threads that may
            # still be uploading. The caller runs the work itself instead of failing.
            return None
