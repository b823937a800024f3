"""Moving objects between backends without ever losing one.

For each object: **copy** (streamed, hashed on the way), **verify** (the destination's
size, and its bytes read back and hashed, must match), **record** the key in the
checkpoint, call the application's ``on_verified`` callback (flip the database pointer
*now*, not before), and only then, if asked explicitly, delete the source. A failure at
any step leaves the source untouched and the object out of the checkpoint, so a re-run
retries it. This is the order GitLab's 2017 incident lacked: sources were removed before
anyone had checked the copies.

Re-running is idempotent: keys in the checkpoint are skipped, and a destination object
whose SHA-256 already matches the source is verified rather than copied again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import attrs

from veza_storage._errors import ObjectNotFoundError
from veza_storage._protocol import Storage
from veza_storage._stream import BLOCK, Readable
from veza_storage._types import ObjectInfo

Status = Literal["copied", "already-there", "checkpointed", "failed", "dry-run"]


@attrs.frozen
class MigrationItem:
    """What happened to one key.

    Attributes:
        key: The object key.
        size: Its size in bytes.
        sha256: Its SHA-256, verified at the destination (``None`` if not reached).
        status: ``copied``, ``already-there`` (verified, not copied again),
            ``checkpointed`` (skipped: done in an earlier run), ``failed`` or ``dry-run``.
        error: Why it failed.
        source_deleted: Whether the source was deleted after verification.
    """

    key: str
    size: int
    sha256: str | None
    status: Status
    error: str | None = None
    source_deleted: bool = False


@attrs.frozen
class MigrationReport:
    """The outcome of a migration run.

    Attributes:
        items: One entry per key, in completion order.
        seconds: Wall-clock duration.
    """

    items: tuple[MigrationItem, ...]
    seconds: float

    def count(self, status: Status) -> int:
        """How many keys ended with ``status``."""
        return sum(1 for item in self.items if item.status == status)

    @property
    def failed(self) -> tuple[MigrationItem, ...]:
        """The keys that failed (their sources are untouched)."""
        return tuple(item for item in self.items if item.status == "failed")

    @property
    def bytes_copied(self) -> int:
        """Bytes written to the destination in this run."""
        return sum(item.size for item in self.items if item.status == "copied")

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"{self.count('copied')} copied ({self.bytes_copied:,} bytes), "
            f"{self.count('already-there')} already there, "
            f"{self.count('checkpointed')} done earlier, {self.count('failed')} failed, "
            f"{self.count('dry-run')} would be copied, "
            f"{sum(item.source_deleted for item in self.items)} sources deleted, "
            f"in {self.seconds:.1f}s"
        )


class Checkpoint:
    """An append-only JSON-lines file of verified keys (fsynced per line)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self.done: dict[str, dict[str, object]] = {}
        if self._path.exists():
            for line in self._path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    record = json.loads(line)  # a torn last line from a crash is skipped
                    self.done[record["key"]] = record

    def record(self, item: MigrationItem) -> None:
        """Durably note that ``item.key`` is verified at the destination."""
        line = json.dumps(
            {"key": item.key, "size": item.size, "sha256": item.sha256, "verified_at": time.time()}
        )
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
            self.done[item.key] = json.loads(line)


class _Hashing:
    """Wraps a reader, hashing what passes through."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def _sha256_of(storage: Storage, key: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with storage.open(key) as reader:
        while block := reader.read(BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _copy_verified(
    source: Storage, destination: Storage, key: str, info: ObjectInfo
) -> MigrationItem:
    """Copy one object unless the destination holds the same bytes already; verify it.

    Raises:
        OSError: The source gave another size than it reported, or the destination's
            bytes do not match (a copy made by this call is deleted again).
    """
    status: Status = "copied"
    source_sha = info.sha256
    if destination.exists(key):
        there = destination.stat(key)
        if there.size == info.size and source_sha is not None and there.sha256 == source_sha:
            status = "already-there"
    if status == "copied":
        with source.open(key) as reader:
            hashing = _Hashing(reader)
            destination.put(
                key,
                hashing,
                content_type=info.content_type or "application/octet-stream",
                metadata=info.metadata,
            )
        source_sha = hashing.digest.hexdigest()
        if hashing.size != info.size:
            msg = f"read {hashing.size} bytes from the source, expected {info.size}"
            raise OSError(msg)
    verified_sha, verified_size = _sha256_of(destination, key)
    if verified_size != info.size or verified_sha != source_sha:
        if status == "copied":
            destination.delete(key)
        msg = "the destination's bytes do not match the source"
        raise OSError(msg)
    return MigrationItem(key, info.size, verified_sha, status)


def migrate(
    source: Storage,
    destination: Storage,
    *,
    keys: Iterable[str] | None = None,
    prefix: str = "",
    dry_run: bool = False,
    concurrency: int = 4,
    checkpoint: str | os.PathLike[str] | None = None,
    delete_source_after_verify: bool = False,
    on_verified: Callable[[MigrationItem], None] | None = None,
    progress: Callable[[MigrationItem], None] | None = None,
) -> MigrationReport:
    """Copy every object (or ``keys``) from ``source`` to ``destination``, verified.

    Args:
        source: Where objects are now.
        destination: Where they go.
        keys: Migrate exactly these keys; default every key under ``prefix``.
        prefix: List the source under this prefix (when ``keys`` is not given).
        dry_run: Report what would be copied; write nothing.
        concurrency: Objects in flight at once.
        checkpoint: A JSON-lines file of verified keys; makes a re-run resume.
        delete_source_after_verify: Delete each source after it is verified and
            ``on_verified`` returned. Never implied.
        on_verified: Called once per verified object, before any source deletion:
            where the application flips its database pointer. An exception here keeps
            the source and marks the item failed.
        progress: Called after each item (for a progress bar).
    """
    started = time.monotonic()
    done = Checkpoint(checkpoint) if checkpoint is not None else None
    wanted: Iterator[str] = iter(keys) if keys is not None else (i.key for i in source.list(prefix))
    items: list[MigrationItem] = []
    lock = threading.Lock()

    def one(key: str) -> MigrationItem:
        try:
            info = source.stat(key)
        except ObjectNotFoundError as exc:
            return MigrationItem(key, 0, None, "failed", error=str(exc))
        if done is not None and key in done.done and done.done[key].get("size") == info.size:
            return MigrationItem(key, info.size, str(done.done[key].get("sha256")), "checkpointed")
        if dry_run:
            return MigrationItem(key, info.size, info.sha256, "dry-run")
        try:
            item = _copy_verified(source, destination, key, info)
            if done is not None:
                done.record(item)
            if on_verified is not None:
                on_verified(item)
        except Exception as exc:  # noqa: BLE001 - every failure keeps the source
            return MigrationItem(
                key, info.size, None, "failed", error=f"{type(exc).__name__}: {exc}"
            )
        if delete_source_after_verify:
            source.delete(key)
            item = attrs.evolve(item, source_deleted=True)
        return item

    def run(key: str) -> None:
        item = one(key)
        with lock:
            items.append(item)
        if progress is not None:
            progress(item)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for _ in pool.map(run, wanted):
            pass
    return MigrationReport(items=tuple(items), seconds=time.monotonic() - started)
