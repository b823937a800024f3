"""Money, ids and retry rules: properties over generated inputs, plus the edge cases."""

from __future__ import annotations

import email.utils
import random
import re
import time
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, strategies as st

from veza_payments import (
    InvalidIdempotencyKeyError,
    MissingIdempotencyKeyError,
    PaymentsConfigurationError,
    RetryPolicy,
    check_amount,
    exponent,
    format_amount,
    normalise_currency,
    payment_id_for,
    refund_id_for,
)
from veza_payments._ids import MAX_ID

ID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
KEY_ALPHABET = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
keys = st.text(KEY_ALPHABET, min_size=1, max_size=255)
namespaces = st.from_regex(r"\A[a-z0-9]{0,8}\Z")


# --------------------------------------------------------------------------- ids


@given(keys, namespaces)
def test_derived_ids_fit_every_connector_and_are_deterministic(key: str, namespace: str) -> None:
    pid = payment_id_for(key, namespace=namespace)
    rid = refund_id_for(key, namespace=namespace)
    assert ID_SHAPE.match(pid) and ID_SHAPE.match(rid)
    assert len(pid) <= MAX_ID and len(rid) <= MAX_ID
    assert pid == payment_id_for(key, namespace=namespace)  # same key, same id: retries find it
    assert pid != rid  # a payment and a refund keyed by the same row never collide
    assert pid.startswith("p_") and rid.startswith("r_")


@given(keys, keys)
def test_different_keys_give_different_ids(a: str, b: str) -> None:
    if a != b:
        assert payment_id_for(a) != payment_id_for(b)


@given(keys)
def test_namespaces_separate_merchants_sharing_an_account(key: str) -> None:
    assert payment_id_for(key, namespace="shopa") != payment_id_for(key, namespace="shopb")
    assert payment_id_for(key, namespace="shopa").startswith("p_shopa_")


@pytest.mark.parametrize("bad", [None, "", " ", "\t\n", 42, b"order-1"])
def test_missing_keys_are_refused(bad: object) -> None:
    with pytest.raises(MissingIdempotencyKeyError) as info:
        payment_id_for(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@given(st.text(min_size=1, max_size=300))
def test_keys_outside_the_alphabet_are_refused_and_inside_accepted(key: str) -> None:
    """1-255 visible ASCII characters, nothing else, before any I/O: a ValueError."""
    valid = 1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key)
    if not key.strip():
        with pytest.raises(MissingIdempotencyKeyError):
            payment_id_for(key)
    elif valid:
        assert payment_id_for(key).startswith("p_")
    else:
        with pytest.raises(InvalidIdempotencyKeyError) as info:
            payment_id_for(key)
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "bad", ["order 1", "order-1\n", "ordér", "a\x00b", "\u200border", "k" * 256, "tab\there"]
)
def test_hostile_keys_are_refused(bad: str) -> None:
    with pytest.raises(InvalidIdempotencyKeyError):
        refund_id_for(bad)


@pytest.mark.parametrize("bad", ["UPPER", "toolongname", "dash-ed", "ünï"])
def test_bad_namespaces_are_configuration_errors(bad: str) -> None:
    with pytest.raises(PaymentsConfigurationError, match="idempotency_namespace"):
        payment_id_for("k", namespace=bad)


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("currency", "places"),
    [("EUR", 2), ("usd", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("ISK", 2), ("CLF", 4)],
)
def test_currency_exponents(currency: str, places: int) -> None:
    assert exponent(currency) == places


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["EUR", "JPY", "BHD"]))
def test_format_amount_is_exact(amount: int, currency: str) -> None:
    text, code = format_amount(amount, currency).split(" ")
    assert code == currency
    # Parsing the text back with Decimal (never float) gives the minor units exactly.
    assert Decimal(text).scaleb(exponent(currency)) == amount


@pytest.mark.parametrize("bad", [10.0, 10.5, True, "100", None, Decimal("1")])
def test_amounts_must_be_int_minor_units(bad: object) -> None:
    with pytest.raises(PaymentsConfigurationError, match="int of minor units"):
        check_amount(bad)


@pytest.mark.parametrize("bad", [0, -1])
def test_amounts_must_be_positive(bad: int) -> None:
    with pytest.raises(PaymentsConfigurationError, match="positive"):
        check_amount(bad)


@pytest.mark.parametrize("bad", ["EURO", "", "XXX1", "eu", "UYI", "XAU"])
def test_unknown_currencies_are_refused(bad: str) -> None:
    with pytest.raises(PaymentsConfigurationError, match="not a currency Hyperswitch accepts"):
        normalise_currency(bad)


# --------------------------------------------------------------------------- retry


def test_retry_policy_is_an_immutable_value() -> None:
    policy = RetryPolicy(total=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.total = 3  # type: ignore[misc]
    after = policy.increment().increment()
    assert (policy.attempts, after.attempts) == (0, 2)
    assert after.exhausted and not policy.exhausted


@pytest.mark.parametrize(
    ("status", "code", "retry"),
    [
        (None, None, True),  # connection error or timeout
        (429, None, True),
        (500, None, True),
        (502, None, True),
        (503, None, True),
        (504, None, True),
        (422, "HE_00", True),  # resource busy
        (422, "IR_06", False),
        (400, "HE_01", False),
        (400, None, False),
        (401, "IR_01", False),
        (404, "HE_02", False),
        (409, None, False),
    ],
)
def test_what_is_retried(status: int | None, code: str | None, retry: bool) -> None:
    assert RetryPolicy.is_retryable(status, code) is retry


@given(
    st.integers(min_value=0, max_value=30),
    st.floats(min_value=0.001, max_value=5),
    st.floats(min_value=0.01, max_value=60),
    st.integers(min_value=0, max_value=2**32),
)
def test_full_jitter_stays_within_the_exponential_ceiling(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(backoff_base=base, backoff_max=cap, attempts=attempts)
    delay = policy.delay(None, random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2**attempts)


@given(st.floats(min_value=0, max_value=10**6, allow_nan=False))
def test_retry_after_is_honoured_but_capped(seconds: float) -> None:
    policy = RetryPolicy(retry_after_max=30)
    assert policy.delay(f"{seconds}") == min(seconds, 30)


@pytest.mark.parametrize("header", ["soon", "-5", "nan", ""])
def test_unusable_retry_after_falls_back_to_jitter(header: str) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8)
    assert 0 <= policy.delay(header, random.Random(1)) <= 0.5


def test_retry_after_as_an_http_date() -> None:
    policy = RetryPolicy(retry_after_max=30)
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= policy.delay(in_ten) <= 10
    assert policy.delay("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # already passed: go now
    assert policy.delay(email.utils.formatdate(time.time() + 3600, usegmt=True)) == 30
