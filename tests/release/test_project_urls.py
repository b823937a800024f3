"""Every package says where it lives: ``[project.urls]`` and its README's docs link.

The repository's address is written once, as ``repo_url`` in mkdocs.yml; each URL must
start with it and name a path that exists in this checkout, so a moved docs page or a
renamed package fails here instead of on the index's project page.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
REQUIRED = {"Homepage", "Documentation", "Changelog", "Source"}


def repo_url() -> str:
    match = re.search(r"^repo_url:\s*(\S+)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert match, "mkdocs.yml must say repo_url"
    return match.group(1).rstrip("/")


def path_in_repo(url: str) -> Path:
    """The checkout path a ``<repo_url>/(tree|blob)/main/<path>`` URL points at."""
    prefix = repo_url()
    assert url.startswith(prefix + "/"), f"{url} is not under {prefix}"
    match = re.fullmatch(r"/(tree|blob)/main/(.+)", url.removeprefix(prefix))
    assert match, f"{url}: expected {prefix}/tree/main/<dir> or /blob/main/<file>"
    kind, rel = match.groups()
    target = ROOT / rel
    assert target.is_dir() if kind == "tree" else target.is_file(), f"{url}: no {rel}"
    return target


def test_repo_url_is_https():
    assert re.fullmatch(r"https://[^/]+/[^/]+/[^/]+", repo_url())


@pytest.mark.parametrize("pkg_dir", PACKAGE_DIRS, ids=lambda p: p.name)
def test_project_urls_point_at_the_package(pkg_dir: Path):
    urls = tomllib.loads((pkg_dir / "pyproject.toml").read_text())["project"].get("urls", {})
    assert set(urls) >= REQUIRED, f"missing {sorted(REQUIRED - set(urls))}"
    for url in urls.values():
        path_in_repo(url)
    assert path_in_repo(urls["Source"]) == pkg_dir
    assert path_in_repo(urls["Changelog"]) == pkg_dir / "CHANGELOG.md"
    docs = path_in_repo(urls["Documentation"])
    assert docs.parent.parent == ROOT / "docs"
    # the documentation page is the package's guide, in the site's nav
    assert docs.relative_to(ROOT / "docs").as_posix() in (ROOT / "mkdocs.yml").read_text()


@pytest.mark.parametrize("pkg_dir", PACKAGE_DIRS, ids=lambda p: p.name)
def test_readme_docs_links_resolve(pkg_dir: Path):
    readme = (pkg_dir / "README.md").read_text()
    # rendered on the index's project page: a docs mention must be a working link
    for line in readme.splitlines():
        if "veza docs site" in line:
            links = re.findall(r"\]\((https?://[^)\s]+)\)", line)
            assert links, f"{pkg_dir.name}/README.md names the docs site without a link"
            for link in links:
                path_in_repo(link)
