"""Cut a release of one veza package: ``nox -s release -- veza-cdn 0.2.0 [--dry-run]``.

A release is code, not a checklist, so that every package is released the same way and a
mistake is refused before anything is written. In order, the script:

1. refuses a dirty work tree, an unknown package, a version that is not canonical
   PEP 440, not greater than the current one (and than every existing tag of the package),
   an existing tag ``<dist>-v<version>``, and an empty ``[Unreleased]`` changelog section;
2. bumps ``src/<import>/_version.py`` and moves the ``[Unreleased]`` entries under
   ``## [<version>] - <date>`` (an empty ``[Unreleased]`` stays on top);
3. builds the sdist and the wheel (the wheel from the sdist), checks their metadata with
   ``twine check --strict`` and checks name, version, ``Requires-Dist`` and extras
   against ``pyproject.toml`` (``tools/check_wheel.py``);
4. commits the two files (``<dist> <version>``) and tags that commit with an annotated
   tag ``<dist>-v<version>``.

``--dry-run`` does steps 1 to 3 on a temporary copy of the package and changes nothing in
the repository. A failed build or check restores the two files. Pushing the commit and the
tag, and uploading ``dist/<dist>-<version>/*`` to the index, stay human decisions.

Exit codes: 0 released (or the dry run passed), 2 refused or failed, with one line that
says why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_VERSION_LINE = re.compile(r'^__version__[ \t]*=[ \t]*"([^"]+)"[ \t]*$', re.MULTILINE)
_UNRELEASED = re.compile(r"^## \[Unreleased\][^\n]*\n", re.MULTILINE | re.IGNORECASE)
_NEXT_SECTION = re.compile(r"^## ", re.MULTILINE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# what an index shows beside the package; every veza package declares all four
PROJECT_URLS = {"Homepage", "Documentation", "Changelog", "Source"}


class ReleaseError(Exception):
    """A release was refused or failed; the message names the problem and the fix."""


# ---------------------------------------------------------------- pure text rules


def tag_name(dist: str, version: str) -> str:
    """The git tag of a release: ``veza-cdn-v0.2.0``."""
    return f"{dist}-v{version}"


def read_version(version_file: str) -> str:
    """The version in a ``_version.py`` text (exactly one ``__version__ = "..."`` line)."""
    found = _VERSION_LINE.findall(version_file)
    if len(found) != 1:
        raise ReleaseError('_version.py must hold exactly one line __version__ = "X.Y.Z"')
    return str(found[0])


def bump_version_file(version_file: str, version: str) -> str:
    """``_version.py`` with its version line set to ``version`` and nothing else changed."""
    read_version(version_file)
    return _VERSION_LINE.sub(f'__version__ = "{version}"', version_file, count=1)


def canonical_version(raw: str) -> Version:
    """Parse a release version; refuse anything but its canonical PEP 440 spelling.

    A tag and a file name must say the same thing as the wheel's metadata, so ``v1.0``
    or ``1.0.0.0`` typed by hand is refused rather than silently normalised.
    """
    try:
        version = Version(raw)
    except InvalidVersion:
        raise ReleaseError(f"{raw!r} is not a PEP 440 version (for example 0.2.0)") from None
    if str(version) != raw:
        raise ReleaseError(f"write the version as {str(version)!r}, not {raw!r}")
    if version.is_devrelease or version.local is not None:
        raise ReleaseError(f"{raw!r} is a development or local version; release a real one")
    return version


def unreleased_entries(changelog: str) -> str:
    """The text of the ``[Unreleased]`` section (without its heading)."""
    heading = _UNRELEASED.search(changelog)
    if heading is None:
        raise ReleaseError("CHANGELOG.md has no '## [Unreleased]' section")
    following = _NEXT_SECTION.search(changelog, heading.end())
    end = following.start() if following else len(changelog)
    return changelog[heading.end() : end]


def has_entries(section: str) -> bool:
    """Whether a changelog section says anything beyond blank lines and sub-headings."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in section.splitlines())


