"""The state-machine diagrams in the ledger docs are the transition tables, exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veza_ledger import MACHINES

DOC = Path(__file__).resolve().parents[1] / "docs" / "ledger" / "state-machines.md"
SECTION = {
    "order": "Orders",
    "refund": "Refunds",
    "transfer": "Seller transfers",
    "payout": "Payouts",
    "subscription": "Subscriptions",
}


def _diagram(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```mermaid\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_diagram_matches_the_table(machine: str) -> None:
    edges = set(re.findall(r"^\s*(\S+) --> (\S+)\s*$", _diagram(SECTION[machine]), re.M))
    m = MACHINES[machine]
    expected = {(src, dst) for src, dsts in m.transitions.items() for dst in dsts}
    expected |= {("[*]", m.initial)} | {(t, "[*]") for t in m.terminal}
    assert edges == expected


@pytest.mark.parametrize("rule", sorted(__import__("veza_ledger").RULES))
def test_every_reconciliation_rule_has_its_page(rule: str) -> None:
    page = DOC.parent / "rules" / f"{rule}.md"
    assert page.is_file()
    assert f"`{rule}`" in page.read_text(encoding="utf-8")
    assert f"rules/{rule}.md" in (DOC.parent / "reconciliation.md").read_text(encoding="utf-8")
