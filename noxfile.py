"""The one entry point for veza's checks: ``nox`` runs every session a contributor must pass.

Sessions (``nox -l`` lists them):

* ``tests-<package>``: the package's wheel, built fresh and installed **non-editable**
  into a new venv, first with no extras (every module must import, or need an extra it
  declares: ``tools/check_imports.py``), then with all of its extras and nothing else
  from the workspace but the siblings it declares; then its own ``tests/``.
* ``integration``: every package plus the reference app, and the root ``tests/``
  (``tests/release`` publishes every wheel to a local index server and installs each
  package from it by name).
* ``lint``, ``typecheck``, ``docs``, ``wheels``: ruff, mypy --strict, mkdocs --strict,
  build + install each wheel alone in a fresh venv outside the repo.
* ``bench``: the benchmarks under ``bench/`` (not part of plain ``nox``: they measure,
  they do not pass or fail).
* ``release``: ``nox -s release -- veza-cdn 0.2.0 [--dry-run]`` bumps, dates the
  changelog, builds, checks, commits and tags one package (not part of plain ``nox``).

Third-party versions come from ``uv.lock`` (exported as constraints), so every session
tests what the lock file says; ``--locked`` makes a stale lock file a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import nox
from nox.virtualenv import find_uv

if TYPE_CHECKING:
    from collections.abc import Callable

nox.needs_version = ">=2025.10.16"
nox.options.default_venv_backend = "uv"
nox.options.error_on_external_run = True
nox.options.reuse_venv = "no"

# The quick start runs nox with PYTHONPATH=.tools; the sessions' own interpreters must
# not see those tools (an import that only works through them would hide a missing
# dependency).
os.environ.pop("PYTHONPATH", None)
# The uv nox itself uses (on PATH, or beside a `pip install --target` copy of uv).
UV = find_uv()[1]

ROOT = Path(__file__).resolve().parent
PACKAGE_DIRS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
EXAMPLE_DIRS = sorted(p.parent for p in ROOT.glob("examples/*/pyproject.toml"))
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _project(pkg_dir: Path) -> dict[str, object]:
    data = tomllib.loads((pkg_dir / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


# distribution name -> folder (veza-reference-app lives in examples/reference-app)
WORKSPACE_DIRS = {str(_project(p)["name"]): p for p in PACKAGE_DIRS + EXAMPLE_DIRS}


def _extras(pkg_dir: Path) -> list[str]:
    return sorted(_project(pkg_dir).get("optional-dependencies", {}))  # type: ignore[call-overload]


def _test_requirements(pkg_dir: Path) -> list[str]:
    """The package's ``test`` dependency group (PEP 735; never published)."""
    data = tomllib.loads((pkg_dir / "pyproject.toml").read_text(encoding="utf-8"))
    return [r for r in data.get("dependency-groups", {}).get("test", []) if isinstance(r, str)]


def _test_group(pkg_dir: Path) -> list[str]:
    """``--group`` arguments installing the package's own ``test`` group, if it has one."""
    return _group("test", pkg_dir / "pyproject.toml") if _test_requirements(pkg_dir) else []


def _workspace_deps(pkg_dir: Path) -> list[Path]:
    """Sibling workspace members a package declares (dependencies, extras, test group)."""
    project = _project(pkg_dir)
    raw: list[str] = list(project.get("dependencies", []))  # type: ignore[call-overload]
    for reqs in project.get("optional-dependencies", {}).values():  # type: ignore[attr-defined]
        raw += reqs
    raw += _test_requirements(pkg_dir)
    found: list[Path] = []
    for req in raw:
        match = _NAME.match(req)
        name = match.group(1).lower().replace("_", "-") if match else ""
        if name in WORKSPACE_DIRS and WORKSPACE_DIRS[name] not in found:
            found.append(WORKSPACE_DIRS[name])
            found += [d for d in _workspace_deps(WORKSPACE_DIRS[name]) if d not in found]
    return found


_constraints_file: Path | None = None


def _constraints(session: nox.Session) -> list[str]:
    """``-c FILE`` arguments pinning every third-party package to uv.lock."""
    global _constraints_file  # noqa: PLW0603 - one export per nox process
    if _constraints_file is None:
        target = ROOT / ".nox" / "constraints.txt"
        target.parent.mkdir(exist_ok=True)
        session.run_install(
            UV,
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
            "-o",
            str(target),
            external=True,
        )
        _constraints_file = target
    return ["-c", str(_constraints_file)]