def move_unreleased(changelog: str, version: str, date: str) -> str:
    """Move the ``[Unreleased]`` entries under ``## [version] - date``.

    The ``[Unreleased]`` heading stays, empty, on top of the new section; everything else
    in the file is kept byte for byte.
    """
    if not _DATE.match(date):
        raise ReleaseError(f"the release date must be YYYY-MM-DD, not {date!r}")
    heading = _UNRELEASED.search(changelog)
    if heading is None:
        raise ReleaseError("CHANGELOG.md has no '## [Unreleased]' section")
    if re.search(rf"^## \[{re.escape(version)}\]", changelog, re.MULTILINE):
        raise ReleaseError(f"CHANGELOG.md already has a section for {version}")
    entries = unreleased_entries(changelog)
    if not has_entries(entries):
        raise ReleaseError(
            "the [Unreleased] section of CHANGELOG.md is empty: say what this release changes"
        )
    body = entries.strip("\n")
    after = changelog[heading.end() + len(entries) :]
    moved = f"{changelog[: heading.end()]}\n## [{version}] - {date}\n\n{body}\n"
    return moved + ("\n" + after if after else "")


# ---------------------------------------------------------------- the repository


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _package_dir(repo: Path, dist: str) -> Path:
    wanted = canonicalize_name(dist)
    names: list[str] = []
    for pyproject in sorted(repo.glob("packages/*/pyproject.toml")):
        name = str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"])
        if canonicalize_name(name) == wanted:
            if name != dist:
                raise ReleaseError(f"the package is spelled {name!r}, not {dist!r}")
            return pyproject.parent
        names.append(name)
    raise ReleaseError(f"no package {dist!r} under packages/ (one of: {', '.join(names)})")


def _version_file(pkg_dir: Path) -> Path:
    data = tomllib.loads((pkg_dir / "pyproject.toml").read_text(encoding="utf-8"))
    return pkg_dir / str(data["tool"]["hatch"]["version"]["path"])


def _tagged_versions(repo: Path, dist: str) -> list[Version]:
    versions: list[Version] = []
    for tag in _git(repo, "tag", "--list", f"{dist}-v*").split():
        try:
            versions.append(Version(tag.removeprefix(f"{dist}-v")))
        except InvalidVersion:
            continue
    return versions


def _uv() -> str:
    uv = os.environ.get("VEZA_UV") or shutil.which("uv")
    if not uv:
        raise ReleaseError("uv not found: run through `nox -s release`, or put uv on PATH")
    return uv


