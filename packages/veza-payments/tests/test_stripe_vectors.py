"""Stripe-mode signatures pinned by vectors from stripe-python's own webhook code.

Hyperswitch's Stripe-compatible mode signs ``"<t>." + body`` with HMAC-SHA256, as
Stripe does. Rather than a second hand-written HMAC (which would share our mistakes,
such as a signed string without its ``.``), the expected values come from
``stripe.WebhookSignature`` (``_compute_signature`` builds the digest Stripe's SDK
compares; ``verify_header`` is the SDK's public check).
"""

from __future__ import annotations

import stripe
from hypothesis import given, settings, strategies as st

from veza_payments import stripe_signature_header, verify_stripe_signature

bodies = st.text(max_size=300)
secrets = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60)
timestamps = st.integers(min_value=0, max_value=2**40)


def _stripe_header(body: str, secret: str, timestamp: int) -> str:
    digest = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return f"t={timestamp},v1={digest}"


@settings(max_examples=150)
@given(bodies, secrets, timestamps)
def test_our_header_is_the_one_stripe_python_computes(body: str, secret: str, t: int) -> None:
    assert stripe_signature_header(body.encode(), secret, timestamp=t) == _stripe_header(
        body, secret, t
    )


@settings(max_examples=150)
@given(bodies, secrets, timestamps)
def test_we_accept_what_stripe_python_signs_and_it_accepts_ours(
    body: str, secret: str, t: int
) -> None:
    raw = body.encode()
    theirs = _stripe_header(body, secret, t)
    assert verify_stripe_signature(raw, theirs, keys=secret, tolerance=None)
    ours = stripe_signature_header(raw, secret, timestamp=t)
    assert stripe.WebhookSignature.verify_header(raw, ours, secret, tolerance=None)


def test_fixed_vectors_from_stripe_python() -> None:
    """Two literal vectors, so a change in either implementation is seen in review."""
    cases = [
        ('{"id":"evt_1","type":"payment_intent.succeeded"}', "whsec_test_secret", 1700000000),
        ("", "k", 0),
    ]
    for body, secret, t in cases:
        expected = _stripe_header(body, secret, t)
        assert stripe_signature_header(body.encode(), secret, timestamp=t) == expected
        assert verify_stripe_signature(body.encode(), expected, keys=secret, tolerance=None)
        # The signed string is "<t>." + body: without the dot the digest differs.
        no_dot = stripe.WebhookSignature._compute_signature(f"{t}{body}", secret)
        assert not verify_stripe_signature(
            body.encode(), f"t={t},v1={no_dot}", keys=secret, tolerance=None
        )
