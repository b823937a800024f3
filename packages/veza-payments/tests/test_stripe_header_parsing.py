"""The ``Stripe-Signature`` header as stripe-python reads it, item by item.

Hyperswitch's Stripe-compatible mode sends ``t=<unix>,v1=<hex>``. What a verifier
does with everything else in the header (no ``t``, an item without ``=``, another
scheme such as ``v0``, several ``v1``, a missing header) decides whether a forged
delivery gets through. The reference is stripe-python's own
``WebhookSignature.verify_header`` (a test dependency): the property test builds headers
from those pieces and asks both verifiers; the named cases pin each rule on its own,
so a regression says which one broke.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import stripe
from hypothesis import example, given, settings, strategies as st

from veza_payments import stripe_signature_header, verify_stripe_signature

KEY = "whsec_header_parsing"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
T = 1_795_000_000


def _digest(signed: bytes, key: str = KEY) -> str:
    """HMAC-SHA256 hex of ``signed`` (a forger's tool: any string, not only ``t.body``)."""
    return hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


GOOD = _digest(f"{T}.".encode() + BODY)


def _stripe_accepts(body: bytes, header: str, key: str) -> bool:
    try:
        return bool(stripe.WebhookSignature.verify_header(body, header, key, tolerance=None))
    except stripe.SignatureVerificationError:
        return False


# Header items: a valid v1, wrong ones, other schemes, junk, and digests over strings
# a sloppy parser would sign when ``t`` is missing ("." + body, "None." + body). A
# non-ASCII v1 is left to its own test: stripe-python raises ``TypeError`` on it.
PIECES = {
    "good": lambda body, t: f"v1={_digest(f'{t}.'.encode() + body)}",
    "bad": lambda body, t: f"v1={'b' * 64}",
    "short": lambda body, t: f"v1={_digest(f'{t}.'.encode() + body)[:-1]}",
    "v0_good": lambda body, t: f"v0={_digest(f'{t}.'.encode() + body)}",
    "junk": lambda body, t: "junk",
    "other": lambda body, t: "x=y",
    "dot_only": lambda body, t: f"v1={_digest(b'.' + body)}",
    "none_dot": lambda body, t: f"v1={_digest(b'None.' + body)}",
}


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=64).map(lambda b: b.hex().encode()),
    t=st.integers(min_value=0, max_value=2**40),
    pieces=st.lists(st.sampled_from(sorted(PIECES)), max_size=5),
    t_at=st.none() | st.integers(min_value=0, max_value=5),
)
@example(body=BODY, t=T, pieces=["dot_only"], t_at=None)
@example(body=BODY, t=T, pieces=["none_dot"], t_at=None)
@example(body=BODY, t=T, pieces=["junk", "good"], t_at=1)
@example(body=BODY, t=T, pieces=["good", "bad"], t_at=0)
@example(body=BODY, t=T, pieces=["v0_good"], t_at=0)
def test_we_accept_exactly_the_headers_stripe_python_accepts(
    body: bytes, t: int, pieces: list[str], t_at: int | None
) -> None:
    items = [PIECES[name](body, t) for name in pieces]
    if t_at is not None:
        items.insert(min(t_at, len(items)), f"t={t}")
    header = ",".join(items)
    assert verify_stripe_signature(body, header, keys=KEY, tolerance=None) == _stripe_accepts(
        body, header, KEY
    )


def test_no_header_is_refused() -> None:
    assert not verify_stripe_signature(BODY, None, keys=KEY, tolerance=None)
    assert not verify_stripe_signature(BODY, None, keys=KEY, tolerance=300, now=T)


def test_a_header_without_t_is_refused_not_raised_with_a_tolerance() -> None:
    for signed in (b".", b"None.", b""):
        header = f"v1={_digest(signed + BODY)}"
        assert not verify_stripe_signature(BODY, header, keys=KEY, tolerance=None)
        assert not verify_stripe_signature(BODY, header, keys=KEY, tolerance=300, now=T)


def test_items_without_an_equals_sign_are_skipped_not_the_end() -> None:
    header = f"junk,t={T},v1={GOOD}"
    assert _stripe_accepts(BODY, header, KEY)
    assert verify_stripe_signature(BODY, header, keys=KEY, tolerance=None)


def test_another_scheme_never_counts_as_v1() -> None:
    header = f"t={T},v0={GOOD}"
    assert not _stripe_accepts(BODY, header, KEY)
    assert not verify_stripe_signature(BODY, header, keys=KEY, tolerance=None)


def test_a_malformed_v1_is_ignored_without_raising() -> None:
    for value in ("\u00e9", "xyz", GOOD[:-1], GOOD + "0", "g" * 64):
        assert not verify_stripe_signature(BODY, f"t={T},v1={value}", keys=KEY, tolerance=None)
        assert verify_stripe_signature(
            BODY, f"t={T},v1={value},v1={GOOD}", keys=KEY, tolerance=None
        )


def test_one_matching_v1_among_several_is_enough_wherever_it_stands() -> None:
    others = ["b" * 64, "c" * 64]
    for position in range(3):
        sigs = [*others]
        sigs.insert(position, GOOD)
        header = f"t={T}," + ",".join(f"v1={s}" for s in sigs)
        assert verify_stripe_signature(BODY, header, keys=KEY, tolerance=None)


@pytest.mark.parametrize(("offset", "accepted"), [(300, True), (-300, True), (301, False)])
def test_the_tolerance_is_inclusive(offset: int, accepted: bool) -> None:
    header = stripe_signature_header(BODY, KEY, timestamp=T)
    assert (
        verify_stripe_signature(BODY, header, keys=KEY, tolerance=300, now=T + offset) is accepted
    )


def test_now_defaults_to_the_system_clock() -> None:
    header = stripe_signature_header(BODY, KEY, timestamp=int(time.time()))
    assert verify_stripe_signature(BODY, header, keys=KEY, tolerance=3600)
    stale = stripe_signature_header(BODY, KEY, timestamp=int(time.time()) - 7200)
    assert not verify_stripe_signature(BODY, stale, keys=KEY, tolerance=3600)