def _build_wheels(session: nox.Session, pkg_dirs: list[Path]) -> dict[Path, Path]:
    """Build each directory's wheel afresh (never a cached build of stale sources)."""
    out = Path(session.create_tmp()) / "wheels"
    shutil.rmtree(out, ignore_errors=True)
    wheels: dict[Path, Path] = {}
    for pkg_dir in pkg_dirs:
        before = set(out.glob("*.whl"))
        session.run_install(
            UV,
            "build",
            "--wheel",
            "--quiet",
            "--out-dir",
            str(out),
            str(pkg_dir),
            external=True,
        )
        (wheel,) = set(out.glob("*.whl")) - before
        wheels[pkg_dir] = wheel
    return wheels


def _with_extras(wheel: Path, extras: list[str]) -> str:
    return f"{wheel}[{','.join(extras)}]" if extras else str(wheel)


def _group(name: str, pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    return ["--group", f"{pyproject}:{name}"]


def _pytest(session: nox.Session, *paths: str) -> None:
    session.run(
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        *paths,
        *session.posargs,
    )


def _make_test_session(pkg_dir: Path) -> Callable[[nox.Session], None]:
    dist = pkg_dir.name
    import_name = dist.replace("-", "_")

    @nox.session(name=f"tests-{dist}")
    def tests(session: nox.Session) -> None:
        constraints = _constraints(session)
        siblings = _workspace_deps(pkg_dir)
        wheels = _build_wheels(session, [pkg_dir, *siblings])
        # 1. Required dependencies only: every module imports or needs a declared extra.
        session.install(*constraints, str(wheels[pkg_dir]))
        session.run("python", "-I", str(ROOT / "tools" / "check_imports.py"), dist, import_name)
        # 2. All extras, the package's own ``test`` group and the siblings they declare,
        #    nothing else.
        session.install(
            *constraints,
            _with_extras(wheels[pkg_dir], _extras(pkg_dir)),
            *_test_group(pkg_dir),
            *(str(wheels[s]) for s in siblings),
        )
        _pytest(session, str(pkg_dir / "tests"))

    tests.__doc__ = f"{dist}: isolated non-editable install, import check, then its tests."
    return tests


for _pkg_dir in PACKAGE_DIRS:
    _make_test_session(_pkg_dir)


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package tests and the reference app, under the root ``tests/``."""
    constraints = _constraints(session)
    dirs = PACKAGE_DIRS + EXAMPLE_DIRS
    wheels = _build_wheels(session, dirs)
    session.install(
        *constraints,
        *_group("integration"),
        *(_with_extras(wheels[d], _extras(d)) for d in dirs),
        *(arg for d in dirs for arg in _test_group(d)),
    )
    # tests/release builds every wheel with uv and publishes it to a local index server
    session.env["VEZA_UV"] = UV
    _pytest(session, str(ROOT / "tests"))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install(*_constraints(session), *_group("lint"))
    session.run("ruff", "check", str(ROOT))
    session.run("ruff", "format", "--check", str(ROOT))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's src/."""
    dirs = PACKAGE_DIRS + EXAMPLE_DIRS
    session.install(
        *_constraints(session),
        *_group("typecheck"),
        *(arg for d in dirs for arg in ("-e", _with_extras(d, _extras(d)))),
    )
    sources = [str(p) for d in dirs for p in sorted((d / "src").iterdir()) if p.is_dir()]
    session.run("mypy", "--strict", *sources)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``mkdocs build --strict``."""
    session.install(*_constraints(session), *_group("docs"))
    site = Path(session.create_tmp()) / "site"
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # mkdocs-material's banner about MkDocs 2.0
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--config-file",
        str(ROOT / "mkdocs.yml"),
        "--site-dir",
        str(site),
    )


@nox.session(default=False)
def release(session: nox.Session) -> None:
    """Release one package: ``nox -s release -- veza-cdn 0.2.0 [--dry-run]``.

    Refuses a dirty tree, an existing tag, a version that does not increase and an empty
    ``[Unreleased]`` changelog section; bumps ``_version.py``, dates the changelog section,
    builds the sdist and wheel into ``dist/``, checks their metadata (``twine check``,
    ``tools/check_wheel.py``), commits and tags ``<dist>-v<version>``. See
    ``tools/release.py``; pushing and uploading stay manual.
    """
    session.install(*_constraints(session), *_group("release"))
    session.run("python", str(ROOT / "tools" / "release.py"), *session.posargs, env={"VEZA_UV": UV})


@nox.session
def wheels(session: nox.Session) -> None:
    """Build every wheel and sdist; install each wheel alone in a fresh venv and import it."""
    session.install(*_constraints(session), *_group("wheels"))
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for pkg_dir in PACKAGE_DIRS + EXAMPLE_DIRS:
        # sdist first, wheel built from it: proves the sdist is complete
        session.run_install(
            UV, "build", "--quiet", "--out-dir", str(dist), str(pkg_dir), external=True
        )
    built = sorted(dist.glob("*.whl"))
    session.log(f"built {len(built)} wheels and {len(list(dist.glob('*.tar.gz')))} sdists")
    for pkg_dir in PACKAGE_DIRS + EXAMPLE_DIRS:
        stem = str(_project(pkg_dir)["name"]).replace("-", "_")  # the distribution's name
        (wheel,) = [w for w in built if w.name.startswith(stem + "-")]
        session.run(
            "python",
            str(ROOT / "tools" / "check_wheel.py"),
            str(wheel),
            str(pkg_dir / "pyproject.toml"),
        )
        with tempfile.TemporaryDirectory(prefix="veza-wheel-") as tmp:
            venv = Path(tmp) / "venv"
            python = str(venv / "bin" / "python")
            session.run_install(
                UV,
                "venv",
                "--quiet",
                "--python",
                session.python or "python3",
                str(venv),
                external=True,
            )
            session.run_install(
                UV,
                "pip",
                "install",
                "--quiet",
                "--python",
                python,
                *_constraints(session),
                "--find-links",
                str(dist),
                str(wheel),
                external=True,
            )
            import_name = _import_name(pkg_dir)
            with session.chdir(tmp):
                session.run(
                    python,
                    "-I",
                    "-c",
                    f"import {import_name}; print({import_name}.__name__,"
                    f" {import_name}.__version__, 'from', {import_name}.__file__)",
                    external=True,
                )


def _import_name(pkg_dir: Path) -> str:
    (pkg,) = [p.name for p in (pkg_dir / "src").iterdir() if (p / "__init__.py").exists()]
    return pkg


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run every benchmark under ``bench/`` (``nox -s bench -- cdn`` runs bench/cdn.py only)."""
    constraints = _constraints(session)
    dirs = PACKAGE_DIRS + EXAMPLE_DIRS
    wheels = _build_wheels(session, dirs)
    session.install(
        *constraints,
        *_group("bench"),
        *(_with_extras(wheels[d], _extras(d)) for d in dirs),
        *(arg for d in dirs for arg in _test_group(d)),
    )
    scripts = sorted(s for s in (ROOT / "bench").glob("*.py") if not s.name.startswith("_"))
    if session.posargs:
        scripts = [s for s in scripts if s.stem in session.posargs]
    if not scripts:
        session.log("no benchmarks selected")
    for script in scripts:
        session.run("python", str(script))


MUTMUT = "mutmut==3.8.1"


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation testing of veza-payments' money modules (mutmut; ``nox -s mutation``).

    Not part of plain ``nox``: it takes many minutes of CPU. The modules (core, ids,
    retry, signatures, webhooks) and the test selection are configured under
    ``[tool.mutmut]`` in ``packages/veza-payments/pyproject.toml``. Prints the results
    (``mutmut results`` lists the survivors); ``-- --max-children N`` is passed on.
    """
    pkg_dir = ROOT / "packages" / "veza-payments"
    session.install(
        *_constraints(session),
        *_group("integration"),
        "-e",
        _with_extras(pkg_dir, _extras(pkg_dir)),
        *_test_group(pkg_dir),
        MUTMUT,
    )
    with session.chdir(pkg_dir):
        shutil.rmtree(pkg_dir / "mutants", ignore_errors=True)
        session.run("mutmut", "run", *session.posargs)
        session.run("mutmut", "results")
