"""Rules the workspace keeps: package shape, declared imports, the two-line quick start."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
EXPECTED = {"veza-cdn", "veza-payments", "veza-storage", "veza-ledger", "veza-webrtc"}
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project(pkg: Path) -> dict:
    return tomllib.loads((pkg / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _all_requirements(pkg: Path) -> list[str]:
    project = _project(pkg)
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return reqs


def _imported_top_levels(src: Path) -> set[str]:
    names: set[str] = set()
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_five_packages_exist():
    assert {p.name for p in PACKAGES} == EXPECTED


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_has_the_standard_shape(pkg: Path):
    import_name = pkg.name.replace("-", "_")
    src = pkg / "src" / import_name
    for required in (
        pkg / "README.md",
        pkg / "CHANGELOG.md",
        src / "__init__.py",
        src / "_version.py",
        src / "py.typed",
        pkg / "tests" / "test_public_api.py",
    ):
        assert required.is_file(), f"{required.relative_to(ROOT)} is missing"
    project = _project(pkg)
    assert project["name"] == pkg.name
    assert project["requires-python"] == ">=3.11"
    assert "## [Unreleased]" in (pkg / "CHANGELOG.md").read_text(encoding="utf-8")
    build = tomllib.loads((pkg / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    assert build["build-backend"] == "hatchling.build"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_every_dependency_has_a_lower_bound(pkg: Path):
    unbounded = [r for r in _all_requirements(pkg) if ">=" not in r and "==" not in r]
    assert unbounded == []


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_no_package_imports_an_undeclared_sibling(pkg: Path):
    own = pkg.name.replace("-", "_")
    siblings = {p.name.replace("-", "_") for p in PACKAGES} - {own}
    declared = {
        _norm(m.group(1)).replace("-", "_")
        for r in _all_requirements(pkg)
        if (m := _REQ_NAME.match(r))
    }
    imported = _imported_top_levels(pkg / "src")
    assert sorted((imported & siblings) - declared) == []


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_installed_version_is_the_source_version(pkg: Path):
    source = (pkg / "src" / pkg.name.replace("-", "_") / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', source)
    assert match is not None
    assert importlib.metadata.version(pkg.name) == match.group(1)


def _quick_start_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("[start:quick-start]", 1)[1].split("[end:quick-start]", 1)[0]
    body = block.split("```", 2)[1]
    return [line for line in body.splitlines() if line.strip()]


def test_quick_start_is_exactly_two_lines_demo_then_tests():
    lines = _quick_start_lines()
    assert len(lines) == 2
    demo, tests = lines
    assert "veza-demo" in demo
    assert tests.rstrip().endswith("python3 -m nox")
    for line in lines:  # each line does its own set-up
        assert line.startswith("python3 -m pip install")


def test_ci_runs_the_readme_test_line_as_written():
    script = ROOT / ".ci" / "run"
    extracted = subprocess.run(
        ["bash", "-c", f"grep -o \"awk '.*' README.md\" {script} | head -1"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    assert extracted, ".ci/run no longer extracts the test line from README.md"
    line = subprocess.run(
        ["bash", "-c", f"{extracted} | sed -n 2p"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    assert line == _quick_start_lines()[1]


def test_packages_import_side_by_side_without_global_side_effects():
    # importing every package must not configure logging or touch the environment
    code = (
        "import logging, os; before = dict(os.environ); "
        "import veza_cdn, veza_payments, veza_storage, veza_ledger, veza_webrtc; "
        "assert dict(os.environ) == before; "
        "assert logging.getLogger().handlers == []; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
