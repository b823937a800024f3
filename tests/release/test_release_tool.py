"""``tools/release.py`` (``nox -s release``) on a temporary clone of this repository.

Every refusal leaves the clone exactly as it was (same HEAD, no tag, clean tree, same
files); a real release bumps, dates the changelog, builds and checks both artifacts,
commits and tags.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "release.py"
DIST = "veza-webrtc"
PKG = Path("packages") / DIST
VERSION_FILE = PKG / "src" / "veza_webrtc" / "_version.py"
CHANGELOG = PKG / "CHANGELOG.md"

_spec = importlib.util.spec_from_file_location("veza_release_tool", TOOL)
assert _spec and _spec.loader
release_tool = importlib.util.module_from_spec(_spec)
sys.modules["veza_release_tool"] = release_tool
_spec.loader.exec_module(release_tool)

CHANGELOG_TEXT = """# Changelog

Intro text.

## [Unreleased]

### Fixed
- The relay is named in errors.

## [0.1.0]

### Added
- Everything.
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def base_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clone of this repository's HEAD with a known changelog for veza-webrtc."""
    base = tmp_path_factory.mktemp("base") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(base)], check=True)
    git(base, "config", "user.name", "Release Test")
    git(base, "config", "user.email", "release-test@example.invalid")
    (base / CHANGELOG).write_text(CHANGELOG_TEXT, encoding="utf-8")
    (base / VERSION_FILE).write_text('"""v."""\n\n__version__ = "0.1.0"\n', encoding="utf-8")
    git(base, "commit", "--quiet", "--allow-empty", "-am", "test: known changelog")
    return base


@pytest.fixture
def clone(base_clone: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(base_clone), str(repo)], check=True)
    git(repo, "config", "user.name", "Release Test")
    git(repo, "config", "user.email", "release-test@example.invalid")
    return repo


def run_tool(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--repo", str(repo), "--date", "2026-12-02", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(repo: Path) -> tuple[str, str, str, str, str]:
    return (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "tag", "--list"),
        git(repo, "status", "--porcelain", "--ignored"),
        (repo / VERSION_FILE).read_text(encoding="utf-8"),
        (repo / CHANGELOG).read_text(encoding="utf-8"),
    )


def test_release_bumps_dates_builds_commits_and_tags(clone: Path, tmp_path: Path):
    before = git(clone, "rev-parse", "HEAD")
    out = tmp_path / "artifacts"
    result = run_tool(clone, DIST, "0.2.0", "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    assert (clone / VERSION_FILE).read_text(encoding="utf-8").endswith('__version__ = "0.2.0"\n')
    changelog = (clone / CHANGELOG).read_text(encoding="utf-8")
    assert changelog == CHANGELOG_TEXT.replace(
        "## [Unreleased]\n", "## [Unreleased]\n\n## [0.2.0] - 2026-12-02\n"
    )
    assert release_tool.has_entries(release_tool.unreleased_entries(changelog)) is False
    assert git(clone, "rev-parse", "HEAD^") == before
    assert git(clone, "log", "-1", "--format=%s").strip() == "veza-webrtc 0.2.0"
    assert git(clone, "rev-parse", "veza-webrtc-v0.2.0^{commit}") == git(clone, "rev-parse", "HEAD")
    assert git(clone, "cat-file", "-t", "veza-webrtc-v0.2.0").strip() == "tag"  # annotated
    assert git(clone, "status", "--porcelain") == ""
    built = sorted(p.name for p in (out / "veza-webrtc-0.2.0").glob("veza_webrtc-*"))
    assert built == ["veza_webrtc-0.2.0-py3-none-any.whl", "veza_webrtc-0.2.0.tar.gz"]
    # the same version again is refused: its tag exists now
    again = run_tool(clone, DIST, "0.2.0", "--dry-run")
    assert again.returncode == 2
    assert "tag veza-webrtc-v0.2.0 already exists" in again.stderr


def test_dry_run_builds_and_checks_but_changes_nothing(clone: Path):
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.2.0", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "veza_webrtc-0.2.0-py3-none-any.whl" in result.stdout
    assert "nothing was changed" in result.stdout
    assert snapshot(clone) == before
    assert not (clone / "dist").exists()


def test_refuses_a_dirty_tree(clone: Path):
    (clone / PKG / "README.md").write_text("edited\n", encoding="utf-8")
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.2.0")
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr
    assert snapshot(clone) == before


def test_refuses_an_untracked_file(clone: Path):
    (clone / PKG / "stray.py").write_text("x = 1\n", encoding="utf-8")
    result = run_tool(clone, DIST, "0.2.0", "--dry-run")
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr


def test_refuses_an_existing_tag(clone: Path):
    git(clone, "tag", "veza-webrtc-v0.3.0")
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.3.0")
    assert result.returncode == 2
    assert "tag veza-webrtc-v0.3.0 already exists" in result.stderr
    assert snapshot(clone) == before


@pytest.mark.parametrize("version", ["0.1.0", "0.0.9", "0.1.0rc1"])
def test_refuses_a_version_that_does_not_increase(clone: Path, version: str):
    before = snapshot(clone)
    result = run_tool(clone, DIST, version)
    assert result.returncode == 2
    assert "is not greater than veza-webrtc's current version 0.1.0" in result.stderr
    assert snapshot(clone) == before


def test_refuses_a_version_below_an_existing_tag(clone: Path):
    git(clone, "tag", "veza-webrtc-v0.5.0")
    result = run_tool(clone, DIST, "0.4.0")
    assert result.returncode == 2
    assert "current version 0.5.0" in result.stderr


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("v0.2.0", "write the version as '0.2.0'"),
        ("0.02.0", "write the version as '0.2.0'"),
        ("banana", "not a PEP 440 version"),
        ("0.2.0.dev1", "development or local version"),
        ("0.2.0+local", "development or local version"),
    ],
)
def test_refuses_a_non_canonical_version(clone: Path, version: str, message: str):
    before = snapshot(clone)
    result = run_tool(clone, DIST, version)
    assert result.returncode == 2
    assert message in result.stderr
    assert snapshot(clone) == before


