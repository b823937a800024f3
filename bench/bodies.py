"""Hostile request bodies against the reference app: the server's memory must stay flat.

Run: ``nox -s bench -- bodies`` (or ``uv run python bench/bodies.py``).

The reference app runs in a process of its own (embedded defaults: SQLite, local
storage, the sandbox provider); this process attacks it over raw sockets on loopback
and reads the server's resident set (``VmRSS``/``VmHWM`` in ``/proc/<pid>/status``).
Every row sends 100 requests, each announcing or streaming a 100 MB body, to a route
that needs no login:

* ``POST /webhooks/hyperswitch`` with ``Content-Length: 100000000`` (refused before any
  byte is read) and with ``Transfer-Encoding: chunked`` (no length: the limit is found
  while streaming, at 64 KiB + 1);
* ``PUT /api/v1/uploads/<unknown>/chunks/0`` with a 100 MB body (refused before the
  body: 401 for an anonymous caller, 404 for an unknown upload);

each once sequentially and once 6 at a time. The client keeps writing until the server
answers or closes, as an attacker would, so a server that read bodies whole would grow by
the body size per request in flight (the finding of issue 12: +177 MiB for one 100 MB
webhook, +1 GiB for six 200 MB bodies).

Target: the server's peak RSS grows by at most 16 MiB over its warmed-up baseline.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BODY = 100_000_000
BLOCK = b"x" * 65_536
REQUESTS = int(os.environ.get("VEZA_BENCH_REQUESTS", "100"))
TARGET_MIB = 16

SERVER = textwrap.dedent(
    """
    import os, sys, time
    from veza_reference import build_services
    from veza_reference._serve import start
    running = start(build_services(dict(os.environ)))
    print(running.url, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    running.stop()
    """
)


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0])
    return out


def _reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def attack(host: str, port: int, head: bytes, *, chunked: bool) -> str:
    """Send one hostile request; keep writing the body until the server answers or closes."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        status = "closed"
        sock.settimeout(0.0)
        try:
            while sent < BODY:
                piece = BLOCK
                frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                sock.settimeout(10)
                sock.sendall(frame)
                sent += len(piece)
                sock.settimeout(0.0)
                try:
                    first = sock.recv(64)
                except BlockingIOError:
                    continue
                status = first.split(b" ", 2)[1].decode() if first else "closed"
                break
        except (BrokenPipeError, ConnectionResetError):
            pass
        if status == "closed":
            sock.settimeout(2)
            try:
                first = sock.recv(64)
                status = first.split(b" ", 2)[1].decode() if first else "closed"
            except OSError:
                pass
        return f"{status} after {sent / 1_048_576:.1f} MiB"


def heads(host: str, port: int) -> dict[str, tuple[bytes, bool]]:
    base = f"Host: {host}:{port}\r\nContent-Type: application/json\r\n"
    return {
        "webhook, Content-Length 100 MB": (
            (
                f"POST /webhooks/hyperswitch HTTP/1.1\r\n{base}Content-Length: {BODY}\r\n\r\n"
            ).encode(),
            False,
        ),
        "webhook, chunked 100 MB": (
            (
                f"POST /webhooks/hyperswitch HTTP/1.1\r\n{base}Transfer-Encoding: chunked\r\n\r\n"
            ).encode(),
            True,
        ),
        "chunk to an unknown upload, 100 MB": (
            (
                f"PUT /api/v1/uploads/no-such-upload/chunks/0 HTTP/1.1\r\n{base}"
                f"Content-Length: {BODY}\r\n\r\n"
            ).encode(),
            False,
        ),
    }


def main() -> None:
    data = tempfile.mkdtemp(prefix="veza-bench-bodies-")
    env = {
        **os.environ,
        "VEZA_DATA_DIR": data,
        "VEZA_PORT": "0",
        "VEZA_WORKERS": "false",
        "VEZA_FAST_PASSWORD_HASHING": "true",
    }
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    url = server.stdout.readline().strip()
    host, port = url.removeprefix("http://").split(":")
    rows = []
    try:
        requests = heads(host, int(port))
        for head, chunked in requests.values():  # warm every route once
            attack(host, int(port), head, chunked=chunked)
        time.sleep(0.5)
        for label, (head, chunked) in requests.items():
            for mode, workers in (("sequential", 1), ("6 concurrent", 6)):
                base = _status(server.pid)["VmRSS"]
                _reset_peak(server.pid)
                started = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    futures = [
                        pool.submit(attack, host, int(port), head, chunked=chunked)
                        for _ in range(REQUESTS)
                    ]
                    answers = [f.result() for f in futures]
                elapsed = time.perf_counter() - started
                peak = _status(server.pid)["VmHWM"]
                statuses = sorted({a.split()[0] for a in answers})
                rows.append((label, mode, (peak - base) / 1024, elapsed, statuses, answers[0]))
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    print(
        f"# hostile bodies: {platform.python_implementation()} {sys.version.split()[0]}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {REQUESTS} requests per row"
    )
    print(f"{'route':38} {'mode':13} {'peak RSS growth':>16} {'time':>8}  statuses / first")
    for label, mode, growth, elapsed, statuses, first in rows:
        print(
            f"{label:38} {mode:13} {growth:>12.1f} MiB {elapsed:>7.1f}s  "
            f"{','.join(statuses)} / {first}"
        )
    worst = max(r[2] for r in rows)
    verdict = "met" if worst <= TARGET_MIB else "NOT met"
    print(f"worst peak growth {worst:.1f} MiB (target <= {TARGET_MIB} MiB: {verdict})")


if __name__ == "__main__":
    main()
