"""The API reference shows ``:class:`X``` roles as links (``tools/griffe_roles.py``).

Each package is loaded with griffe and the extension the docs build uses; no raw role may
remain in any docstring, a documented target becomes a cross-reference to its public path,
and a private or third-party target becomes inline code (a link there would break
``mkdocs build --strict``).
"""

from __future__ import annotations

import re
from pathlib import Path

import griffe
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = f"{ROOT / 'tools' / 'griffe_roles.py'}:SphinxRoles"
PACKAGES = sorted(p.parent.name.replace("-", "_") for p in ROOT.glob("packages/*/src"))
RAW_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|mod|data|obj|const):`")
LINK = re.compile(r"\[`([^`]+)`\]\[([\w.]+)\]")


def load(name: str, src: Path, docs: Path = ROOT / "docs") -> griffe.Module:
    module = griffe.load(
        name,
        search_paths=[str(src)],
        extensions=griffe.load_extensions({EXTENSION: {"docs_dir": str(docs)}}),
        resolve_aliases=True,
    )
    assert isinstance(module, griffe.Module)
    return module


def docstrings(obj: griffe.Object) -> dict[str, str]:
    found = {obj.path: obj.docstring.value} if obj.docstring else {}
    for member in obj.members.values():
        if not member.is_alias:
            found.update(docstrings(member))  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_raw_role_is_left(package: str):
    src = ROOT / "packages" / package.replace("_", "-") / "src"
    texts = docstrings(load(package, src))
    left = {path: RAW_ROLE.findall(text) for path, text in texts.items() if RAW_ROLE.search(text)}
    assert left == {}
    for _shown, target in (m for text in texts.values() for m in LINK.findall(text)):
        assert target.startswith(package) and "._" not in target, target


def test_roles_resolve_from_the_docstring_scope(tmp_path: Path):
    pkg = tmp_path / "src" / "demo_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        '"""Demo."""\n\nfrom demo_pkg._impl import Client, helper\n\n'
        '__all__ = ["Client", "helper"]\n'
    )
    (pkg / "_impl.py").write_text(
        '"""Impl."""\n\n\n'
        "def _private() -> None:\n"
        '    """Private."""\n\n\n'
        "def helper() -> None:\n"
        '    """See :class:`Client` and :meth:`Client.send`, not :func:`_private`."""\n\n\n'
        "class Client:\n"
        '    """Use :meth:`send`; :class:`~demo_pkg.Client` too;'
        ' :class:`stripe.StripeClient`."""\n\n'
        "    def send(self) -> None:\n"
        '        """Like :func:`helper`."""\n'
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "api.md").write_text("# API\n\n::: demo_pkg\n")
    texts = docstrings(load("demo_pkg", tmp_path / "src", docs))
    assert texts["demo_pkg._impl.helper"] == (
        "See [`Client`][demo_pkg.Client] and [`Client.send()`][demo_pkg.Client.send],"
        " not `_private()`."
    )
    assert texts["demo_pkg._impl.Client"] == (
        "Use [`send()`][demo_pkg.Client.send]; [`Client`][demo_pkg.Client] too;"
        " `stripe.StripeClient`."
    )
    assert texts["demo_pkg._impl.Client.send"] == "Like [`helper()`][demo_pkg.helper]."


def test_long_code_lines_wrap():
    config = (ROOT / "mkdocs.yml").read_text()
    sheets = re.findall(r"^extra_css:\n((?:\s+- \S+\n)+)", config, re.M)
    assert sheets, "mkdocs.yml has no extra_css"
    css = "".join(
        (ROOT / "docs" / s.strip()).read_text() for s in re.findall(r"- (\S+)", sheets[0])
    )
    rule = re.search(r"\.md-typeset pre > code\s*\{([^}]*)\}", css)
    assert rule and "white-space: pre-wrap" in rule.group(1)
