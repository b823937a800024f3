"""The one documented normalisation: percent-encode what RFC 3986 forbids, keep the rest."""

import re

import pytest
from hypothesis import given, strategies as st

from veza_cdn import SigningError, normalize_url

ALLOWED = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example/a b.mp3", "https://a.example/a%20b.mp3"),
        ("https://a.example/é", "https://a.example/%C3%A9"),
        ("https://a.example/%c3%a9", "https://a.example/%c3%a9"),
        ("https://a.example/100%", "https://a.example/100%25"),
        ("https://a.example/a%2", "https://a.example/a%252"),
        ('https://a.example/a"b<c>', "https://a.example/a%22b%3Cc%3E"),
        ("https://a.example/q?x=a b", "https://a.example/q?x=a%20b"),
        ("https://a.example/😀", "https://a.example/%F0%9F%98%80"),
    ],
)
def test_examples(raw, expected):
    assert normalize_url(raw) == expected


def test_fragments_are_refused():
    with pytest.raises(SigningError, match="fragment"):
        normalize_url("https://a.example/a#t=10")


@given(st.text(max_size=60).filter(lambda s: "#" not in s))
def test_output_is_plain_rfc3986_and_idempotent(tail):
    url = normalize_url("https://a.example/" + tail)
    assert url.isascii()
    assert ALLOWED.match(url)
    assert normalize_url(url) == url
