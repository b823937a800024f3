"""HLS renditions as a background job: seeded and uploaded tracks, whenever ffmpeg is there.

Cutting a rendition runs ffmpeg for seconds; a request must never wait for it and the
event loop must never run it. :class:`HlsJobs` keeps one worker thread fed by a queue:
the app submits every track that lacks a rendition when it is created (so installing
ffmpeg later and restarting renders what is missing) and each upload when it completes.
Each job's state is kept in memory for the page to poll (``GET /api/v1/hls/status``);
a rendition that exists is recorded in the database (``Track.hls_key``), so a restart
forgets only the jobs in flight, and submits them again.

Whether ffmpeg is installed is asked at each submission, not once at import: the answer
``ffmpeg: false`` lets the page say clearly why a track has no HLS.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_reference._db import Track
from veza_reference._media import ffmpeg_available, publish_hls
from veza_reference._services import Services

logger = logging.getLogger("veza_reference.hls")

QUEUED, RUNNING, READY, FAILED = "queued", "running", "ready", "failed"
NO_FFMPEG = (
    "HLS renditions need ffmpeg, which is not installed on the server "
    "(apt-get install ffmpeg, then restart the app): tracks play as plain files meanwhile."
)
OFF = "HLS renditions are off in this process."
# the formats ffmpeg is asked to read: anything else is never submitted
AUDIO_PREFIX = "audio/"


@attrs.define
class JobState:
    """One track's rendition job, as the page shows it.

    Attributes:
        state: ``queued``, ``running``, ``ready`` or ``failed``.
        detail: Why it failed, in words for the page (never ffmpeg's raw output, which
            names server paths).
    """

    state: str
    detail: str = ""


def render_track(services: Services, track_id: str) -> None:
    """Read the track's stored audio, cut its rendition with ffmpeg, record it. Blocking.

    Raises:
        LookupError: The track is gone.
        subprocess.CalledProcessError: ffmpeg could not read the file.
    """
    with Session(services.engine, expire_on_commit=False) as session:
        track = session.get(Track, track_id)
    if track is None or not track.storage_key:
        msg = f"track {track_id} is gone"
        raise LookupError(msg)
    with services.storage.open(track.storage_key) as reader:
        audio = reader.read()
    publish_hls(services, track_id, audio)


class HlsJobs:
    """A queue of rendition jobs and the one daemon thread that works through it.

    Args:
        services: The app's services (storage and database).
        enabled: ``False`` makes every call a no-op that reports ``off`` (tests that
            snapshot the storage, or a deployment rendering elsewhere).
        ffmpeg: Whether ffmpeg can run now (asked at each submission).
        work: Cuts and records one track's rendition (:func:`render_track` by
            default); replaceable so the job states are property-tested without
            ffmpeg's seconds.
    """

    def __init__(
        self,
        services: Services,
        *,
        enabled: bool = True,
        ffmpeg: Callable[[], bool] = ffmpeg_available,
        work: Callable[[str], None] | None = None,
    ) -> None:
        self._services = services
        self._enabled = enabled
        self._ffmpeg = ffmpeg
        self._do = work if work is not None else (lambda track_id: render_track(services, track_id))
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # ---- submitting -----------------------------------------------------------------

    def submit(self, track_id: str) -> bool:
        """Queue ``track_id`` unless it is queued, running or off; ``True`` when queued.

        Non-blocking: it only takes a lock and puts on a queue, so a route may call it
        from the event loop.
        """
        if not self._enabled or self._stopped.is_set() or not self._ffmpeg():
            return False
        with self._lock:
            current = self._jobs.get(track_id)
            if current is not None and current.state in (QUEUED, RUNNING):
                return False
            self._jobs[track_id] = JobState(QUEUED)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="hls-jobs", daemon=True)
                self._thread.start()
        self._queue.put(track_id)
        return True

    def submit_missing(self) -> int:
        """Queue every audio track that has no rendition yet; returns how many. Blocking."""
        if not self._enabled or not self._ffmpeg():
            return 0
        with Session(self._services.engine) as session:
            ids = session.scalars(
                sa.select(Track.id)
                .where(Track.hls_key.is_(None), Track.content_type.startswith(AUDIO_PREFIX))
                .order_by(Track.created_at)
            ).all()
        return sum(self.submit(track_id) for track_id in ids)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the job in flight (the queued ones are dropped)."""
        self._stopped.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    # ---- reading --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the page polls: whether renditions can be made, and each job's state."""
        ffmpeg = self._enabled and self._ffmpeg()
        with self._lock:
            jobs = {k: {"state": v.state, "detail": v.detail} for k, v in self._jobs.items()}
        if not self._enabled:
            message = OFF
        elif not ffmpeg:
            message = NO_FFMPEG
        else:
            pending = sum(j["state"] in (QUEUED, RUNNING) for j in jobs.values())
            message = f"Cutting HLS renditions: {pending} to go." if pending else ""
        return {"enabled": self._enabled, "ffmpeg": ffmpeg, "message": message, "jobs": jobs}

    def state_of(self, track_id: str) -> JobState | None:
        """The job's state, or ``None`` when none was submitted in this process."""
        with self._lock:
            job = self._jobs.get(track_id)
            return None if job is None else JobState(job.state, job.detail)

    # ---- the worker -----------------------------------------------------------------

    def _set(self, track_id: str, state: str, detail: str = "") -> None:
        with self._lock:
            self._jobs[track_id] = JobState(state, detail)

    def _work(self) -> None:
        while not self._stopped.is_set():
            track_id = self._queue.get()
            if track_id is None or self._stopped.is_set():
                return
            self._set(track_id, RUNNING)
            try:
                self._do(track_id)
            except subprocess.CalledProcessError:
                self._set(track_id, FAILED, "ffmpeg could not read this file as audio.")
            except subprocess.TimeoutExpired:
                self._set(track_id, FAILED, "cutting the rendition took too long.")
            except Exception:  # a job failing must not end the worker: logged, shown
                logger.exception("HLS rendition of track %s failed", track_id)
                self._set(track_id, FAILED, "the rendition could not be made (see the log).")
            else:
                self._set(track_id, READY)
