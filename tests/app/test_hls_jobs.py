"""HLS renditions as a background job (issue 17, item 3).

Renditions were cut only at the first seed and only if ffmpeg was installed then:
installing it later never added them and uploads never got one. Now the app submits
every track that lacks a rendition when it starts, and each audio upload when it
completes, to one worker thread; ``GET /api/v1/hls/status`` shows the progress, and says
in words when ffmpeg is missing. The state machine of the jobs is property-tested with
a stand-in for ffmpeg's work; the rest runs Debian's ffmpeg for real.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy.orm import Session

from veza_reference._hls_jobs import FAILED, NO_FFMPEG, QUEUED, READY, RUNNING, HlsJobs


def _until(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Wait for ``predicate`` (a background job's end), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            msg = "the background job did not finish"
            raise AssertionError(msg)
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def cdn_off_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app with no seeded track; ffmpeg found on PATH."""
    from veza_reference import build_services
    from veza_reference._serve import start

    running = start(
        build_services(
            {
                "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("hls-jobs")),
                "VEZA_PORT": "0",
                "VEZA_WORKERS": "false",
                "VEZA_LOCAL_EDGE": "false",
                "VEZA_FAST_PASSWORD_HASHING": "true",
                "PATH": os.environ.get("PATH", ""),
            }
        )
    )
    yield running
    running.stop()


def _stored_track(services: Any, track_id: str, audio: bytes, content_type: str) -> None:
    from veza_reference._routes_media import add_track

    key = f"tracks/{track_id}.wav"
    services.storage.put(key, io.BytesIO(audio), content_type=content_type)
    add_track(
        services,
        key=key,
        title=track_id,
        owner_id="someone",
        price=199,
        content_type=content_type,
        size=len(audio),
        sha256=None,
        track_id=track_id,
    )


def _hls_key(services: Any, track_id: str) -> str | None:
    from veza_reference._db import Track

    with Session(services.engine) as session:
        track = session.get(Track, track_id)
        return None if track is None else track.hls_key


def test_ffmpeg_installed_later_then_a_restart_renders_what_is_missing(
    cdn_off_app: Any, ffmpeg: str
) -> None:
    from veza_reference._media import tone

    services = cdn_off_app.services
    _stored_track(services, "late-ffmpeg", tone([440.0, 494.0] * 3), "audio/wav")
    _stored_track(services, "not-audio", b"%PDF-1.7 not audio", "application/pdf")
    without = HlsJobs(services, ffmpeg=lambda: False)  # a start before ffmpeg was installed
    assert without.submit_missing() == 0
    status = without.status()
    assert status["ffmpeg"] is False and status["message"] == NO_FFMPEG
    assert _hls_key(services, "late-ffmpeg") is None

    restarted = HlsJobs(services)  # ffmpeg is on PATH now: the restart finds the track
    try:
        assert restarted.submit_missing() >= 1
        assert "not-audio" not in restarted.status()["jobs"]  # never handed to ffmpeg
        _until(lambda: restarted.status()["jobs"]["late-ffmpeg"]["state"] == READY)
    finally:
        restarted.stop()
    key = _hls_key(services, "late-ffmpeg")
    assert key == "hls/late-ffmpeg/index.m3u8"
    with services.storage.open(key) as reader:
        playlist = reader.read().decode()
    assert playlist.startswith("#EXTM3U") and ".ts" in playlist


def test_an_upload_gets_its_rendition_in_the_background(
    cdn_off_app: Any, ffmpeg: str, login: Any, new_user: Any
) -> None:
    from veza_reference._media import tone

    services = cdn_off_app.services
    user, password = new_user(services, "creator")
    client = login(cdn_off_app.url, user, password)
    audio = tone([330.0, 392.0, 440.0] * 2)
    begin = client.post(
        "/api/v1/uploads",
        json={
            "filename": "job.wav",
            "size": len(audio),
            "content_type": "audio/wav",
            "chunk_size": 256 * 1024,
            "sha256": hashlib.sha256(audio).hexdigest(),
        },
    )
    assert begin.status_code == 201, begin.text
    upload_id = begin.json()["upload_id"]
    for index in range(begin.json()["chunk_count"]):
        chunk = audio[index * 256 * 1024 : (index + 1) * 256 * 1024]
        sent = client.put(f"/api/v1/uploads/{upload_id}/chunks/{index}", content=chunk)
        assert sent.status_code == 200, sent.text
    done = client.post(f"/api/v1/uploads/{upload_id}/complete")
    assert done.status_code == 201, done.text
    track_id = done.json()["id"]
    assert done.json()["hls"] is False  # the answer did not wait for ffmpeg

    def state() -> str | None:
        job = httpx.get(cdn_off_app.url + "/api/v1/hls/status").json()["jobs"].get(track_id)
        return None if job is None else job["state"]

    assert state() in (QUEUED, RUNNING, READY)
    _until(lambda: state() == READY)
    assert client.get(f"/api/v1/tracks/{track_id}").json()["hls"] is True
    playlist = client.get(f"/api/v1/tracks/{track_id}/hls")
    assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
    assert httpx.get(cdn_off_app.url + "/api/v1/hls/status").json()["message"] == ""


