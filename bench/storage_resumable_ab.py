"""Resumable uploads (local disk) against an earlier commit, interleaved, in one run.

Run: ``uv run python bench/storage_resumable_ab.py [--against COMMIT] [--rounds N]``
(default: ``58d809a``, the main this work started from; 3 rounds; 1 GiB in 8 MiB chunks,
``VEZA_BENCH_MIB`` changes the size).

The earlier ``packages/veza-storage/src`` is extracted with ``git archive`` and put first
on ``PYTHONPATH`` of its child processes. Each round runs both, in alternating order,
each in its own process after ``sync`` and 1.5 s, and prints the time of the chunk phase
(``put_chunk`` of every chunk, the body reads included as a server would do them) and
of ``complete``, and the child's user and system CPU seconds. On a shared machine wall
times move by 2x between runs; the CPU seconds say what each version costs.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

MiB = 1024 * 1024

CHILD = r"""
import os, resource, sys, time
from veza_storage import InMemoryUploadSessionStore, LocalStorage, ResumableUploads
source, root = sys.argv[1], sys.argv[2]
uploads = ResumableUploads(LocalStorage(root), InMemoryUploadSessionStore())
size, chunk = os.path.getsize(source), 8 * 1024 * 1024
started = time.perf_counter()
session = uploads.begin("bench/ab.bin", size, chunk_size=chunk, content_type="x/y")
with open(source, "rb", buffering=0) as f:
    index = 0
    while data := f.read(chunk):
        uploads.put_chunk(session, index, data=data)
        index += 1
chunks = time.perf_counter()
uploads.complete(session)
done = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(chunks - started, done - chunks, usage.ru_utime, usage.ru_stime)
"""


def main() -> None:
    arguments = sys.argv[1:]
    against = arguments[arguments.index("--against") + 1] if "--against" in arguments else "58d809a"
    rounds = int(arguments[arguments.index("--rounds") + 1]) if "--rounds" in arguments else 3
    size = int(os.environ.get("VEZA_BENCH_MIB", "1024")) * MiB
    with tempfile.TemporaryDirectory(prefix="veza-ab-") as work_name:
        work = Path(work_name)
        archive = subprocess.run(
            ["git", "archive", against, "packages/veza-storage/src"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(work / "old", filter="data")
        source = work / "source.bin"
        with source.open("wb") as out:
            block = os.urandom(4 * MiB)
            for offset in range(0, size, len(block)):
                out.write(block[: min(len(block), size - offset)])
        versions = {
            f"before ({against})": {"PYTHONPATH": str(work / "old/packages/veza-storage/src")},
            "this tree": {},
        }
        runs: dict[str, list[list[float]]] = {name: [] for name in versions}
        for round_number in range(rounds):
            order = list(versions) if round_number % 2 == 0 else list(reversed(versions))
            for name in order:
                subprocess.run(["rm", "-rf", str(work / "root")], check=True)
                subprocess.run(["sync"], check=True)
                time.sleep(1.5)
                env = {**os.environ, **versions[name]}
                output = subprocess.run(
                    [sys.executable, "-c", CHILD, str(source), str(work / "root")],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                ).stdout
                runs[name].append([float(x) for x in output.split()])
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(
            f"# resumable uploads, {size // MiB} MiB in 8 MiB chunks, {rounds} rounds, load {load}"
        )
        header = ("version", "chunks s", "complete s", "total s", "user s", "sys s")
        print("{:24} {:>9} {:>10} {:>8} {:>7} {:>6}".format(*header))
        for name, results in runs.items():
            for chunks, complete, user, system in results:
                total = chunks + complete
                print(
                    f"{name:24} {chunks:9.2f} {complete:10.2f} {total:8.2f} "
                    f"{user:7.2f} {system:6.2f}"
                )
            total = statistics.median(r[0] + r[1] for r in results)
            user = statistics.median(r[2] for r in results)
            print(f"{name + ' median':24} {'':9} {'':10} {total:8.2f} {user:7.2f}")


if __name__ == "__main__":
    main()
