"""Import every module of an installed package in a venv that holds only its required deps.

Run as ``python -I tools/check_imports.py DIST IMPORT_NAME`` inside a fresh venv where
DIST was installed from its wheel *without extras*. It imports each submodule:

* success: the module needs only declared, required dependencies;
* ``ModuleNotFoundError`` for a distribution the package declares in an extra: the
  module is gated by that extra (allowed, reported);
* anything else (an undeclared third-party library, a sibling veza package that is not
  declared): exit 1.

Standard library only, on purpose: anything we installed here to help would become
importable by the code under test and could hide the very fault we look for.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import re
import sys

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def extra_only_requirements(dist: str) -> dict[str, str]:
    """Map the import-style name of each extra-only requirement to the extra declaring it."""
    gated: dict[str, str] = {}
    for line in importlib.metadata.requires(dist) or []:
        name_match = _NAME.match(line)
        extra_match = _EXTRA.search(line)
        if name_match and extra_match:
            gated.setdefault(_normalise(name_match.group(1)), extra_match.group(1))
    return gated


def main(dist: str, import_name: str) -> int:
    """Import all modules of ``import_name``; return a process exit code."""
    gated = extra_only_requirements(dist)
    failures: list[str] = []

    def try_import(name: str) -> bool:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = _normalise((exc.name or "").split(".")[0])
            if missing in gated:
                print(f"  {name}: needs extra [{gated[missing]}] ({exc.name})")
            else:
                failures.append(f"{name}: imports {exc.name!r}, which {dist} does not declare")
            return False
        print(f"  {name}: ok")
        return True

    if try_import(import_name):
        package = sys.modules[import_name]
        for info in pkgutil.walk_packages(package.__path__, prefix=import_name + "."):
            if not info.name.endswith(".__main__"):
                try_import(info.name)
    for failure in failures:
        print(f"UNDECLARED IMPORT {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: check_imports.py DIST IMPORT_NAME", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