@pytest.mark.parametrize(
    "section", ["", "\n\n", "\n### Added\n\n### Fixed\n", "\n### Added\n   \n"]
)
def test_refuses_an_empty_unreleased_section(clone: Path, section: str):
    text = CHANGELOG_TEXT.replace(
        "\n### Fixed\n- The relay is named in errors.\n", section.rstrip("\n") + "\n"
    )
    (clone / CHANGELOG).write_text(text, encoding="utf-8")
    git(clone, "commit", "--quiet", "--allow-empty", "-am", "empty unreleased")
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.2.0")
    assert result.returncode == 2
    assert "[Unreleased] section of CHANGELOG.md is empty" in result.stderr
    assert snapshot(clone) == before


def test_refuses_an_unknown_package(clone: Path):
    result = run_tool(clone, "veza-nope", "1.0.0")
    assert result.returncode == 2
    assert "no package 'veza-nope'" in result.stderr


def test_a_failed_build_restores_the_files(clone: Path):
    # a README that does not render on the index fails twine check --strict
    pyproject = clone / PKG / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8").replace(
            'readme = "README.md"', 'readme = {file = "README.md", content-type = "text/x-rst"}'
        ),
        encoding="utf-8",
    )
    (clone / PKG / "README.md").write_text("Title\n=====\n\n`broken <\n", encoding="utf-8")
    git(clone, "commit", "--quiet", "-am", "a README that does not render")
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.2.0")
    assert result.returncode == 2
    assert "twine check failed" in result.stderr
    assert snapshot(clone) == before


entry_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda s: s.strip() and not s.lstrip().startswith("#"))


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(entry_line.map(lambda s: f"- {s}"), min_size=1, max_size=5),
    older=st.lists(entry_line.map(lambda s: f"- {s}"), max_size=3),
    version=st.from_regex(r"\A[1-9][0-9]?\.[0-9]{1,2}\.[0-9]{1,2}\Z"),
)
def test_moving_unreleased_keeps_every_entry_once(entries, older, version):
    text = (
        "# Changelog\n\n## [Unreleased]\n\n### Added\n"
        + "".join(f"{e}\n" for e in entries)
        + "\n## [0.0.1]\n\n"
        + "".join(f"{e}\n" for e in older)
    )
    moved = release_tool.move_unreleased(text, version, "2026-12-02")
    assert not release_tool.has_entries(release_tool.unreleased_entries(moved))
    head, _, rest = moved.partition(f"## [{version}] - 2026-12-02\n")
    assert head == "# Changelog\n\n## [Unreleased]\n\n"
    section, _, tail = rest.partition("## [0.0.1]")
    assert section == "\n### Added\n" + "".join(f"{e}\n" for e in entries) + "\n"
    assert tail == "\n\n" + "".join(f"{e}\n" for e in older)
    with pytest.raises(release_tool.ReleaseError, match="empty"):
        release_tool.move_unreleased(moved, version + "1", "2026-12-02")


def test_refuses_a_wheel_without_project_urls(clone: Path):
    pyproject = clone / PKG / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text[: text.index("[project.urls]")], encoding="utf-8")
    git(clone, "commit", "--quiet", "-am", "no project urls")
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.2.0")
    assert result.returncode == 2
    assert "lacks [project.urls] Changelog, Documentation, Homepage, Source" in result.stderr
    assert snapshot(clone) == before


def test_a_refused_commit_restores_the_files_and_tags_nothing(clone: Path):
    hook = clone / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    before = snapshot(clone)
    result = run_tool(clone, DIST, "0.2.0")
    assert result.returncode == 2
    assert "hook says no" in result.stderr
    assert snapshot(clone) == before
