"""A started app keeps its start-up objects out of the garbage collector's full pass.

The cyclic collector's generation-2 pass walks every tracked object with every thread
of the process stopped, the event loop included. ``bench/healthz.py`` caught one pass
of 103 ms on a started app. ``settle_heap`` (called by ``veza-reference`` and
``veza-demo`` once the server answers) freezes what start-up left alive, so a full
pass walks only what the app allocated since.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import gc, json, os, sys
from veza_reference import build_services
from veza_reference._serve import settle_heap, start

running = start(build_services({
    "VEZA_DATA_DIR": sys.argv[1], "VEZA_PORT": "0", "VEZA_LOCAL_EDGE": "false",
    "VEZA_WORKERS": "false", "VEZA_FAST_PASSWORD_HASHING": "true",
    "PATH": os.environ.get("PATH", ""),
}))
try:
    if sys.argv[2] == "settle":
        settle_heap()
    gc.collect()  # what the full pass walks from now on is generation 2
    print(json.dumps({"walked": len(gc.get_objects(generation=2)),
                      "frozen": gc.get_freeze_count()}))
finally:
    running.stop()
"""


def _heap(tmp_path: Path, mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / mode), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ},
    )
    figures: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def test_a_full_collection_walks_a_small_part_of_a_started_app(tmp_path: Path) -> None:
    plain, settled = _heap(tmp_path, "plain"), _heap(tmp_path, "settle")
    # a started app: far more objects than any request allocates
    assert plain["walked"] > 50_000
    assert plain["frozen"] == 0
    # after settle_heap, the full pass walks under a tenth of what it walked before
    assert settled["walked"] * 10 < plain["walked"]
    assert settled["frozen"] > 50_000
