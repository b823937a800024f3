"""The generated turnserver.conf: every range denied, build-aware, secrets handled."""

import ipaddress
import re
import stat
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from veza_webrtc import (
    CoturnBuild,
    CoturnOptionError,
    Secret,
    WebRTCConfigurationError,
    coturn_config,
)
from veza_webrtc._coturn import DENIED_PEER_RANGES

DEBIAN = CoturnBuild(version=(4, 6, 1), prometheus=False)


def denied(text: str) -> list[tuple[ipaddress._BaseAddress, ipaddress._BaseAddress]]:
    ranges = []
    for value in re.findall(r"^denied-peer-ip=(.+)$", text, re.MULTILINE):
        first, _, last = value.partition("-")
        ranges.append((ipaddress.ip_address(first), ipaddress.ip_address(last or first)))
    return ranges


def is_denied(text: str, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(first.version == ip.version and first <= ip <= last for first, last in denied(text))


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.20.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.1.1",
        "0.0.0.1",
        "224.0.0.251",
        "255.255.255.255",
        "198.18.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::",
        "2001:db8::1",
    ],
)
def test_internal_addresses_are_denied(address):
    assert is_denied(coturn_config(realm="r", secrets=["s"], build=DEBIAN), address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address):
    assert not is_denied(coturn_config(realm="r", secrets=["s"], build=DEBIAN), address)


def test_no_all_zero_entry_which_coturn_461_reads_as_every_address():
    text = coturn_config(realm="r", secrets=["s"], build=DEBIAN)
    assert not any(first == ipaddress.ip_address("::") for first, _ in denied(text))


def test_every_range_has_its_reason_above_it():
    text = coturn_config(realm="r", secrets=["s"])
    for cidr, reason in DENIED_PEER_RANGES:
        assert f"# {cidr}: {reason}" in text


def test_loopback_only_with_the_development_flag():
    strict = coturn_config(realm="r", secrets=["s"])
    dev = coturn_config(realm="r", secrets=["s"], allow_loopback_peers=True)
    assert "allow-loopback-peers" not in strict
    assert is_denied(strict, "127.0.0.1")
    assert "allow-loopback-peers" in dev
    assert not is_denied(dev, "127.0.0.1")
    assert is_denied(dev, "10.0.0.1")
    for text in (strict, dev):  # 4.6.1 refuses allow-loopback-peers without no-cli
        assert "\nno-cli\n" in text


def test_authentication_and_hardening_lines():
    text = coturn_config(
        realm="veza.example",
        secrets=["new", "old"],
        external_ip="203.0.113.9",
        tls_cert="/etc/cert.pem",
        tls_key="/etc/key.pem",
    )
    for line in (
        "use-auth-secret",
        "static-auth-secret=new",
        "static-auth-secret=old",
        "realm=veza.example",
        "fingerprint",
        "no-multicast-peers",
        "no-tlsv1",
        "no-tlsv1_1",
        "tls-listening-port=5349",
        "cert=/etc/cert.pem",
        "pkey=/etc/key.pem",
        "external-ip=203.0.113.9",
        "user-quota=12",
        "total-quota=1200",
        "rest-api-separator=:",
    ):
        assert f"\n{line}\n" in text
    assert text.index("static-auth-secret=new") < text.index("static-auth-secret=old")


def test_prometheus_needs_a_build_that_has_it():
    with pytest.raises(WebRTCConfigurationError, match=r"4\.6\.1.*without Prometheus"):
        coturn_config(realm="r", secrets=["s"], prometheus=True, build=DEBIAN)
    with_it = CoturnBuild(version=(4, 7, 0), prometheus=True)
    assert "\nprometheus\n" in coturn_config(
        realm="r", secrets=["s"], prometheus=True, build=with_it
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secrets": []},
        {"secrets": ["has space"]},
        {"secrets": ["a#b"]},
        {"realm": " "},
        {"tls_cert": "/c"},
        {"min_port": 5000, "max_port": 4000},
    ],
)
def test_refusals(kwargs):
    with pytest.raises(WebRTCConfigurationError):
        coturn_config(**({"realm": "r", "secrets": ["s"]} | kwargs))


def test_detects_the_installed_coturn_when_present():
    build = CoturnBuild.detect()
    if build is None:
        assert CoturnBuild.detect("definitely-not-turnserver") is None
        return
    assert build.version >= (4, 0, 0)


