"""Media for the demo and the tests: synthesised tones, and HLS renditions via ffmpeg.

Nothing is downloaded: the demo's tracks are sine-wave melodies written as WAV by the
standard library. An HLS rendition is cut by Debian's ``ffmpeg`` when it is installed
(the demo skips HLS without it) and stored under ``hls/<track>/`` beside the track.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import struct
import subprocess
import tempfile
import wave
from pathlib import Path

from sqlalchemy.orm import Session

from veza_reference._db import Track
from veza_reference._services import Services

RATE = 22_050


def tone(notes: list[float], *, seconds_per_note: float = 0.5, volume: float = 0.3) -> bytes:
    """A mono 16-bit WAV playing ``notes`` (Hz) one after another."""
    frames = bytearray()
    for frequency in notes:
        count = int(RATE * seconds_per_note)
        for i in range(count):
            envelope = min(1.0, i / 400, (count - i) / 400)
            sample = volume * envelope * math.sin(2 * math.pi * frequency * i / RATE)
            frames += struct.pack("<h", int(sample * 32767))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def ffmpeg_available() -> bool:
    """Whether ``ffmpeg`` is on the PATH."""
    return shutil.which("ffmpeg") is not None


#: How much lower than the server's own CPU priority ffmpeg runs (``nice`` steps).
TRANSCODE_NICE = 10


def run_below_the_server(command: list[str], *, timeout: float) -> bytes:
    """Run ``command`` at a lower CPU priority than this process; returns its output.

    Why: a rendition keeps a core busy for seconds, on the machine where the server
    answers requests; every completed upload starts one. Niced, ffmpeg gets the CPU the
    server leaves, as batch work should. The priority is lowered right after the fork,
    by pid, not in a ``preexec_fn`` (unsafe in a threaded process).

    Raises:
        subprocess.CalledProcessError: The command exited with an error.
        subprocess.TimeoutExpired: It ran longer than ``timeout`` (it is killed).
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with contextlib.suppress(OSError):  # exited already, or not allowed: run as is
        niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + TRANSCODE_NICE)
        os.setpriority(os.PRIO_PROCESS, process.pid, niceness)
    try:
        output, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command, output, errors)
    return output


def publish_hls(
    services: Services, track_id: str, audio: bytes, *, segment_seconds: int = 2
) -> str:
    """Cut ``audio`` into an HLS rendition with ffmpeg, store it, link it to the track.

    Returns:
        The playlist's storage key.
    """
    prefix = f"hls/{track_id}"
    with tempfile.TemporaryDirectory(prefix="veza-hls-") as tmp:
        source = Path(tmp) / "source.wav"
        source.write_bytes(audio)
        ffmpeg = shutil.which("ffmpeg") or "ffmpeg"  # Debian's, from PATH, as the docs say
        run_below_the_server(
            [
                ffmpeg,
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(source),
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                "-f",
                "hls",
                "-hls_time",
                str(segment_seconds),
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
                str(Path(tmp) / "seg%03d.ts"),
                str(Path(tmp) / "index.m3u8"),
            ],
            timeout=120,
        )
        for path in sorted(Path(tmp).iterdir()):
            if path.name == "source.wav":
                continue
            content_type = (
                "application/vnd.apple.mpegurl" if path.suffix == ".m3u8" else "video/mp2t"
            )
            with path.open("rb") as stream:
                services.storage.put(f"{prefix}/{path.name}", stream, content_type=content_type)
    key = f"{prefix}/index.m3u8"
    with Session(services.engine, expire_on_commit=False) as session, session.begin():
        track = session.get(Track, track_id)
        if track is not None:
            track.hls_key = key
    return key
