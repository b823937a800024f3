"""Issue 18's design figures: suppressions, largest public class, import cycles.

usage: ``uv run python tools/design_figures.py``

- suppressions: ``# noqa`` and ``# type: ignore`` comments in shipped source (the
  packages' ``src`` and the reference app), the count ``tests/test_house_rules.py`` pins;
- the largest exported class by public callables (methods, properties excluded);
- import cycles: between the distributions, and among all modules of the packages and
  the app (Tarjan over the imports a module makes when it runs; ``TYPE_CHECKING``
  blocks and function bodies excluded).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*sorted((ROOT / "packages").glob("*/src")), ROOT / "examples/reference-app/src"]
PACKAGES = ["veza_cdn", "veza_ledger", "veza_payments", "veza_storage", "veza_webrtc"]
_SUPPRESSION = re.compile(r"#\s*(noqa|type:\s*ignore)\b")


def suppressions() -> int:
    """Suppression comments in shipped source."""
    return sum(
        1
        for root in SOURCES
        for path in root.rglob("*.py")
        for line in path.read_text().splitlines()
        if _SUPPRESSION.search(line)
    )


def largest_class() -> tuple[str, int]:
    """The exported class with the most public callables, and how many it has."""
    best = ("", 0)
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if not inspect.isclass(value) or issubclass(value, BaseException):
                continue
            count = sum(
                1
                for attr, member in inspect.getmembers(value)
                if not attr.startswith("_")
                and callable(member)
                and not inspect.isclass(member)
                and _defined_by_veza(value, attr)
            )
            if count > best[1]:
                best = (f"{package}.{name}", count)
    return best


def _defined_by_veza(cls: type, attr: str) -> bool:
    """Whether ``attr`` comes from veza code (not ``str``'s or ``enum``'s methods)."""
    owner = next((c for c in cls.__mro__ if attr in vars(c)), None)
    return owner is not None and owner.__module__.startswith("veza")


def package_cycles(graph: dict[str, set[str]]) -> bool:
    """Whether two distributions import each other (directly or through others)."""
    top = {name: name.split(".")[0] for name in graph}
    edges = {(top[a], top[b]) for a, targets in graph.items() for b in targets if top[a] != top[b]}
    reach = {a: {b for x, b in edges if x == a} for a, _ in edges}
    changed = True
    while changed:
        changed = False
        for reachable in reach.values():
            more = set().union(*(reach.get(b, set()) for b in reachable)) - reachable
            if more:
                reachable.update(more)
                changed = True
    return any(a in targets for a, targets in reach.items())


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> set[str]:
    """Modules imported when the module runs.

    Top level, ``if``/``try`` blocks included; function bodies (lazy imports of extras,
    or across a cycle on purpose) and ``TYPE_CHECKING`` blocks excluded. ``from pkg
    import module`` is an import of ``pkg.module`` (resolved in :func:`import_graph`).
    """
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(f"{node.module}:{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports when it runs."""
    graph: dict[str, set[str]] = {}
    for root in SOURCES:
        for path in root.rglob("*.py"):
            graph[_module_name(root, path)] = _imports(ast.parse(path.read_text()))
    resolved: dict[str, set[str]] = {}
    for name, edges in graph.items():
        targets = set()
        for edge in edges:
            module, _, member = edge.partition(":")
            target = f"{module}.{member}" if f"{module}.{member}" in graph else module
            if target in graph and target != name:
                targets.add(target)
        resolved[name] = targets
    return resolved


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def main() -> int:
    """Print the three figures; cycles, if any, one per line."""
    name, count = largest_class()
    graph = import_graph()
    cycles = import_cycles(graph)
    print(f"suppressions={suppressions()}")
    print(f"largest_class={name} public_callables={count}")
    print(f"cycles_between_packages={int(package_cycles(graph))}")
    print(f"module_import_cycles={len(cycles)}")
    for cycle in cycles:
        print("  " + " -> ".join(cycle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
