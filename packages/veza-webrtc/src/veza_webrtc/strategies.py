"""Hypothesis strategies for your own property-based tests of a veza-webrtc integration.

``pip install "veza-webrtc[hypothesis]"``, then::

    from veza_webrtc.strategies import ice_urls, invalid_ice_urls

``ice_urls`` draws STUN/TURN URLs every browser accepts (RFC 7064/7065 as webrtc-pc
validates them: domains, IPv4, bracketed IPv6, optional ports, ``?transport=`` on TURN
only); ``invalid_ice_urls`` draws URLs a browser throws ``SyntaxError`` for, in the
forms configuration mistakes take (``stun://host``, a query on STUN, a port out of
range, user info, a path). Both are checked against :func:`~veza_webrtc.parse_ice_url`.

The package registers :class:`~veza_webrtc.IceURL` and :class:`~veza_webrtc.Secret`
through hypothesis's entry-point hook, so ``st.from_type(IceURL)`` works without
importing this module.
"""

from __future__ import annotations

from hypothesis import strategies as st

from veza_webrtc._errors import IceURLSyntaxError
from veza_webrtc._secret import Secret
from veza_webrtc._uri import IceURL, parse_ice_url

__all__ = ["ice_urls", "invalid_ice_urls", "secrets", "turn_secrets"]

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
_TLD = st.sampled_from(["com", "net", "org", "example", "test", "io"])


def _valid(url: str) -> bool:
    try:
        parse_ice_url(url)
    except IceURLSyntaxError:
        return False
    return True


def _hosts() -> st.SearchStrategy[str]:
    domains = st.builds(
        lambda labels, tld: ".".join([*labels, tld]), st.lists(_LABEL, min_size=1, max_size=3), _TLD
    )
    ipv4 = st.ip_addresses(v=4).map(str)
    ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
    return st.one_of(domains, ipv4, ipv6)


def ice_urls(
    *, schemes: tuple[str, ...] = ("stun", "stuns", "turn", "turns")
) -> st.SearchStrategy[str]:
    """ICE server URLs browsers accept (``turn:turn.example.com:3478?transport=udp``)."""

    def build(scheme: str, host: str, port: int | None, transport: str | None) -> str:
        url = f"{scheme}:{host}" + (f":{port}" if port is not None else "")
        if transport is not None and scheme.startswith("turn"):
            url += f"?transport={transport}"
        return url

    return st.builds(
        build,
        st.sampled_from(schemes),
        _hosts(),
        st.none() | st.integers(min_value=1, max_value=65535),
        st.none() | st.sampled_from(["udp", "tcp"]),
    ).filter(_valid)


_BROKEN = (
    "stun://stun.example.com",
    "turn://turn.example.com:3478",
    "stun:stun.example.com?transport=udp",
    "stun:stun.example.com?",
    "turn:turn.example.com?transport=sctp",
    "turn:turn.example.com?transport=UDP",
    "turn:turn.example.com?foo=bar",
    "turn:",
    "turn:turn.example.com:0",
    "turn:turn.example.com:65536",
    "turn:turn.example.com:port",
    "turn:turn.example.com:-1",
    "http:turn.example.com",
    "webrtc:turn.example.com",
    "turn:user@turn.example.com",
    "turn:turn.example.com/path",
    "turn:turn.example.com#fragment",
    "turn:[::1",
    "turn:::1",
    "turn:300.1.1.1",
    "turn:1.2.3.256",
    "turn:exa mple.com",
    "turn:exa%mple.com",
    "turn:<script>",
    "turn.example.com:3478",
    "",
)


def invalid_ice_urls() -> st.SearchStrategy[str]:
    """ICE server URLs a browser refuses (each one raises ``IceURLSyntaxError`` here too)."""
    mutated = ice_urls().flatmap(
        lambda url: st.sampled_from(
            [
                url.replace(":", "://", 1),
                url.split("?")[0] + "?transport=sctp",
                url + "#x",
                url.replace(":", ":user@", 1),
                url.split("?")[0] + "/x",
            ]
        )
    )
    return st.one_of(st.sampled_from(_BROKEN), mutated).filter(lambda u: not _valid(u))


def turn_secrets() -> st.SearchStrategy[str]:
    """TURN REST shared secrets (``static-auth-secret``): printable, no spaces, 16-64 chars."""
    alphabet = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "\"'\\#")
    return st.text(alphabet=alphabet, min_size=16, max_size=64)


def secrets() -> st.SearchStrategy[Secret[str]]:
    """:class:`Secret` values (what ``st.from_type(Secret)`` draws)."""
    return turn_secrets().map(Secret)


def _hypothesis_setup_hook() -> None:
    """Hypothesis's entry-point hook: ``st.from_type`` for veza-webrtc's value types."""
    st.register_type_strategy(IceURL, ice_urls().map(parse_ice_url))
    st.register_type_strategy(Secret, secrets())
