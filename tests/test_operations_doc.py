"""The Operations page lists every environment variable the code reads, and only those.

A variable is recognised in source as a string literal shaped like an environment
variable name with one of the prefixes our packages use. That is deliberately broad: a
literal that merely looks like a variable must be documented or renamed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = (
    "CDN_",
    "WEBRTC_",
    "TRACK_STORAGE_",
    "AWS_",
    "APP_ENV",
    "HYPERSWITCH_",
    "STRIPE_",
    "VEZA_",
    "LEDGER_",
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_DOC_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", re.MULTILINE)


def _sources() -> list[Path]:
    files = list(ROOT.glob("packages/*/src/**/*.py"))
    files += list(ROOT.glob("examples/*/src/**/*.py"))
    return sorted(files)


def variables_in_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = {  # names in __all__ are Python names, not environment variables
            id(element)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
            for element in node.value.elts
        }
        for node in ast.walk(tree):
            if (
                id(node) not in exported
                and isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _ENV_NAME.match(node.value)
                and node.value.startswith(PREFIXES)
            ):
                found.setdefault(node.value, set()).add(str(path.relative_to(ROOT)))
    return found


def variables_in_docs() -> set[str]:
    return set(_DOC_ROW.findall((ROOT / "docs" / "operations.md").read_text(encoding="utf-8")))


def test_every_variable_the_code_reads_is_documented():
    undocumented = {n: sorted(f) for n, f in variables_in_code().items()}
    for name in variables_in_docs():
        undocumented.pop(name, None)
    assert undocumented == {}


def test_every_documented_variable_is_read_somewhere():
    assert sorted(variables_in_docs() - set(variables_in_code())) == []