def build_and_check(pkg_dir: Path, dist: str, version: str, out_dir: Path) -> list[Path]:
    """Build the sdist and the wheel into ``out_dir`` and check their metadata.

    Returns the two files. Checks: exactly one sdist and one wheel, named for ``dist`` and
    ``version``; ``twine check --strict`` (the README renders on the index); the wheel's
    ``Name``/``Version``, a summary and the four project URLs; its
    ``Requires-Dist``/``Provides-Extra`` equal what ``pyproject.toml`` declares.
    """
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    build = subprocess.run(
        [_uv(), "build", "--quiet", "--out-dir", str(out_dir), str(pkg_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        raise ReleaseError(f"uv build failed:\n{build.stderr.strip()}")
    stem = f"{dist.replace('-', '_')}-{version}"
    wheels = sorted(out_dir.glob("*.whl"))
    sdists = sorted(out_dir.glob("*.tar.gz"))
    if [w.name for w in wheels] != [f"{stem}-py3-none-any.whl"] or [s.name for s in sdists] != [
        f"{stem}.tar.gz"
    ]:
        built = ", ".join(p.name for p in wheels + sdists)
        raise ReleaseError(f"expected {stem}-py3-none-any.whl and {stem}.tar.gz, built {built}")
    twine = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sdists + wheels)],
        capture_output=True,
        text=True,
        check=False,
    )
    if twine.returncode != 0:
        raise ReleaseError(f"twine check failed:\n{twine.stdout.strip()}{twine.stderr.strip()}")
    with zipfile.ZipFile(wheels[0]) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    if metadata["Name"] != dist or metadata["Version"] != version:
        raise ReleaseError(
            f"the wheel says {metadata['Name']} {metadata['Version']}, expected {dist} {version}"
        )
    labels = {u.split(",", 1)[0].strip() for u in metadata.get_all("Project-URL") or []}
    missing = sorted(PROJECT_URLS - labels)
    if missing or not metadata["Summary"]:
        what = f"[project.urls] {', '.join(missing)}" if missing else "a description"
        raise ReleaseError(f"the wheel's metadata lacks {what}: add it to pyproject.toml")
    check_wheel = Path(__file__).with_name("check_wheel.py")
    requires = subprocess.run(
        [sys.executable, str(check_wheel), str(wheels[0]), str(pkg_dir / "pyproject.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    if requires.returncode != 0:
        raise ReleaseError(f"wheel metadata differs from pyproject.toml:\n{requires.stderr}")
    return [sdists[0], wheels[0]]


def release(
    repo: Path, dist: str, raw_version: str, *, date: str, dry_run: bool, out_root: Path
) -> list[str]:
    """Check, bump, build, commit and tag; return the lines to report.

    Raises:
        ReleaseError: the release is refused or failed; the repository is unchanged.
    """
    repo = Path(_git(repo, "rev-parse", "--show-toplevel").strip())
    pkg_dir = _package_dir(repo, dist)
    version = canonical_version(raw_version)
    if _git(repo, "status", "--porcelain", "--untracked-files=normal").strip():
        raise ReleaseError("the work tree has uncommitted changes: commit or stash them first")
    tag = tag_name(dist, str(version))
    if _git(repo, "tag", "--list", tag).strip():
        raise ReleaseError(f"tag {tag} already exists: {dist} {version} was released")
    version_path = _version_file(pkg_dir)
    changelog_path = pkg_dir / "CHANGELOG.md"
    old_version_text = version_path.read_text(encoding="utf-8")
    old_changelog = changelog_path.read_text(encoding="utf-8")
    current = Version(read_version(old_version_text))
    newest = max([current, *_tagged_versions(repo, dist)])
    if version <= newest:
        raise ReleaseError(f"{version} is not greater than {dist}'s current version {newest}")
    new_version_text = bump_version_file(old_version_text, str(version))
    new_changelog = move_unreleased(old_changelog, str(version), date)

    if dry_run:
        with tempfile.TemporaryDirectory(prefix="veza-release-") as tmp:
            copy = Path(tmp) / pkg_dir.name
            shutil.copytree(pkg_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
            (copy / version_path.relative_to(pkg_dir)).write_text(
                new_version_text, encoding="utf-8"
            )
            (copy / "CHANGELOG.md").write_text(new_changelog, encoding="utf-8")
            built = build_and_check(copy, dist, str(version), Path(tmp) / "dist")
            names = ", ".join(p.name for p in built)
        return [
            f"dry run: {dist} {current} -> {version}, built and checked {names}",
            f"dry run: would commit '{dist} {version}' and tag {tag}; nothing was changed",
        ]

    version_path.write_text(new_version_text, encoding="utf-8")
    changelog_path.write_text(new_changelog, encoding="utf-8")
    out_dir = out_root / f"{dist}-{version}"
    paths = [str(version_path), str(changelog_path)]
    try:
        built = build_and_check(pkg_dir, dist, str(version), out_dir)
        _git(repo, "add", "--", *paths)
        # a failing commit hook (or no git identity) refuses the release here, before a tag
        _git(repo, "commit", "--quiet", "-m", f"{dist} {version}", "--", *paths)
    except BaseException:
        subprocess.run(["git", "-C", str(repo), "reset", "--quiet", "--", *paths], check=False)
        version_path.write_text(old_version_text, encoding="utf-8")
        changelog_path.write_text(old_changelog, encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        if out_root.is_dir() and not any(out_root.iterdir()):
            out_root.rmdir()
        raise
    _git(repo, "tag", "--annotate", tag, "-m", f"{dist} {version}")
    return [
        f"released {dist} {current} -> {version}: commit '{dist} {version}', tag {tag}",
        *(f"  {p}" for p in built),
        f"next: git push origin HEAD {tag}; twine upload {built[0].parent}/*",
    ]


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="nox -s release --",
        description="Bump, build, check, commit and tag one package's release.",
    )
    parser.add_argument("dist", help="the distribution, e.g. veza-cdn")
    parser.add_argument("version", help="the new version, e.g. 0.2.0")
    parser.add_argument("--dry-run", action="store_true", help="check and build; change nothing")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument(
        "--date",
        default=dt.datetime.now(dt.UTC).date().isoformat(),
        help="the changelog date (default: today, UTC)",
    )
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="where artifacts go (default: REPO/dist)"
    )
    args = parser.parse_args(argv)
    try:
        lines = release(
            args.repo,
            args.dist,
            args.version,
            date=args.date,
            dry_run=args.dry_run,
            out_root=args.out_dir or args.repo / "dist",
        )
    except ReleaseError as exc:
        print(f"release refused: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
