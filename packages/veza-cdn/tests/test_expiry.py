"""Cache-friendly expiry windows: stable inside a window, never shorter than the TTL."""

import pytest
from hypothesis import given, strategies as st

from veza_cdn import CDNConfigurationError, ExpiryPolicy


@given(
    ttl=st.integers(1, 86_400),
    window=st.integers(0, 7_200),
    now=st.floats(0, 4e9, allow_nan=False),
)
def test_expiry_lives_at_least_ttl_and_at_most_ttl_plus_two_windows(ttl, window, now):
    expires = ExpiryPolicy(ttl, window).expires_at(now)
    assert expires >= now + ttl
    assert expires <= now + ttl + 2 * window + 1


@given(ttl=st.integers(1, 3600), window=st.integers(1, 3600), start=st.integers(0, 10**9))
def test_urls_signed_within_one_window_share_their_expiry(ttl, window, start):
    policy = ExpiryPolicy(ttl, window)
    base = start - start % window
    assert policy.expires_at(base) == policy.expires_at(base + window - 0.001)
    assert policy.expires_at(base + window) == policy.expires_at(base) + window


def test_backdated_start():
    assert ExpiryPolicy(60, backdate=30).not_before(1000) == 970


@pytest.mark.parametrize(
    "kwargs", [{"ttl": 0}, {"ttl": 10, "window": -1}, {"ttl": 1, "backdate": -5}]
)
def test_invalid_policies(kwargs):
    with pytest.raises(CDNConfigurationError):
        ExpiryPolicy(**kwargs)
