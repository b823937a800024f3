"""The generated turnserver.conf: every range denied, build-aware, secrets handled."""

import ipaddress
import re
import stat
import subprocess
import sys

import pytest

from veza_webrtc import CoturnBuild, WebRTCConfigurationError, coturn_config
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
