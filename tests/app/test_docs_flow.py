"""The money-flow examples of the docs run, against FakeHyperswitch, with a namespace.

Every ``python`` block preceded by ``<!-- docs-flow: … -->`` in ``docs/`` is executed
here (issue 16): the ledger guide's ``veza_ledger.flows`` example on a SQLite ledger,
the payments guide's hand-written sequence on plain objects. The client has an
``idempotency_namespace``, so an id re-derived without it would fail the examples' own
asserts, and the "store the id before the call" rule is checked from outside: when a
row is saved, the provider holds nothing under that id yet.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from veza_ledger import Ledger, create_engine, upgrade
from veza_payments import HyperswitchClient, payment_id_for
from veza_payments.testing import FakeHyperswitch

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAMESPACE = "shop1"
_MARKED = re.compile(r"<!-- docs-flow:[^>]*-->\s*```python\n(.*?)```", re.DOTALL)


def flow_blocks() -> dict[str, list[str]]:
    """The marked blocks, by page (relative path)."""
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        blocks = _MARKED.findall(page.read_text(encoding="utf-8"))
        if blocks:
            found[str(page.relative_to(DOCS))] = blocks
    return found


@pytest.fixture
def psp() -> Iterator[FakeHyperswitch]:
    with FakeHyperswitch() as server:
        yield server


@pytest.fixture
def hyperswitch(psp: FakeHyperswitch) -> Iterator[HyperswitchClient]:
    with HyperswitchClient(
        psp.api_key, base_url=psp.url, idempotency_namespace=NAMESPACE, sleep=lambda _s: None
    ) as client:
        yield client


def test_the_flow_pages_carry_executed_examples() -> None:
    assert set(flow_blocks()) >= {"ledger/guide.md", "payments/guide.md"}


def test_the_ledger_guide_flow_runs(
    tmp_path: Path, psp: FakeHyperswitch, hyperswitch: HyperswitchClient
) -> None:
    (block,) = flow_blocks()["ledger/guide.md"]
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade(engine)
    ledger = Ledger(engine)
    scope: dict[str, Any] = {"ledger": ledger, "hyperswitch": hyperswitch, "order_id": "o-42"}
    original = ledger.orders.mark_paid

    def mark_paid(order_id: str, **kw: Any) -> Any:
        order = ledger.orders.get(order_id)
        psp.set_payment_status(order.psp_payment_id or "", "succeeded")  # the buyer paid
        return original(order_id, **kw)

    ledger.orders.mark_paid = mark_paid  # type: ignore[method-assign]
    exec(compile(block, "docs/ledger/guide.md", "exec"), scope)  # noqa: S102 - the docs' own code
    order = ledger.orders.get("o-42")
    assert order.psp_payment_id == payment_id_for("o-42", namespace=NAMESPACE)
    assert order.psp_payment_id != payment_id_for("o-42")
    assert list(psp.payments) == [order.psp_payment_id]
    (refund,) = ledger.refunds.of_order("o-42")
    assert (refund.status, refund.hyperswitch_refund_id) == ("succeeded", *psp.refunds)
    engine.dispose()


def test_the_payments_guide_flow_runs(psp: FakeHyperswitch) -> None:
    (block,) = flow_blocks()["payments/guide.md"]
    saved: list[str] = []

    def save(row: Any) -> None:
        """The reader's persistence: the provider must not hold the id yet."""
        provider_id = getattr(row, "psp_payment_id", None) or row.provider_refund_id
        held = psp.payments if provider_id.startswith("p_") else psp.refunds
        assert provider_id not in held, "stored after the provider call"
        saved.append(provider_id)
        if provider_id.startswith("r_"):  # the buyer paid before the seller refunds
            psp.set_payment_status(payment_id_for("o-7", namespace=NAMESPACE), "succeeded")

    scope: dict[str, Any] = {
        "api_key": psp.api_key,
        "base_url": psp.url,
        "order": types.SimpleNamespace(id="o-7", psp_payment_id=None),
        "refund_row": types.SimpleNamespace(id="rf-7", provider_refund_id=None),
        "user": types.SimpleNamespace(id="u-1"),
        "return_url": "https://shop.example/back",
        "save": save,
    }
    exec(compile(block, "docs/payments/guide.md", "exec"), scope)  # noqa: S102 - the docs' own code
    scope["client"].close()
    assert saved == [*psp.payments, *psp.refunds]
    assert saved[0] == payment_id_for("o-7", namespace="shop1")
