"""``/healthz`` latency of the reference app, idle beside loaded, in one run.

Run: ``uv run python bench/healthz.py`` (PostgreSQL on 127.0.0.1:5432 or
``VEZA_TEST_DATABASE_URL``).

The app runs in its own process (``veza-reference``: uvicorn, one worker), as in
production. A probe in this process sends ``GET /healthz`` one after the other on a
kept-alive connection and times each answer, with the app idle and, in the same run,
while other processes load it: ``VEZA_BENCH_UPLOADERS`` creators each uploading a
1.3 MiB track in 256 KiB chunks again and again (begin, PUT chunks, complete), and one
process sending bursts of signed 64 KiB Hyperswitch webhooks (each verified, parsed and
written to the webhook log on PostgreSQL). A route that ran storage or database work on
the event loop would hold every ``/healthz`` behind it: the loaded p99 would be many
times the idle one.

The two phases are interleaved: ``VEZA_BENCH_ROUNDS`` rounds (5 by default) of idle
probes (the load processes paused between two requests, none in flight), then loaded
probes (the load resumed). On a machine shared with other jobs, whose load changes
from second to second, both phases then see the same machine; the output prints the
load average at the start and the end of the run.

Goal (issue 16): loaded p99 within 2x of idle. On a machine with fewer cores than
processes, the load competes with the probe for the CPU as well; the output prints the
CPU count beside the numbers, and a *control* row: a bare FastAPI ``/healthz`` in its
own uvicorn process, sent no load, probed in the same rounds right after the app. Its
loaded/idle ratio is what the machine's load alone does to a server that has nothing
to do; the app's ratio beyond it is the app's own.

The load generators are not the server under test: they run at a lower CPU priority
(``nice`` ``VEZA_BENCH_LOAD_NICE``, 10 by default; 0 gives them the app's priority), so
on a small machine the kernel gives a core to the app (and to the probe and PostgreSQL)
before it gives one to the clients, as it would if the clients were on other machines.
The app, the probe and PostgreSQL keep the default priority. The output says which
priority the load had.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import sqlalchemy as sa
from _ports import free_port

from veza_payments import SIGNATURE_HEADER, sign_payload
from veza_payments.testing import FakeHyperswitch
from veza_reference._media import tone
from veza_reference._users import Users

BASE_URL = os.environ.get(
    "VEZA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PROBES = int(os.environ.get("VEZA_BENCH_PROBES", "1500"))
UPLOADERS = int(os.environ.get("VEZA_BENCH_UPLOADERS", "3"))
LOAD_NICE = int(os.environ.get("VEZA_BENCH_LOAD_NICE", "10"))
ROUNDS = int(os.environ.get("VEZA_BENCH_ROUNDS", "5"))
BURST = 20  # webhooks per burst
CHUNK = 256 * 1024


CONTROL = r"""
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()

@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def probe(url: str, count: int) -> list[float]:
    """Milliseconds of ``count`` sequential ``GET /healthz``.

    The probe's own garbage collector is off while it times: one full pass of this
    process (sqlalchemy, veza and httpx loaded) took 85-97 ms and was the idle phase's
    maximum in every run until this was done, a pause of the instrument, not the app.
    """
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(50):  # warm the connection
            client.get("/healthz")
        gc.collect()
        gc.disable()
        try:
            timings = _timed(client, count)
        finally:
            gc.enable()
    return timings


def _timed(client: httpx.Client, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get("/healthz")
        timings.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"/healthz answered {answer.status_code}")
    return timings


