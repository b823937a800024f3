"""``veza-demo``: the README's first line. Embedded defaults, seeded data, one URL.

It starts the app on the embedded defaults (SQLite and local storage in ``./veza-demo``,
the local edge with a generated Bunny key, the sandbox payment provider), seeds a few
tracks of synthesised audio (an HLS rendition too when ffmpeg is installed), prints the
URL and serves until Ctrl-C. The same code paths run in production: set
``VEZA_DATABASE_URL``, ``VEZA_STORAGE_BACKEND=s3``, ``CDN_*``, ``HYPERSWITCH_*`` and
``STRIPE_*`` and nothing else changes.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_reference._config import MaskedMapping
from veza_reference._db import Track
from veza_reference._media import ffmpeg_available, publish_hls, tone
from veza_reference._routes_media import add_track
from veza_reference._serve import Running, settle_heap, start
from veza_reference._services import Services, build_services
from veza_reference._users import Role

DEMO_USERS = [("listener", Role.BUYER), ("artist-ada", Role.CREATOR), ("admin", Role.ADMIN)]
SEED = [
    ("Morning scale", "artist-ada", [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3]),
    ("Falling fifths", "artist-ada", [659.3, 440.0, 587.3, 392.0, 523.3, 349.2, 493.9, 329.6]),
    ("Low drone", "artist-bo", [110.0, 110.0, 146.8, 146.8, 110.0, 110.0, 164.8, 164.8]),
]


def seed(services: Services, *, hls: bool = True) -> list[str]:
    """Add the demo tracks once (idempotent); returns their ids."""
    ids = []
    for index, (title, owner, notes) in enumerate(SEED):
        track_id = f"demo-{index + 1}"
        ids.append(track_id)
        with Session(services.engine) as session:
            if session.get(Track, track_id) is not None:
                continue
        audio = tone(notes)
        key = f"tracks/{track_id}.wav"
        services.storage.put(key, io.BytesIO(audio), content_type="audio/wav")
        add_track(
            services,
            key=key,
            title=title,
            owner_id=owner,
            price=199 + 100 * index,
            content_type="audio/wav",
            size=len(audio),
            sha256=None,
            track_id=track_id,
        )
        if hls and ffmpeg_available():
            publish_hls(services, track_id, audio)
    return ids


def seed_users(services: Services) -> MaskedMapping:
    """Create the demo's buyer, creator and admin once; returns ``{user: password}`` of new ones.

    The passwords are random and shown once, by ``veza-demo``; the accounts are marked
    ``demo`` so a production start-up refuses a database that holds them.

    Raises:
        RuntimeError: In production (``APP_ENV=production``): no known credentials there.
    """
    if services.config.production:
        msg = "veza-demo accounts are for development only (APP_ENV=production is set)"
        raise RuntimeError(msg)
    created = MaskedMapping()
    for user_id, role in DEMO_USERS:
        if services.users.get(user_id) is None:
            password = secrets.token_urlsafe(12)
            services.users.create(user_id, password, role, demo=True)
            created[user_id] = password
    return created


def demo_environment(base: Mapping[str, str], data_dir: str, port: int) -> dict[str, str]:
    """The environment of the demo: the caller's, with the demo's defaults under it."""
    env = dict(base)
    env.setdefault("VEZA_DATA_DIR", data_dir)
    env.setdefault("VEZA_PORT", str(port))
    env.setdefault("VEZA_WORKER_INTERVAL", "3")
    return env


def run_demo(env: Mapping[str, str]) -> Running:
    """Build, seed and start (the tests call this too).

    The passwords of newly created demo accounts are in ``services.extra["demo_passwords"]``
    (kept out of the services' repr).
    """
    services = build_services(env)
    services.extra["demo_passwords"] = seed_users(services)
    seed(services, hls=False)  # renditions: a background job of the app (_hls_jobs)
    return start(services)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``veza-demo``."""
    parser = argparse.ArgumentParser(prog="veza-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="veza-demo", help="where the demo keeps its files")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--once", action="store_true", help="start, print the URL, stop (smoke test)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    running = run_demo(demo_environment(os.environ, args.data_dir, args.port))
    settle_heap()  # start-up's objects out of the full collection's way (see there)
    config = running.services.config
    with Session(running.services.engine) as session:
        tracks = session.scalar(sa.select(sa.func.count()).select_from(Track))
    print(f"\nveza demo is running: {running.url}/", flush=True)
    print(
        f"  {tracks} tracks, local edge {running.edge_url or 'off'}, "
        f"sandbox payments {'on' if running.services.sandbox else 'off'}"
    )
    if "VEZA_ADMIN_TOKEN" in config.generated:  # a secret: written to a file, never printed
        token_file = config.data_dir / "admin-token"
        token_file.write_text(config.admin_token.reveal() + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        print(f"  admin token (this run only) in {token_file}")
    passwords = running.services.extra["demo_passwords"]
    if passwords:  # shown once, at creation: development accounts with random passwords
        print("  demo accounts (shown once; development only):")
        for user_id, role in DEMO_USERS:
            if user_id in passwords:
                print(f"    {role.value:8} {user_id:11} password {passwords[user_id]}")
    else:
        names = ", ".join(u for u, _ in DEMO_USERS)
        print(f"  demo accounts: {names} (their passwords were shown when created)")
    print("  Ctrl-C stops it.\n", flush=True)
    if args.once:
        running.stop()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    running.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
