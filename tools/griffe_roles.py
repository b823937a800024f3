"""A griffe extension that turns reStructuredText roles in docstrings into links.

Docstrings across the packages say ``:class:`RetryPolicy``` or ``:meth:`verify```, the
habit Sphinx users bring. mkdocstrings renders Markdown, where such a role shows as raw
text. Rewriting every docstring would touch every module for a rendering concern, so the
docs build rewrites them instead (``mkdocs.yml``: ``extensions: [tools/griffe_roles.py]``):

* the role's target is resolved from the docstring's own scope, as Sphinx would
  (``verify`` in a method's docstring is a sibling method; ``RetryPolicy`` an imported
  or module-level name; ``~veza_cdn.Secret`` a full path shown as ``Secret``);
* a target the site documents becomes a mkdocs-autorefs cross-reference to its public
  path (``veza_cdn.RetryPolicy``, not the private module that defines it);
* anything else (a private helper, a third-party class) becomes inline code, never a
  broken link, which ``mkdocs build --strict`` would refuse.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|attr|exc|mod|data|obj|const|property)"
    r":`(?P<tilde>~)?(?P<target>[A-Za-z_][\w.]*)(?P<call>\(\))?`"
)


DOCS = Path(__file__).resolve().parent.parent / "docs"
DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.MULTILINE)


def documented_roots(docs: Path = DOCS) -> set[str]:
    """The identifiers the site renders (``::: veza_cdn`` lines in its pages)."""
    return {m for page in docs.rglob("*.md") for m in DIRECTIVE.findall(page.read_text("utf-8"))}


def _public_paths(pkg: griffe.Module, roots: set[str]) -> dict[str, str]:
    """Map each rendered object's canonical path to the path the site shows it under.

    A ``::: module`` directive renders the module's public members (its ``__all__``, else
    its public names that are not imported), each class with its public members.
    """
    paths: dict[str, str] = {}

    def add(obj: griffe.Object | griffe.Alias, public: str) -> None:
        try:
            target = obj.final_target if isinstance(obj, griffe.Alias) else obj
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return
        if target.path in paths:
            return
        paths[target.path] = public
        if target.is_class:
            for name, member in target.members.items():
                if not name.startswith("_") and not member.is_alias:
                    add(member, f"{public}.{name}")

    for root in sorted(roots):
        if root != pkg.path and not root.startswith(pkg.path + "."):
            continue
        mod = pkg if root == pkg.path else pkg.get_member(root.removeprefix(pkg.path + "."))
        paths.setdefault(mod.path, mod.path)
        for name, member in mod.members.items():
            # griffe's rule is mkdocstrings' rule: in __all__, else public and not imported
            if member.is_public and not member.is_module:
                add(member, f"{mod.path}.{name}")
    return paths


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The canonical path ``target`` names from ``obj``'s scope, or None."""
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            found = scope.resolve(head)
        except griffe.NameResolutionError:
            scope = scope.parent
            continue
        return f"{found}.{rest}" if rest else found
    # already a full path (``veza_cdn.Secret``)
    return target if "." in target else None


def _canonical(path: str, modules: griffe.ModulesCollection) -> str:
    """Follow aliases so ``veza_cdn.Secret`` and ``veza_cdn._secret.Secret`` agree."""
    try:
        obj = modules.get_member(path)
    except KeyError:
        return path
    try:
        return str(obj.final_target.path if obj.is_alias else obj.path)
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return path


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of a loaded package.

    Args:
        docs_dir: the pages whose ``::: module`` lines say what the site renders
            (default: this repository's ``docs/``).
    """

    def __init__(self, docs_dir: str | None = None) -> None:
        super().__init__()
        self._docs = Path(docs_dir) if docs_dir else DOCS

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:  # noqa: ANN401 - griffe's hook signature
        """Rewrite the roles once the whole package is loaded and names can resolve."""
        del kwargs
        public = _public_paths(pkg, documented_roots(self._docs))

        def link(obj: griffe.Object, match: re.Match[str]) -> str:
            target = match["target"]
            shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
            if match["call"] or match["role"] in {"meth", "func"}:
                shown += "()"
            resolved = _resolve(obj, target)
            where = (
                public.get(_canonical(resolved, loader.modules_collection)) if resolved else None
            )
            if where is None and resolved in public.values():
                where = resolved
            return f"[`{shown}`][{where}]" if where else f"`{shown}`"

        def visit(obj: griffe.Object) -> None:
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = ROLE.sub(lambda m: link(obj, m), obj.docstring.value)
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)  # type: ignore[arg-type]

        visit(pkg)
