"""The README's two install forms (also shown in docs/getting-started.md) are right.

The "from a clone" block is executed as written in a fresh virtual environment, from the
repository's root; both blocks must name every package, only extras the package
declares, and (from a clone) the path of any sibling an extra pulls in.
``test_index_install.py`` runs the "after a release" form against a real index.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {p.parent.name: p.parent for p in ROOT.glob("packages/*/pyproject.toml")}
_REQ = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<extras>[^\]]*)\])?$")


def block(name: str) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        rf"--8<-- \[start:{name}\] -->\n```\n(.*?)```\n<!-- --8<-- \[end:{name}\]", readme, re.S
    )
    assert match, f"README.md has no {name} block"
    return match.group(1).splitlines()


def parse(line: str) -> list[tuple[str, set[str]]]:
    """``pip install A "B[x,y]"`` -> [("A", set()), ("B", {"x", "y"})]."""
    words = shlex.split(line)
    assert words[:2] == ["pip", "install"], line
    out = []
    for word in words[2:]:
        match = _REQ.match(word)
        assert match, word
        extras = {e.strip() for e in (match["extras"] or "").split(",") if e.strip()}
        out.append((match["name"], extras))
    return out


def project(dist: str) -> dict[str, object]:
    assert dist in PACKAGE_DIRS, f"no package {dist}"
    data = tomllib.loads((PACKAGE_DIRS[dist] / "pyproject.toml").read_text(encoding="utf-8"))
    result: dict[str, object] = data["project"]
    return result


def siblings_of(dist: str, extras: set[str]) -> set[str]:
    optional: dict[str, list[str]] = project(dist).get("optional-dependencies", {})  # type: ignore[assignment]
    names = {re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0] for e in extras for req in optional[e]}
    return names & set(PACKAGE_DIRS)


@pytest.mark.parametrize("name", ["install-from-clone", "install-after-release"])
def test_blocks_name_every_package_and_only_declared_extras(name: str):
    seen: set[str] = set()
    for line in block(name):
        reqs = parse(line)
        if name == "install-from-clone":
            assert all(r.startswith("./packages/") for r, _ in reqs), line
            dists = [r.removeprefix("./packages/") for r, _ in reqs]
        else:
            dists = [r for r, _ in reqs]
        for dist, (_, extras) in zip(dists, reqs, strict=True):
            declared = set(project(dist).get("optional-dependencies", {}))  # type: ignore[call-overload]
            assert extras <= declared - {"test"}, f"{line}: {dist} has no extra {extras}"
            if name == "install-from-clone":
                # a sibling is not on any index yet: it must be given by path, same command
                missing = siblings_of(dist, extras) - set(dists)
                assert not missing, f"{line}: add ./packages/{' ./packages/'.join(missing)}"
        seen.update(dists)
    assert seen == set(PACKAGE_DIRS)


def test_install_from_clone_works_as_written(tmp_path: Path):
    """The sibling line and the lightest line, as written, in a fresh venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Every line's paths and extras are checked above; running each costs a build
    # environment per package, so run, as written, the line that is easy to get wrong
    # (a sibling by path in the same command) and the lightest one-package line.
    lines = block("install-from-clone")
    chosen = [line for line in lines if len(parse(line)) > 1]
    chosen += [line for line in lines if parse(line) == [("./packages/veza-webrtc", set())]]
    assert len(chosen) == 2, lines
    script = "set -euo pipefail\n" + "\n".join(f"{line} --quiet" for line in chosen)
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    installed = {r.removeprefix("./packages/") for line in chosen for r, _ in parse(line)}
    assert installed == {"veza-webrtc", "veza-ledger", "veza-payments"}
    modules = ", ".join(d.replace("-", "_") for d in sorted(installed))
    code = (
        f"import sys, {modules}; print(all(m.__file__.startswith(sys.prefix) for m in [{modules}]))"
    )
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"
