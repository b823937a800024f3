"""ICE server URLs validated exactly as browsers do (webrtc-pc, RFC 7064, RFC 7065)."""

import pytest
from hypothesis import given, strategies as st

from veza_webrtc import IceURL, IceURLSyntaxError, parse_ice_url

VALID = [
    ("stun:stun.l.google.com:19302", IceURL("stun", "stun.l.google.com", 19302)),
    ("stuns:stun.example.org", IceURL("stuns", "stun.example.org")),
    ("turn:turn.example.org", IceURL("turn", "turn.example.org")),
    ("turn:turn.example.org:3478?transport=udp", IceURL("turn", "turn.example.org", 3478, "udp")),
    ("turns:turn.example.org:443?transport=tcp", IceURL("turns", "turn.example.org", 443, "tcp")),
    ("turn:[2001:db8::1]:3478", IceURL("turn", "[2001:db8::1]", 3478)),
    ("stun:192.0.2.1", IceURL("stun", "192.0.2.1")),
    ("STUN:Example.Org", IceURL("stun", "Example.Org")),  # the URL parser lowercases schemes
    ("stun:127.1", IceURL("stun", "127.1")),  # WHATWG IPv4 shorthand
    ("stun:0x7f.0.0.1", IceURL("stun", "0x7f.0.0.1")),
    ("turn:host:", IceURL("turn", "host")),  # an empty port is allowed
    ("stun:my_host", IceURL("stun", "my_host")),  # underscores are not forbidden
]

INVALID = [
    ("stun://stun.example.org", "no '//'"),  # no opaque path
    ("http://example.org", "unknown scheme"),
    ("stun:", "no host"),
    ("stun:host/path", "'/'"),
    ("turn:user@host", "'@'"),
    ("stun:host#frag", "fragment"),
    ("stun:host?transport=udp", "STUN URLs take no query"),
    ("stun:host?", "STUN URLs take no query"),
    ("turn:host?transport=sctp", "transport=udp or transport=tcp"),
    ("turn:host?transport=udp&x=1", "transport=udp or transport=tcp"),
    ("turn:host:0", "between 1 and 65535"),
    ("turn:host:65536", "between 1 and 65535"),
    ("turn:host:34x", "digits"),
    ("stun:[::1", "invalid host"),
    ("stun:[zz::1]", "invalid host"),
    ("stun:1.2.3.256", "invalid host"),
    ("stun:1.2.3.4.5", "invalid host"),
    ("stun:ho st", "invalid host"),
    ("stun:host%41", "invalid host"),
    ("stun:[fe80::1%25eth0]", "invalid host"),
    ("stun:host:3478:1", "digits"),
    ("turns:host?transport=tls", "transport=udp or transport=tcp"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_urls(text, expected):
    assert parse_ice_url(text) == expected


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_urls_raise_syntax_error_naming_the_url(text, reason):
    with pytest.raises(IceURLSyntaxError) as info:
        parse_ice_url(text)
    assert reason in str(info.value)
    assert repr(text) in str(info.value)


def test_default_ports():
    assert parse_ice_url("stun:h").effective_port == 3478
    assert parse_ice_url("turns:h").effective_port == 5349
    assert parse_ice_url("turn:h:80").effective_port == 80


labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10).filter(
    lambda s: not s.startswith(("-", "0x")) and not s.isdigit()
)
hosts = (
    st.lists(labels, min_size=1, max_size=4).map(".".join)
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(lambda a: f"[{a}]")
)
urls = st.builds(
    IceURL,
    scheme=st.sampled_from(["stun", "stuns", "turn", "turns"]),
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    transport=st.none(),
).flatmap(
    lambda u: (
        st.just(u)
        if not u.is_turn
        else st.sampled_from([None, "udp", "tcp"]).map(
            lambda t: IceURL(u.scheme, u.host, u.port, t)
        )
    )
)


@given(urls)
def test_generated_urls_parse_and_round_trip(url):
    assert parse_ice_url(str(url)) == url
    assert str(parse_ice_url(str(url))) == str(url)


@given(
    urls,
    st.sampled_from(
        [
            lambda s: s.replace(":", "://", 1),
            lambda s: s + "/x",
            lambda s: s.replace(":", ":user@", 1),
            lambda s: s + "#f",
            lambda s: s.split("?")[0] + "?transport=quic",
            lambda s: "http" + s[s.index(":") :],
            lambda s: s.split("?")[0].split("]")[0] + ("]" if "]" in s else "") + ":99999",
        ]
    ),
)
def test_mutated_urls_are_rejected(url, mutate):
    with pytest.raises(IceURLSyntaxError):
        parse_ice_url(mutate(str(url)))
