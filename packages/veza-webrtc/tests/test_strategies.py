"""veza_webrtc.strategies: valid URLs parse, invalid ones raise, types resolve."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from veza_webrtc import IceURL, IceURLSyntaxError, Secret, parse_ice_url
from veza_webrtc.strategies import ice_urls, invalid_ice_urls


@settings(max_examples=200)
@given(url=ice_urls())
def test_drawn_urls_parse_and_print_back(url):
    parsed = parse_ice_url(url)
    assert str(parsed) == url
    assert 1 <= parsed.effective_port <= 65535


@settings(max_examples=200)
@given(url=invalid_ice_urls())
def test_drawn_invalid_urls_are_refused(url):
    with pytest.raises(IceURLSyntaxError):
        parse_ice_url(url)


@given(url=ice_urls(schemes=("turn", "turns")))
def test_turn_only(url):
    assert parse_ice_url(url).is_turn


def test_value_types_resolve_through_the_entry_point_hook():
    @settings(max_examples=30)
    @given(st.from_type(IceURL), st.from_type(Secret))
    def check(url, secret):
        assert parse_ice_url(str(url)) == url
        assert "*" in repr(secret)

    check()
