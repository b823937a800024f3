"""Exported names and public callables with more than two positional parameters.

usage: ``uv run python tools/api_shape.py [SRC_ROOT] [-v]``

``SRC_ROOT/packages/*/src`` go first on ``sys.path``, so another checkout (for example
``git archive <commit> packages`` unpacked in a folder) is measured the same way. The
rule and its exemptions are those of ``tests/test_house_rules.py``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Print one line per package, then the total; ``-v`` lists the callables."""
    args = [a for a in argv if a != "-v"]
    root = Path(args[0]) if args else Path()
    sys.path[:0] = [str(p) for p in sorted(root.glob("packages/*/src"))]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_house_rules import PACKAGES, over_two_positional  # noqa: PLC0415 - after sys.path

    total = 0
    for name in sorted(PACKAGES):
        module = importlib.import_module(name)
        over = over_two_positional(name)
        total += len(over)
        print(f"{name}: exports={len(module.__all__)} over_two_positional={len(over)}")
        if "-v" in argv:
            for callable_name, count in sorted(over.items()):
                print(f"    {callable_name} ({count})")
    print(f"total over_two_positional={total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