def test_cli_writes_the_file_mode_600(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.write_text("new-secret\nold-secret\n")
    out = tmp_path / "turnserver.conf"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "veza_webrtc",
            "coturn-config",
            "--realm",
            "veza.test",
            "--secret-file",
            str(secrets),
            "--coturn-version",
            "4.6.1",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "static-auth-secret=old-secret" in out.read_text()
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "veza_webrtc",
            "coturn-config",
            "--realm",
            "veza.test",
            "--secret-file",
            str(secrets),
            "--coturn-version",
            "4.6.1",
            "--prometheus",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 0  # an explicit version says nothing about the build...
    assert "\nprometheus\n" in refused.stdout  # ...so the operator's flag is trusted


# The IANA IPv4 and IPv6 Special-Purpose Address Registries (registry versions of
# 2025-10-09), copied here independently of the generator's list. "::/128" is the one
# entry coturn 4.6.1 cannot take (it reads it as deny-all; coturn refuses it itself).
IANA_IPV4 = [
    "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32",
    "192.0.0.9/32", "192.0.0.10/32", "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24",
    "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
    "255.255.255.255/32",
]  # fmt: skip
IANA_IPV6 = [
    "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
    "100:0:0:1::/64", "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128",
    "2001:1::3/128", "2001:2::/48", "2001:3::/32", "2001:4:112::/48", "2001:20::/28",
    "2001:30::/28", "2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20",
    "5f00::/16", "fc00::/7", "fe80::/10",
]  # fmt: skip


@pytest.mark.parametrize("block", IANA_IPV4 + IANA_IPV6)
def test_every_iana_special_purpose_block_is_denied_end_to_end(block):
    text = coturn_config(realm="r", secrets=["s"], build=DEBIAN)
    network = ipaddress.ip_network(block)
    assert is_denied(text, str(network.network_address)), block
    assert is_denied(text, str(network.broadcast_address)), block


def test_the_unspecified_ipv6_address_is_the_documented_exception():
    text = coturn_config(realm="r", secrets=["s"], build=DEBIAN)
    assert not is_denied(text, "::")
    assert is_denied(text, "::1")


@pytest.mark.parametrize(
    ("options", "own"),
    [
        ({"external_ip": "93.184.216.34"}, ["93.184.216.34"]),
        ({"relay_ip": "93.184.216.35"}, ["93.184.216.35"]),
        ({"listening_ip": "2606:2800:220:1::1"}, ["2606:2800:220:1::1"]),
        ({"external_ip": "93.184.216.34/93.184.216.36"}, ["93.184.216.34", "93.184.216.36"]),
        (
            {"external_ip": "8.8.4.4", "relay_ip": "8.8.4.4", "listening_ip": "8.8.4.4"},
            ["8.8.4.4"],
        ),
    ],
)
def test_the_servers_own_addresses_are_denied(options, own):
    text = coturn_config(realm="r", secrets=["s"], build=DEBIAN, **options)
    for address in own:
        assert is_denied(text, address), address
        assert text.count(f"denied-peer-ip={address}\n") == 1
    assert not is_denied(text, "8.8.8.8")


def test_own_loopback_addresses_stay_allowed_only_in_development():
    dev = coturn_config(realm="r", secrets=["s"], relay_ip="127.0.0.1", allow_loopback_peers=True)
    assert not is_denied(dev, "127.0.0.1")
    strict = coturn_config(realm="r", secrets=["s"], relay_ip="127.0.0.1")
    assert is_denied(strict, "127.0.0.1")


def test_listening_everywhere_does_not_deny_everything():
    text = coturn_config(realm="r", secrets=["s"], listening_ip="::")
    assert not is_denied(text, "8.8.8.8")
    assert not any(first == ipaddress.ip_address("::") for first, _ in denied(text))


HOSTILE_TEXT = [
    "a\nallow-loopback-peers",
    "a\rno-auth",
    "a\r\nb",
    "a\x00b",
    "a\x1bb",
    "a\x7fb",
    "a\x85b",  # NEL
    "a\u2028b",  # line separator
    "a\u2029b",
    "a\u200bb",  # zero-width space
    "a b",
    "a\tb",
    "a#b",
    "",
]
TEXT_OPTIONS = ["realm", "tls_cert", "log_file", "pidfile", "separator"]
IP_OPTIONS = ["external_ip", "relay_ip", "listening_ip"]


def _options(option, value):
    base = {"realm": "r", "secrets": ["s"]}
    if option in ("tls_cert", "tls_key"):
        base |= {"tls_cert": "/c.pem", "tls_key": "/k.pem"}
    return base | {option: value}


@pytest.mark.parametrize("value", HOSTILE_TEXT)
@pytest.mark.parametrize("option", [*TEXT_OPTIONS, "tls_key", *IP_OPTIONS])
def test_every_string_option_refuses_control_characters_naming_the_option(option, value):
    with pytest.raises(CoturnOptionError) as caught:
        coturn_config(**_options(option, value))
    assert caught.value.option == option
    assert repr(option) in str(caught.value)


@pytest.mark.parametrize("value", ["1.2.3.4\nallow-loopback-peers", "fe80::1%eth0", "host.example"])
@pytest.mark.parametrize("option", IP_OPTIONS)
def test_ip_options_must_be_addresses(option, value):
    with pytest.raises(CoturnOptionError) as caught:
        coturn_config(**_options(option, value))
    assert caught.value.option == option


@pytest.mark.parametrize("value", [v for v in HOSTILE_TEXT if v])
def test_secrets_refuse_control_characters_without_repeating_them(value):
    secret = f"Hunter2{value}Hunter2"
    for form in (secret, Secret(secret)):
        with pytest.raises(CoturnOptionError) as caught:
            coturn_config(realm="r", secrets=["good", form])
        assert caught.value.option == "secrets"
        assert "Hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("listening_port", 0),
        ("listening_port", 65536),
        ("tls_listening_port", True),
        ("min_port", "49152"),
        ("max_port", 70000),
        ("user_quota", -1),
        ("total_quota", 1.5),
        ("prometheus", "yes"),
        ("allow_loopback_peers", 1),
        ("separator", "::"),
        ("separator", "a"),
        ("realm", "münchen.example"),
        ("secrets", "one-string-not-a-list"),
        ("build", "4.6.1"),
    ],
)
def test_typed_options_name_themselves(option, value):
    with pytest.raises(CoturnOptionError) as caught:
        coturn_config(**({"realm": "r", "secrets": ["s"]} | {option: value}))
    assert caught.value.option == option