def test_a_file_ffmpeg_cannot_read_fails_in_words_and_the_worker_goes_on(
    cdn_off_app: Any, ffmpeg: str
) -> None:
    from veza_reference._media import tone

    services = cdn_off_app.services
    _stored_track(services, "garbage", b"RIFF" + b"\x07" * 4000, "audio/wav")
    _stored_track(services, "after-garbage", tone([523.3] * 4), "audio/wav")
    jobs = HlsJobs(services)
    try:
        assert jobs.submit("garbage") and jobs.submit("after-garbage")
        _until(lambda: jobs.status()["jobs"]["after-garbage"]["state"] == READY)
        failed = jobs.status()["jobs"]["garbage"]
    finally:
        jobs.stop()
    assert failed == {"state": FAILED, "detail": "ffmpeg could not read this file as audio."}
    assert _hls_key(services, "garbage") is None
    assert _hls_key(services, "after-garbage") == "hls/after-garbage/index.m3u8"


# ---- the job states, property-tested with a stand-in for ffmpeg's work ---------------

TRACKS = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=60, deadline=None)
@given(
    submissions=st.lists(TRACKS, min_size=1, max_size=12),
    failing=st.sets(TRACKS),
)
def test_every_submitted_track_ends_ready_or_failed_and_never_runs_twice_at_once(
    submissions: list[str], failing: set[str]
) -> None:
    """Any order of submissions: each track ends in the state its work earned.

    While a track is queued or running a second submission is refused (no two ffmpeg
    runs write the same folder); a failing job never stops the ones after it.
    """
    running: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()
    gate = threading.Event()

    def work(track_id: str) -> None:
        gate.wait(5)  # hold the first job so that later submissions meet it in flight
        with lock:
            if track_id in running:
                overlaps.append(track_id)
            running.add(track_id)
        try:
            if track_id in failing:
                msg = "stand-in failure"
                raise RuntimeError(msg)
        finally:
            with lock:
                running.discard(track_id)

    jobs = HlsJobs(services=None, ffmpeg=lambda: True, work=work)  # type: ignore[arg-type]
    accepted = [jobs.submit(track_id) for track_id in submissions]
    # while the first job is held, every repeat of a track is refused
    first_seen = {t: submissions.index(t) for t in submissions}
    assert accepted == [first_seen[t] == i for i, t in enumerate(submissions)]
    gate.set()
    try:
        _until(
            lambda: all(j["state"] in (READY, FAILED) for j in jobs.status()["jobs"].values()),
            timeout=10,
        )
        final = {t: j["state"] for t, j in jobs.status()["jobs"].items()}
        again = jobs.submit(submissions[0])  # a finished track may be cut anew
    finally:
        jobs.stop()
    assert final == {t: FAILED if t in failing else READY for t in set(submissions)}
    assert overlaps == []
    assert again is True
    assert jobs.submit(submissions[0]) is False  # stopped: nothing new is taken


def test_off_means_nothing_runs() -> None:
    calls: list[str] = []
    jobs = HlsJobs(services=None, enabled=False, work=calls.append)  # type: ignore[arg-type]
    assert jobs.submit("x") is False and jobs.submit_missing() == 0
    assert jobs.status() == {
        "enabled": False,
        "ffmpeg": False,
        "message": "HLS renditions are off in this process.",
        "jobs": {},
    }
    assert calls == []


def test_transcoding_runs_below_the_servers_cpu_priority(tmp_path):
    """ffmpeg is batch work: it gets the CPU the server leaves (``run_below_the_server``)."""
    import os
    import sys

    from veza_reference._media import TRANSCODE_NICE, run_below_the_server

    script = "import os, time; time.sleep(0.3); print(os.getpriority(os.PRIO_PROCESS, 0))"
    output = run_below_the_server([sys.executable, "-c", script], timeout=30)
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + TRANSCODE_NICE)
    assert int(output) == expected


def test_a_failing_or_hanging_transcode_raises_and_leaves_no_process():
    import subprocess
    import sys

    import pytest

    from veza_reference._media import run_below_the_server

    with pytest.raises(subprocess.CalledProcessError) as failed:
        run_below_the_server([sys.executable, "-c", "import sys; sys.exit(3)"], timeout=30)
    assert failed.value.returncode == 3
    with pytest.raises(subprocess.TimeoutExpired):
        run_below_the_server([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
