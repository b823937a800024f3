"""Objects nobody references, and references to objects that are gone.

An object is an orphan when no reference (for example a track row's ``storage_key``)
names it and it is older than the grace period: an upload that has just finished but
whose row is not committed yet is in flight, not orphaned. Deleting is a separate,
explicit choice (``delete=True``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import attrs

from veza_storage._protocol import Storage
from veza_storage._types import ObjectInfo


@attrs.frozen
class OrphanReport:
    """What ``find_orphans`` found.

    Attributes:
        orphans: Objects without a reference, older than the grace period.
        in_flight: Objects without a reference, but younger than the grace period.
        missing: References whose object does not exist.
        deleted: Orphans deleted (only with ``delete=True``).
    """

    orphans: tuple[ObjectInfo, ...]
    in_flight: tuple[ObjectInfo, ...]
    missing: tuple[str, ...]
    deleted: int = 0


def find_orphans(
    storage: Storage,
    referenced: Iterable[str],
    *,
    prefix: str = "",
    grace: float = 3600.0,
    now: float | None = None,
    delete: bool = False,
) -> OrphanReport:
    """Compare the objects under ``prefix`` with the keys the application references.

    Args:
        storage: The backend.
        referenced: Every key the application points at.
        prefix: Only look at objects under this prefix.
        grace: Seconds an unreferenced object may be in flight.
        now: The current time (UTC epoch seconds).
        delete: Delete the orphans found.
    """
    current = time.time() if now is None else now
    wanted = {key.strip() for key in referenced if key.strip()}
    orphans: list[ObjectInfo] = []
    in_flight: list[ObjectInfo] = []
    seen: set[str] = set()
    for info in storage.list(prefix):
        seen.add(info.key)
        if info.key in wanted:
            continue
        modified = info.last_modified.timestamp() if info.last_modified else 0.0
        (in_flight if current - modified < grace else orphans).append(info)
    missing = sorted(k for k in wanted if k.startswith(prefix) and k not in seen)
    deleted = 0
    if delete:
        for info in orphans:
            storage.delete(info.key)
            deleted += 1
    return OrphanReport(tuple(orphans), tuple(in_flight), tuple(missing), deleted)
