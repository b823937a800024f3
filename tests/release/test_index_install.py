"""Every package, published to a real index server on 127.0.0.1, installs BY NAME.

What a user does after a release: ``pip install --index-url <index> veza-cdn``, in a
fresh virtual environment, extras included, then import the package and run its CLI.
The wheels and sdists are built from this checkout, uploaded with twine to a pypiserver
started by the test, and installed with the venv's own pip. Third-party dependencies
reach PyPI through the server's fallback (a real private index's behaviour), pinned to
uv.lock by a constraints file; every ``veza-*`` distribution must come from the local
server (pip's installation report says where each one was downloaded from).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
# development-only extras are not what a user installs
DEV_EXTRAS = {"test", "tests", "dev"}


def _project(pkg_dir: Path) -> dict[str, object]:
    data = tomllib.loads((pkg_dir / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


def _version(pkg_dir: Path) -> str:
    (version_file,) = pkg_dir.glob("src/*/_version.py")
    match = re.search(r'__version__ = "([^"]+)"', version_file.read_text(encoding="utf-8"))
    assert match
    return match.group(1)


def _uv() -> str:
    uv = os.environ.get("VEZA_UV") or shutil.which("uv")
    if not uv:
        pytest.fail("uv is needed to build the wheels: run under nox or put uv on PATH")
    return uv


def _get(base: str, path: str) -> tuple[int, str]:
    """GET over plain HTTP from the local server (never any other host)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for pkg_dir in PACKAGE_DIRS:
        # sdist, then the wheel built from it: what a release uploads
        subprocess.run([_uv(), "build", "--quiet", "--out-dir", str(out), str(pkg_dir)], check=True)
    return out


def _wait_healthy(server: subprocess.Popen[bytes], base: str) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if _get(base, "/health")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def index_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A pypiserver on 127.0.0.1 that accepts uploads without authentication."""
    packages = tmp_path_factory.mktemp("index")
    log = (packages.parent / "pypiserver.log").open("w")
    for _attempt in range(5):  # another process may take the free port before the server
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "pypiserver", "run", "--host", "127.0.0.1", "--port",
             str(port), "-a", ".", "-P", ".", str(packages)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        if _wait_healthy(server, base):
            break
        server.kill()
        server.wait()
    else:
        pytest.fail(f"pypiserver did not start: {(packages.parent / 'pypiserver.log').read_text()}")
    try:
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def published(dist_dir: Path, index_url: str) -> str:
    """Upload every sdist and wheel with twine, as a release does; return the simple URL."""
    files = sorted(dist_dir.glob("*.whl")) + sorted(dist_dir.glob("*.tar.gz"))
    assert len(files) == 2 * len(PACKAGE_DIRS)
    env = {**os.environ, "TWINE_NON_INTERACTIVE": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--disable-progress-bar",
            "--repository-url",
            f"{index_url}/",
            "-u",
            "veza",
            "-p",
            "unused",
            *map(str, files),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    simple = f"{index_url}/simple/"
    status, listing = _get(index_url, "/simple/")
    assert status == 200
    for pkg_dir in PACKAGE_DIRS:
        assert str(_project(pkg_dir)["name"]) in listing
    return simple


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Third-party versions pinned to uv.lock, as every nox session pins them."""
    target = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    subprocess.run(
        [
            _uv(),
            "export",
            "--locked",
            "--all-packages",
            "--all-extras",
            "--all-groups",
            "--no-emit-workspace",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--quiet",
            "--project",
            str(ROOT),
            "-o",
            str(target),
        ],
        check=True,
    )
    return target


def test_every_package_installs_by_name_from_the_index(
    published: str, constraints: Path, tmp_path: Path
):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # veza-ledger first: its [payments] extra must pull veza-payments from the index by name
    ordered = sorted(PACKAGE_DIRS, key=lambda d: d.name != "veza-ledger")
    for pkg_dir in ordered:
        dist = str(_project(pkg_dir)["name"])
        extras = sorted(set(_project(pkg_dir).get("optional-dependencies", {})) - DEV_EXTRAS)  # type: ignore[call-overload]
        requirement = f"{dist}[{','.join(extras)}]" if extras else dist
        report = tmp_path / f"{dist}.json"
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--index-url",
                published,
                "-c",
                str(constraints),
                "--report",
                str(report),
                requirement,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert install.returncode == 0, f"pip install {requirement}:\n{install.stderr}"
        for item in json.loads(report.read_text(encoding="utf-8"))["install"]:
            name = item["metadata"]["name"]
            if name.startswith("veza-"):
                url = item["download_info"]["url"]
                assert url.startswith(published.removesuffix("simple/")), (name, url)
                assert url.endswith(".whl"), (name, url)
        # import it from the venv (not from this checkout) and check its version
        import_name = dist.replace("-", "_")
        probe = subprocess.run(
            [
                str(python),
                "-I",
                "-c",
                f"import {import_name} as m; print(m.__version__); print(m.__file__)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        version, location = probe.stdout.split()
        assert version == _version(pkg_dir)
        assert location.startswith(str(venv)), location
        # its command line, from the venv's bin/
        for script in _project(pkg_dir).get("scripts", {}):  # type: ignore[attr-defined]
            cli = venv / "bin" / script
            helped = subprocess.run(
                [str(cli), "--help"], capture_output=True, text=True, check=False, cwd=tmp_path
            )
            assert helped.returncode == 0, f"{script} --help:\n{helped.stderr}"
            assert "usage:" in helped.stdout.lower()
            if "--version" in helped.stdout:
                shown = subprocess.run(
                    [str(cli), "--version"], capture_output=True, text=True, check=True
                )
                assert _version(pkg_dir) in shown.stdout + shown.stderr
    # the ledger's extra brought veza-payments from the index before it was asked for
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"] for p in json.loads(listed.stdout)}
    assert {str(_project(d)["name"]) for d in PACKAGE_DIRS} <= names
