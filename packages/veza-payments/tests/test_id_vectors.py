"""Derived ids are stored by callers (ledger rows hold them): they must never change.

The vectors were produced by this version's derivation (SHA-256 over namespace, kind
and key joined by NUL, base32, lower-case, cut to 30 characters); a change to any
step would make a retry after an upgrade create a second payment or refund.
"""

from __future__ import annotations

import pytest

from veza_payments import InvalidIdempotencyKeyError, payment_id_for, refund_id_for


def test_derived_ids_are_stable_across_versions() -> None:
    assert payment_id_for("order-42") == "p_mg75xus4ipzjet35wxri34vmshk3"
    assert refund_id_for("order-42", namespace="shop1") == "r_shop1_m6n4maoom4qbyfwwa6jcqk"


def test_a_refused_key_is_quoted_in_the_error_up_to_40_characters() -> None:
    key = "k" * 41 + " "
    with pytest.raises(InvalidIdempotencyKeyError) as caught:
        payment_id_for(key)
    assert str(caught.value).endswith(f"got {len(key)} characters: {'k' * 40!r}")
