"""Check that a built wheel's metadata says exactly what its pyproject.toml declares.

``python tools/check_wheel.py WHEEL PYPROJECT`` compares the wheel's ``Requires-Dist``
and ``Provides-Extra`` with ``[project] dependencies`` and
``[project.optional-dependencies]``. A mismatch means the build backend, a dynamic
field or a stale build dropped or invented a dependency: users would install something
other than what we test.
"""

from __future__ import annotations

import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def _key(req: Requirement) -> tuple[str, tuple[str, ...], str, str]:
    return (
        canonicalize_name(req.name),
        tuple(sorted(req.extras)),
        str(req.specifier),
        str(req.marker) if req.marker else "",
    )


def declared(pyproject: Path) -> tuple[set[tuple[str, tuple[str, ...], str, str]], set[str]]:
    """The requirement keys and extras the pyproject declares."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    keys = {_key(Requirement(r)) for r in project.get("dependencies", [])}
    extras = project.get("optional-dependencies", {})
    for extra, reqs in extras.items():
        for raw in reqs:
            req = Requirement(raw)
            marker = f'extra == "{extra}"'
            if req.marker:
                marker = f"({req.marker}) and {marker}"
            keys.add(_key(Requirement(f"{str(req).split(';')[0]}; {marker}")))
    return keys, {canonicalize_name(e) for e in extras}


def shipped(wheel: Path) -> tuple[set[tuple[str, tuple[str, ...], str, str]], set[str]]:
    """The requirement keys and extras recorded in the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    keys = {_key(Requirement(r)) for r in metadata.get_all("Requires-Dist") or []}
    extras = {canonicalize_name(e) for e in metadata.get_all("Provides-Extra") or []}
    return keys, extras


def main(wheel: Path, pyproject: Path) -> int:
    """Compare and report; return a process exit code."""
    want, want_extras = declared(pyproject)
    got, got_extras = shipped(wheel)
    problems = [f"declared but missing from the wheel: {k}" for k in sorted(want - got)]
    problems += [f"in the wheel but not declared: {k}" for k in sorted(got - want)]
    if want_extras != got_extras:
        problems.append(
            f"extras differ: declared {sorted(want_extras)}, wheel {sorted(got_extras)}"
        )
    for problem in problems:
        print(f"{wheel.name}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{wheel.name}: Requires-Dist matches ({len(got)} requirements)")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: check_wheel.py WHEEL PYPROJECT", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