def test_secrets_as_secret_values_are_written_and_never_shown():
    text = coturn_config(realm="r", secrets=[Secret("new-one"), "old-one"])
    assert "\nstatic-auth-secret=new-one\n" in text
    assert "\nstatic-auth-secret=old-one\n" in text
    assert repr(Secret("new-one")) == "Secret('********')"
    assert str(Secret("new-one")) == "Secret('********')"


def _option_lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _render(**options):
    """The rendered text, or the refusal (hypothesis tests check both outcomes)."""
    try:
        return coturn_config(**options)
    except CoturnOptionError as exc:
        return exc


@settings(max_examples=150, deadline=None)
@given(
    option=st.sampled_from(["realm", "tls_cert", "tls_key", "log_file", "pidfile"]),
    value=st.text(min_size=1, max_size=30),
)
def test_no_string_value_can_add_or_split_a_line(option, value):
    """Any text either is refused naming its option or lands whole on its own line."""
    base = _options(option, "x")
    text = _render(**(base | {option: value}))
    if isinstance(text, CoturnOptionError):
        assert text.option == option
        return
    reference = _option_lines(coturn_config(**base))
    lines = _option_lines(text)
    assert len(lines) == len(reference)
    key = {"realm": "realm", "tls_cert": "cert", "tls_key": "pkey", "log_file": "log-file"}
    assert f"{key.get(option, option)}={value}" in lines


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3))
def test_no_secret_can_add_or_split_a_line(secrets):
    text = _render(realm="r", secrets=secrets)
    if isinstance(text, CoturnOptionError):
        assert text.option == "secrets"
        # the message is one of the fixed refusals, whatever the secret: nothing echoed
        assert str(text) in {str(_render(realm="r", secrets=bad)) for bad in (["a b"], [""])}
        return
    lines = _option_lines(text)
    assert [line for line in lines if line.startswith("static-auth-secret=")] == [
        f"static-auth-secret={s}" for s in secrets
    ]
    assert (
        len(lines) == len(_option_lines(coturn_config(realm="r", secrets=["s"]))) + len(secrets) - 1
    )


def test_the_cli_refuses_an_injected_realm_naming_it(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.write_text("s3cret\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "veza_webrtc", "coturn-config",
            "--realm", "veza.test\nallow-loopback-peers", "--secret-file", str(secrets),
            "--coturn-version", "4.6.1",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "'realm'" in result.stderr
    assert "allow-loopback-peers" not in result.stdout