class Gate:
    """Pauses the load processes between two requests (``go`` cleared) and stops them.

    ``busy`` counts the requests in flight: a loader counts itself in, then checks
    ``go``, so once ``go`` is cleared and ``busy`` is 0 no load request is running.
    """

    def __init__(self, context: BaseContext) -> None:
        self.go: Event = context.Event()
        self.stop: Event = context.Event()
        self.busy = context.Value("i", 0)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for ``go``, then hold one place in ``busy`` for one request."""
        while True:
            with self.busy.get_lock():
                self.busy.value += 1
            if self.go.is_set() or self.stop.is_set():
                break
            with self.busy.get_lock():
                self.busy.value -= 1
            self.go.wait(0.5)
        try:
            yield
        finally:
            with self.busy.get_lock():
                self.busy.value -= 1

    def pause(self) -> None:
        """Clear ``go`` and wait until no load request is in flight."""
        self.go.clear()
        deadline = time.monotonic() + 60
        while self.busy.value:
            if time.monotonic() > deadline:
                raise SystemExit("the load processes never paused")
            time.sleep(0.01)


def uploader(url: str, account: tuple[str, str], audio: bytes, gate: Gate, done: object) -> None:
    """Upload ``audio`` in chunks until stopped; counts completed uploads in ``done``."""
    user, password = account
    os.nice(LOAD_NICE)  # a load generator, not the server under test (see the docstring)
    with httpx.Client(base_url=url, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"user_id": user, "password": password})
        login.raise_for_status()
        client.headers["x-csrf-token"] = login.json()["csrf_token"]
        while not gate.stop.is_set():
            with gate.turn():
                begin = client.post(
                    "/api/v1/uploads",
                    json={
                        "filename": "bench.wav",
                        "size": len(audio),
                        "content_type": "audio/wav",
                        "chunk_size": CHUNK,
                        "title": "bench",
                    },
                )
            begin.raise_for_status()
            upload = begin.json()
            for index in range(upload["chunk_count"]):
                with gate.turn():
                    client.put(
                        f"/api/v1/uploads/{upload['upload_id']}/chunks/{index}",
                        content=audio[index * CHUNK : (index + 1) * CHUNK],
                    ).raise_for_status()
            with gate.turn():
                answer = client.post(f"/api/v1/uploads/{upload['upload_id']}/complete")
            answer.raise_for_status()
            with done.get_lock():  # type: ignore[attr-defined]
                done.value += 1  # type: ignore[attr-defined]


def webhooks(url: str, key: str, gate: Gate, done: object) -> None:
    """Bursts of signed 64 KiB webhooks until stopped; counts 2xx answers in ``done``."""
    pad = "x" * (65_536 - 200)
    os.nice(LOAD_NICE)  # a load generator, not the server under test (see the docstring)
    with httpx.Client(base_url=url, timeout=60) as client:
        while not gate.stop.is_set():
            for _ in range(BURST):
                body = json.dumps(
                    {
                        "event_id": f"evt_bench_{uuid.uuid4().hex}",
                        "event_type": "mandate_revoked",
                        "content": {"type": "mandate_details", "object": {"pad": pad}},
                    }
                ).encode()
                with gate.turn():
                    answer = client.post(
                        "/webhooks/hyperswitch",
                        content=body,
                        headers={
                            "content-type": "application/json",
                            SIGNATURE_HEADER: sign_payload(body, key),
                        },
                    )
                if not 200 <= answer.status_code < 300:
                    raise SystemExit(f"webhook answered {answer.status_code}: {answer.text[:200]}")
                with done.get_lock():  # type: ignore[attr-defined]
                    done.value += 1  # type: ignore[attr-defined]
            time.sleep(0.05)  # a burst, then a breath, as a provider's retries come


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the app never answered:\n{log.read_text(errors='replace')[-3000:]}")


def main() -> None:
    name = f"veza_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = sa.make_url(BASE_URL).set(database=name).render_as_string(hide_password=False)
    data = Path(tempfile.mkdtemp(prefix="veza-bench-healthz-"))
    fake = FakeHyperswitch().start()  # the app's provider; it calls nothing during the run
    webhook_key = secrets.token_urlsafe(32)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "VEZA_DATA_DIR": str(data),
        "VEZA_PORT": str(port),
        "VEZA_DATABASE_URL": database_url,
        "VEZA_WORKERS": "0",
        "VEZA_LOCAL_EDGE": "0",
        "VEZA_LOGIN_RATE": "100/60",
        "VEZA_PAYMENTS_SANDBOX": "0",
        "HYPERSWITCH_API_KEY": fake.api_key,
        "HYPERSWITCH_BASE_URL": fake.url,
        "HYPERSWITCH_WEBHOOK_KEYS": webhook_key,
    }
    log = data / "app.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from veza_reference._serve import main; raise SystemExit(main())",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    control_url = f"http://127.0.0.1:{free_port()}"
    control_log = data / "control.log"
    with control_log.open("wb") as out:
        control = subprocess.Popen(  # same stack, no load sent to it: the machine's share
            [sys.executable, "-c", CONTROL, control_url.rsplit(":", 1)[1]],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    context = multiprocessing.get_context("spawn")  # fresh interpreters, no forked state
    gate = Gate(context)
    gate.go.set()
    loaders: list[multiprocessing.process.BaseProcess] = []
    uploads = context.Value("i", 0)
    delivered = context.Value("i", 0)
    try:
        _wait_healthy(url, server, log)
        _wait_healthy(control_url, control, control_log)
        engine = sa.create_engine(database_url)
        users = Users(engine)
        accounts = []
        for index in range(UPLOADERS):
            password = secrets.token_urlsafe(16)
            users.create(f"bench-creator-{index}", password, "creator")
            accounts.append((f"bench-creator-{index}", password))
        engine.dispose()
        audio = tone([330.0, 440.0] * 15)
        load_before = os.getloadavg()
        for user, password in accounts:
            loaders.append(
                context.Process(target=uploader, args=(url, (user, password), audio, gate, uploads))
            )
        loaders.append(context.Process(target=webhooks, args=(url, webhook_key, gate, delivered)))
        for process in loaders:
            process.start()
        deadline = time.monotonic() + 120  # spawned interpreters import veza first
        while delivered.value == 0 or (UPLOADERS and uploads.value < UPLOADERS):
            if time.monotonic() > deadline:
                raise SystemExit("the load processes never got going")
            time.sleep(0.1)
        idle: list[float] = []
        loaded: list[float] = []
        control_idle: list[float] = []
        control_loaded: list[float] = []
        elapsed, done_uploads, done_webhooks = 0.0, 0, 0
        for _ in range(ROUNDS):
            gate.pause()
            idle += probe(url, PROBES // ROUNDS)
            control_idle += probe(control_url, PROBES // ROUNDS)
            gate.go.set()
            time.sleep(0.5)  # the load in full swing again: every loader back in a request
            before = (uploads.value, delivered.value)
            started = time.monotonic()
            loaded += probe(url, PROBES // ROUNDS)
            elapsed += time.monotonic() - started
            done_uploads += uploads.value - before[0]  # while the app was probed
            done_webhooks += delivered.value - before[1]
            control_loaded += probe(control_url, PROBES // ROUNDS)
        load_after = os.getloadavg()
    finally:
        gate.stop.set()
        gate.go.set()
        for process in loaders:
            if process.pid is None:
                continue
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
        control.terminate()
        control.wait(timeout=20)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        fake.stop()
        shutil.rmtree(data, ignore_errors=True)
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    dead = [p.exitcode for p in loaders if p.exitcode not in (0, None)]
    if dead:
        raise SystemExit(f"a load process failed (exit codes {dead})")
    rows = [
        ("idle", idle),
        ("loaded", loaded),
        ("control idle", control_idle),
        ("control loaded", control_loaded),
    ]
    print(
        f"# /healthz latency: {platform.python_implementation()} {sys.version.split()[0]}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; app in its own process (uvicorn, "
        f"1 worker, PostgreSQL); {PROBES // ROUNDS * ROUNDS} sequential probes per phase, "
        f"in {ROUNDS} rounds of idle (load paused, none in flight) then loaded"
    )
    print(
        f"# load: {UPLOADERS} uploader processes ({len(audio) / 2**20:.1f} MiB tracks, "
        f"256 KiB chunks) + 1 process of {BURST}-webhook bursts (64 KiB, signed); "
        f"load processes at nice {LOAD_NICE} (app, probe and PostgreSQL at nice 0)"
    )
    print(f"{'phase':15} {'p50':>9} {'p99':>9} {'max':>9}")
    for label, values in rows:
        print(
            f"{label:15} {statistics.median(values):7.2f}ms {_percentile(values, 0.99):7.2f}ms "
            f"{max(values):7.2f}ms"
        )
    ratio = _percentile(loaded, 0.99) / _percentile(idle, 0.99)
    print(
        f"loaded p99 / idle p99: {ratio:.2f} (goal <= 2); during the loaded phase "
        f"({elapsed:.1f} s): {done_uploads} uploads completed, "
        f"{done_webhooks} webhooks accepted"
    )
    control_ratio = _percentile(control_loaded, 0.99) / _percentile(control_idle, 0.99)
    print(
        f"control (a bare FastAPI /healthz, no load sent to it) loaded p99 / idle p99: "
        f"{control_ratio:.2f}: what the machine's load alone does to an idle server"
    )
    print(
        "# load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; at the end: "
        + ", ".join(f"{v:.2f}" for v in load_after)
    )


if __name__ == "__main__":
    main()
