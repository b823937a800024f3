"""Stripe payout events read by the ledger, and migration 0004b's carried-over intents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, strategies as st

from veza_ledger import (
    Ledger,
    LedgerConfigurationError,
    RecordNotFoundError,
    create_engine,
    upgrade,
)
from veza_ledger._transfers import PAYOUT_EVENTS, _parse_payout_event

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@given(
    event_type=st.sampled_from([*PAYOUT_EVENTS, "payout.created", "transfer.paid"]) | st.text(),
    data=JSON,
)
def test_any_event_body_parses_or_raises_a_typed_error(event_type: str, data: Any) -> None:
    """Hostile webhook bodies: ``None`` (not ours), a parse, or ``LedgerConfigurationError``."""
    try:
        parsed = _parse_payout_event({"type": event_type, "data": data})
    except LedgerConfigurationError:
        assert event_type in PAYOUT_EVENTS
        return
    if event_type not in PAYOUT_EVENTS:
        assert parsed is None
        return
    assert parsed is not None
    target, payout_id, _key, _error = parsed
    assert target == PAYOUT_EVENTS[event_type] and payout_id == data["object"]["id"]


@given(
    payout_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=64),
    key=st.text(max_size=64),
    event_type=st.sampled_from(sorted(PAYOUT_EVENTS)),
)
def test_a_well_formed_event_yields_its_id_key_and_target(
    payout_id: str, key: str, event_type: str
) -> None:
    parsed = _parse_payout_event(
        {
            "type": event_type,
            "data": {"object": {"id": payout_id, "metadata": {"veza_idempotency_key": key}}},
        }
    )
    assert parsed is not None
    assert parsed[:3] == (PAYOUT_EVENTS[event_type], payout_id, key)


def test_an_event_for_an_unknown_payout_is_not_found(ledger: Ledger) -> None:
    """The webhook answers 500 and Stripe delivers it again once the ledger knows it."""
    event = {"type": "payout.paid", "data": {"object": {"id": "po_x", "metadata": {}}}}
    with pytest.raises(RecordNotFoundError):
        ledger.payouts.apply_event(event)


def test_0004b_gives_pending_payouts_their_first_intent(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0004")
    row = (
        "INSERT INTO ledger_seller_payouts (id, seller_id, stripe_account, amount, currency, "
        "status, attempts, created_at, updated_at) VALUES (:id, 's', 'acct_s', :amount, 'EUR', "
        ":status, 0, '2026-11-26 12:00:00', '2026-11-26 12:00:00')"
    )
    with engine.begin() as connection:
        connection.execute(sa.text(row), {"id": "po-old", "amount": 700, "status": "pending"})
        connection.execute(sa.text(row), {"id": "po-paid", "amount": 5, "status": "paid"})
    upgrade(engine)
    [intent] = Ledger(engine).provider_intents.find(kind="payout")
    assert (intent.id, intent.object_id, intent.amount, intent.status) == (
        "po-old",
        "po-old",
        700,
        "pending",
    )
    payout = Ledger(engine).payouts.get("po-old")
    assert (payout.leased_until, payout.next_attempt_at) == (None, None)
    engine.dispose()
