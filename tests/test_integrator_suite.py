"""The example integrator suite in the docs runs green, and draws what the docs say.

``docs/examples/integrator`` is a small shop built on veza with its own pytest
configuration (nothing of veza's test setup): its property-based tests use the
packages' hypothesis strategies against the packages' fakes. It runs here in a
subprocess, as an integrator would run it, and the examples drawn per test are read
from hypothesis's statistics.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GENERATED = r"test_shop\.py::(\w+):\s+- during generate phase.*?- (\d+) passing"
SUITE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "integrator"
TESTS = {
    "test_a_retried_checkout_charges_once": "idempotency_keys, money",
    "test_each_paid_event_marks_its_order_once": "webhook_sequences",
    "test_every_catalogue_path_gets_a_url_the_edge_accepts": "url_paths, expiries",
    "test_an_album_token_never_opens_another_path": "hostile_paths",
    "test_uploads_round_trip": "object_keys",
    "test_hostile_upload_keys_are_refused_and_write_nothing": "hostile_keys",
}


def test_the_integrator_suite_passes_with_every_strategy_drawn():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(SUITE / "pytest.ini"),
            "--rootdir",
            str(SUITE),
            str(SUITE),
            "-q",
            "--hypothesis-show-statistics",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=SUITE,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{len(TESTS)} passed" in result.stdout
    drawn = {
        name: int(count)
        for name, count in re.findall(
            r"test_shop\.py::(\w+):\s+- during generate phase.*?- (\d+) passing",
            result.stdout,
            re.S,
        )
    }
    assert set(drawn) == set(TESTS)
    assert all(count >= 60 for count in drawn.values()), drawn
