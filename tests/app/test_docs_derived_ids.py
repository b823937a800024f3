"""No docs page re-derives a provider id without the client's namespace (issue 16).

``veza_payments.payment_id_for(key)`` without ``namespace=`` answers another id than a
client with ``idempotency_namespace`` set uses; the docs call the client's
``payment_id_for`` / ``refund_id_for`` methods (or pass the namespace explicitly).
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
# a call not preceded by ``.`` (so not a method on a client), with its arguments
_BARE_CALL = re.compile(r"(?<![.\w])((?:payment|refund)_id_for)\(([^)]*)\)")


def test_docs_derive_ids_through_the_client() -> None:
    offenders = [
        f"{page.relative_to(DOCS)}: {match.group(0)}"
        for page in sorted(DOCS.rglob("*.md"))
        for match in _BARE_CALL.finditer(page.read_text(encoding="utf-8"))
        if "namespace" not in match.group(2)
    ]
    assert offenders == []


def test_the_check_catches_the_old_form() -> None:
    old = "psp_payment_id=payment_id_for(order_id), refund_id_for(refund.id)"
    assert [m.group(1) for m in _BARE_CALL.finditer(old)] == ["payment_id_for", "refund_id_for"]
    assert not list(_BARE_CALL.finditer("hyperswitch.payment_id_for(order_id)"))
