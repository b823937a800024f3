"""Every Python example of the READMEs and the docs site runs (issue 17).

Each ``python`` block of ``README.md``, ``packages/*/README.md`` and ``docs/**/*.md`` is
found by sybil's markdown parser and executed, in page order, in one namespace per page,
exactly as written. A block that is a fragment (it uses the reader's ``storage``,
``order`` or ``api_key``) gets the names it leaves to the reader from the page's setup in
``conftest.py``, built on the packages' real fakes (FakeHyperswitch, FakeStripe, a SQLite
ledger, a local storage root, the local CDN edge); the setup may also check afterwards
what the example claims, and call the ``test_*`` functions a block defines. A page with
no setup runs with an empty namespace: a new page's example must stand on its own, or get
a setup here. ``await`` at the top level of a block runs in an event loop, as a reader
pasting it into an ``async def`` would.

The snippet includes (```` ```{.python} ```` with ``--8<--``) show files of
``docs/examples/integrator``, whose suite ``tests/test_integrator_suite.py`` runs; this
module checks that every include points there, at lines that exist.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

ROOT = Path(__file__).resolve().parents[2]
# the examples counted when this suite was written: a page may add blocks, never lose
# them unnoticed (a renamed fence such as ```py would silently stop running)
KNOWN_PYTHON_BLOCKS = 50
_INCLUDE = re.compile(r'^```\{\.python\}\n--8<-- "([^":]+)(?::(\d+):(\d+))?"\n```', re.MULTILINE)
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_CO_COROUTINE = inspect.CO_COROUTINE


def pages() -> list[Path]:
    """Every page a reader may copy from: the READMEs and the docs site."""
    found = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
    return found + sorted((ROOT / "docs").rglob("*.md"))


def _evaluate(example: Example) -> None:
    """Run one block, as written, in the page's namespace (top-level ``await`` allowed)."""
    __tracebackhide__ = True
    source = "\n" * (example.line + example.parsed.line_offset) + example.parsed
    code = compile(source, example.path, "exec", flags=_TOP_LEVEL_AWAIT, dont_inherit=True)
    before = set(example.namespace)
    if code.co_flags & _CO_COROUTINE:
        asyncio.run(eval(code, example.namespace))  # noqa: S307 - the docs' own code
    else:
        exec(code, example.namespace)  # noqa: S102 - the docs' own code
    # a block that defines a test means it to run: call it (fixtures are not offered)
    for name in sorted(set(example.namespace) - before):
        if name.startswith("test_") and callable(example.namespace[name]):
            example.namespace[name]()


SYBIL = Sybil(parsers=[CodeBlockParser("python", _evaluate)])


def python_examples(page: Path) -> list[Example]:
    """The page's ``python`` blocks, in order."""
    return list(SYBIL.parse(page))


def _relative(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PAGES_WITH_EXAMPLES = [p for p in pages() if python_examples(p)]


def test_no_example_slips_by(page_setups: dict[str, Any]) -> None:
    counts = {_relative(p): len(python_examples(p)) for p in PAGES_WITH_EXAMPLES}
    total = sum(counts.values())
    print(f"{total} python examples on {len(counts)} pages")  # noqa: T201 - the count, in -s/-rA
    assert total >= KNOWN_PYTHON_BLOCKS, counts
    # every README of a package carries a runnable example
    assert {f"packages/{p.name}/README.md" for p in ROOT.glob("packages/*")} <= set(counts)
    # a setup for a page that no longer has examples is a renamed or emptied page
    assert set(page_setups) <= set(counts), set(page_setups) - set(counts)


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=_relative)
def test_the_page_examples_run(
    page: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    page_setups: dict[str, Any],
) -> None:
    setup = page_setups.get(_relative(page))
    monkeypatch.chdir(tmp_path)  # an example writing a relative path writes here
    prepared = setup(request) if setup else None
    namespace = dict(prepared.namespace) if prepared else {}
    before = prepared.before if prepared else {}
    around = prepared.around if prepared else {}
    examples = python_examples(page)
    examples[0].namespace.update(namespace)  # one namespace per page, shared by its blocks
    for index, example in enumerate(examples):
        if index in before:
            before[index](example.namespace)
        with around[index](example.namespace) if index in around else contextlib.nullcontext():
            example.evaluate()
    if prepared and prepared.after:
        prepared.after(examples[0].namespace)


def test_every_snippet_include_is_a_file_the_integrator_suite_runs() -> None:
    suite = ROOT / "docs" / "examples" / "integrator"
    includes: list[tuple[str, str]] = []
    for page in pages():
        for path, start, end in _INCLUDE.findall(page.read_text(encoding="utf-8")):
            target = ROOT / path
            assert target.is_file(), (page, path)
            assert suite in target.parents, f"{path}: not under {suite}, so nothing runs it"
            if start:
                assert 1 <= int(start) <= int(end) <= len(target.read_text().splitlines())
            includes.append((_relative(page), path))
    assert len(includes) >= 2, includes
    runner = (ROOT / "tests" / "test_integrator_suite.py").read_text(encoding="utf-8")
    assert '"docs" / "examples" / "integrator"' in runner
