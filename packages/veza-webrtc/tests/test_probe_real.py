"""``veza-webrtc probe`` against Debian's coturn on 127.0.0.1, beside ``turnutils_uclient``.

Each test starts a coturn with the project's generated configuration and checks the
probe's verdict against coturn's own client on the same server: where uclient relays,
the probe relays and echoes its bytes; where uclient is refused, the probe names why.
"""

import json
import os
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from veza_services import (
    free_port,
    free_udp_tcp_port,
    self_signed_certificate,
    service_unavailable,
    uclient,
)
from veza_webrtc import (
    CloudflareTurnSource,
    IceConfig,
    Secret,
    coturn_config,
    ephemeral_credentials,
    probe_ice_servers,
    probe_turn_url,
)
from veza_webrtc._transport import Channel
from veza_webrtc._turn_client import TurnSession

pytestmark = pytest.mark.coturn
SECRET = "probe-secret"


def start(coturn, tmp_path=None, *, stale_nonce=None, old_tls=False, **options):
    port = free_udp_tcp_port()
    low = random.randrange(40000, 60000, 200)
    tls = {}
    if tmp_path is not None:
        tmp_path.mkdir(exist_ok=True)
        cert, key = self_signed_certificate(tmp_path)
        tls = {"tls_cert": str(cert), "tls_key": str(key), "tls_listening_port": free_port()}
    text = coturn_config(
        realm="veza.test",
        secrets=[SECRET],
        listening_ip="127.0.0.1",
        relay_ip="127.0.0.1",
        listening_port=port,
        min_port=low,
        max_port=low + 199,
        allow_loopback_peers=True,
        **tls,
        **options,
    )
    if stale_nonce is not None:
        text = text.replace("stale-nonce=600", f"stale-nonce={stale_nonce}")
    if old_tls:  # for turnutils_uclient only: see test_tls_with_a_self_signed_certificate
        text = text.replace("\nno-tlsv1\n", "\n").replace("\nno-tlsv1_1\n", "\n")
    server = coturn(text, port)
    server.tls_port = tls.get("tls_listening_port")
    server.low = low
    if server.tls_port:
        # the fixture waits for UDP; coturn's TLS listener can come up seconds later on a
        # loaded machine (a handshake sent earlier just hangs): wait for a TLS Binding
        context = ssl.create_default_context(cafile=str(tmp_path / "turns-cert.pem"))
        deadline = time.monotonic() + 15
        while not probe_turn_url(
            f"stuns:127.0.0.1:{server.tls_port}", tls_context=context, timeout=1
        ).reachable:
            assert time.monotonic() < deadline, "coturn's TLS listener did not start"
    return server


def fresh(user="probe"):
    return ephemeral_credentials(SECRET, user_id=user, ttl=600)


def in_relay_range(server, address):
    host, _, port = address.rpartition(":")
    return host == "127.0.0.1" and server.low <= int(port) <= server.low + 199


@pytest.mark.parametrize(("transport", "suffix"), [("udp", ""), ("tcp", "?transport=tcp")])
@pytest.mark.parametrize("channel_data", [False, True])
def test_relays_over_udp_and_tcp_like_uclient(coturn, transport, suffix, channel_data):
    server = start(coturn)
    creds = fresh()
    result = probe_turn_url(
        f"turn:127.0.0.1:{server.port}{suffix}",
        username=creds.username,
        credential=creds.credential,
        channel_data=channel_data,
        timeout=5,
    )
    assert result.ok, result
    assert result.transport == transport
    assert result.reachable and result.authenticated
    assert result.bytes_echoed == 100
    assert in_relay_range(server, result.relayed_address)
    assert result.mapped_address.startswith("127.0.0.1:")
    assert 0 < result.rtt_ms < 1000
    if not channel_data:  # uclient's own run does not depend on our relay method
        theirs, _ = uclient(server, creds.username, creds.credential, transport=transport)
        assert theirs.relayed, theirs.output


def test_relays_through_an_external_echo_peer(coturn):
    server = start(coturn)
    creds = fresh()
    result = probe_turn_url(
        f"turn:127.0.0.1:{server.port}",
        username=creds.username,
        credential=Secret(creds.credential),
        peer=("127.0.0.1", server.peer_port),  # coturn's turnutils_peer
    )
    assert result.ok and result.bytes_echoed == 100, result


def test_tls_with_a_self_signed_certificate(coturn, tmp_path):
    server = start(coturn, tmp_path)
    creds = fresh()
    url = f"turns:127.0.0.1:{server.tls_port}?transport=tcp"
    refused = probe_turn_url(url, username=creds.username, credential=creds.credential)
    assert refused.failure == "tls_certificate", refused
    assert "self-signed" in refused.diagnosis
    assert not refused.reachable
    trusting = ssl.create_default_context(cafile=str(tmp_path / "turns-cert.pem"))
    result = probe_turn_url(
        url, username=creds.username, credential=creds.credential, tls_context=trusting
    )
    assert result.ok, result
    assert result.transport == "tls"
    assert result.bytes_echoed == 100
    assert in_relay_range(server, result.relayed_address)
    # coturn 4.6.1's turnutils_uclient picks TLS 1.0, 1.1 or 1.2 at random for each
    # connection and hangs when the server refuses the old ones, as the generated
    # configuration does: compare on a twin server that still accepts them.
    twin = start(coturn, tmp_path / "twin", old_tls=True)
    ours = probe_turn_url(
        f"turns:127.0.0.1:{twin.tls_port}?transport=tcp",
        username=creds.username,
        credential=creds.credential,
        tls_context=ssl.create_default_context(cafile=str(tmp_path / "twin/turns-cert.pem")),
    )
    assert ours.ok and ours.bytes_echoed == 100, ours
    theirs, _ = uclient(twin, creds.username, creds.credential, transport="tls", port=twin.tls_port)
    assert theirs.relayed, theirs.output


def test_a_certificate_for_another_name_is_diagnosed(coturn, tmp_path):
    server = start(coturn, tmp_path)
    creds = fresh()
    context = ssl.create_default_context(cafile=str(tmp_path / "turns-cert.pem"))
    result = probe_turn_url(
        f"turns:localhost:{server.tls_port}?transport=tcp",
        username=creds.username,
        credential=creds.credential,
        tls_context=context,
    )
    assert result.failure == "tls_certificate", result
    assert "localhost" in result.diagnosis


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_wrong_secret_and_expired_credentials_are_told_apart(coturn, transport):
    server = start(coturn)
    suffix = "?transport=tcp" if transport == "tcp" else ""
    url = f"turn:127.0.0.1:{server.port}{suffix}"
    wrong = ephemeral_credentials("not-the-secret", user_id="probe", ttl=600)
    expired = ephemeral_credentials(SECRET, user_id="probe", ttl=300, now=time.time() - 400)
    for creds, code in ((wrong, "wrong_credential"), (expired, "expired_credential")):
        result = probe_turn_url(url, username=creds.username, credential=creds.credential)
        assert result.failure == code, result
        assert result.reachable and result.authenticated is False
        assert result.error_code == 401
        assert result.relayed_address is None and result.bytes_echoed == 0
        assert creds.credential not in repr(result) + str(result.to_dict())
        theirs, _ = uclient(server, creds.username, creds.credential, transport=transport)
        assert theirs.allocation_refused, theirs.output


@pytest.mark.parametrize("peer", ["10.1.2.3", "169.254.169.254", "192.31.196.1"])
def test_a_denied_peer_is_diagnosed(coturn, peer):
    server = start(coturn)
    creds = fresh()
    result = probe_turn_url(
        f"turn:127.0.0.1:{server.port}",
        username=creds.username,
        credential=creds.credential,
        peer=(peer, 5000),
    )
    assert result.failure == "forbidden_peer", result
    assert result.authenticated and result.error_code == 403
    assert peer in result.diagnosis
    theirs, _ = uclient(server, creds.username, creds.credential, peer=peer)
    assert theirs.forbidden_peer, theirs.output


def test_udp_that_goes_nowhere_suggests_tcp_and_tls(tmp_path):
    del tmp_path
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))  # receives, never answers: a filtering firewall
        port = black_hole.getsockname()[1]
        started = time.monotonic()
        result = probe_turn_url(f"turn:127.0.0.1:{port}", username="u", credential="c", timeout=1.2)
        took = time.monotonic() - started
    assert result.failure == "udp_blocked", result
    assert "transport=tcp" in result.diagnosis and "turns:" in result.diagnosis
    assert not result.reachable
    assert took < 2.5  # the timeout bounds the probe, retransmissions included


def test_nothing_listening_is_unreachable():
    port = free_udp_tcp_port()
    for suffix in ("", "?transport=tcp"):
        result = probe_turn_url(f"turn:127.0.0.1:{port}{suffix}", username="u", credential="c")
        assert result.failure == "unreachable", result
        assert "refused" in result.diagnosis


def test_allocation_quota(coturn):
    server = start(coturn, user_quota=1)
    creds = fresh("quota")
    deadline = time.monotonic() + 5
    holder = TurnSession(
        Channel("127.0.0.1", server.port, "udp", deadline=deadline),
        username=creds.username,
        password=Secret(creds.credential),
    )
    try:
        holder.allocate(deadline=deadline)
        result = probe_turn_url(
            f"turn:127.0.0.1:{server.port}", username=creds.username, credential=creds.credential
        )
    finally:
        holder.refresh(0, deadline=time.monotonic() + 2)
        holder.channel.close()
    assert result.failure == "allocation_quota", result
    assert result.error_code == 486


def test_a_stale_nonce_is_renewed_once(coturn):
    server = start(coturn, stale_nonce=1)
    creds = fresh("stale")
    deadline = time.monotonic() + 10
    session = TurnSession(
        Channel("127.0.0.1", server.port, "udp", deadline=deadline),
        username=creds.username,
        password=Secret(creds.credential),
    )
    try:
        session.allocate(deadline=deadline)
        first_nonce = session.nonce
        time.sleep(2.2)  # past coturn's stale-nonce=1
        session.refresh(600, deadline=deadline)  # 438, new nonce, then success
        assert session.stale_nonce_retries == 1
        assert session.nonce != first_nonce
    finally:
        session.refresh(0, deadline=time.monotonic() + 2)
        session.channel.close()


def test_probe_ice_servers_with_an_ephemeral_configuration(coturn):
    server = start(coturn)
    config = IceConfig(
        stun_urls=f"stun:127.0.0.1:{server.port}",
        turn_urls=[
            f"turn:127.0.0.1:{server.port}?transport=udp",
            f"turn:127.0.0.1:{server.port}?transport=tcp",
        ],
        turn_secrets=[SECRET],
        turn_ttl=600,
    )
    results = probe_ice_servers(config, timeout=5)
    assert [r.url for r in results] == [
        f"stun:127.0.0.1:{server.port}",
        f"turn:127.0.0.1:{server.port}?transport=udp",
        f"turn:127.0.0.1:{server.port}?transport=tcp",
    ]
    assert all(r.ok for r in results), results
    assert results[0].authenticated is None and results[0].bytes_echoed == 0
    assert [r.bytes_echoed for r in results[1:]] == [100, 100]
    wrong = IceConfig(turn_urls=f"turn:127.0.0.1:{server.port}", turn_secrets=["other"])
    (result,) = probe_ice_servers(wrong, timeout=5)
    assert result.failure == "wrong_credential"


def cli(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WEBRTC_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "veza_webrtc", "probe", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_cli_probe_urls_with_a_secret_file(coturn, tmp_path):
    server = start(coturn)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    urls = [f"stun:127.0.0.1:{server.port}", f"turn:127.0.0.1:{server.port}?transport=tcp"]
    good = cli(*urls, "--secret", f"@{secret_file}", "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    results = json.loads(good.stdout)
    assert [r["ok"] for r in results] == [True, True]
    assert results[1]["bytes_echoed"] == 100
    bad = cli(urls[1], "--secret", "Wr0ng-S3cret", "--channel-data")
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout and "wrong_credential" in bad.stdout
    assert "Wr0ng-S3cret" not in bad.stdout + bad.stderr


def test_cli_probe_from_the_environment(coturn):
    server = start(coturn)
    env = {
        "WEBRTC_TURN_URLS": f"turn:127.0.0.1:{server.port}",
        "WEBRTC_TURN_SECRET": SECRET,
        "WEBRTC_TURN_TTL": "600",
    }
    result = cli("--peer", f"127.0.0.1:{server.peer_port}", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok   turn:127.0.0.1:")
    assert "echoed 100 B" in result.stdout


def test_cli_probe_refuses_bad_input():
    assert cli("https://example.org").returncode == 2
    assert cli("turn:127.0.0.1", "--peer", "nope").returncode == 2
    empty = cli()
    assert empty.returncode == 2
    assert "no STUN or TURN URL" in empty.stderr


def test_static_credentials_and_a_hosted_source(coturn):
    server = start(coturn)
    url = f"turn:127.0.0.1:{server.port}?transport=udp"
    creds = fresh("static")  # coturn checks REST credentials; here they are a static pair
    static = IceConfig(
        turn_urls=url, turn_username=creds.username, turn_credential=creds.credential
    )
    (result,) = probe_ice_servers(static, timeout=5)
    assert result.ok and result.bytes_echoed == 100, result

    class CloudflareLike(BaseHTTPRequestHandler):
        """Answers generate-ice-servers like Cloudflare, with this coturn's URL."""

        def do_POST(self):
            expected = "/v1/turn/keys/key-1/credentials/generate-ice-servers"
            authorized = self.headers.get("Authorization") == "Bearer api-token"
            length = int(self.headers.get("Content-Length", 0))
            ttl = json.loads(self.rfile.read(length))["ttl"]
            issued = ephemeral_credentials(SECRET, user_id="cf", ttl=ttl)
            body = {
                "iceServers": [
                    {"urls": [f"stun:127.0.0.1:{server.port}"]},
                    {"urls": [url], "username": issued.username, "credential": issued.credential},
                ]
            }
            payload = json.dumps(body).encode()
            self.send_response(201 if self.path == expected and authorized else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), CloudflareLike)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        source = CloudflareTurnSource(
            "key-1", "api-token", base_url=f"http://127.0.0.1:{http.server_port}"
        )
        hosted = IceConfig(turn_source=source, turn_ttl=600)
        (result,) = probe_ice_servers(hosted, timeout=5)  # the source's TURN URL only
    finally:
        http.shutdown()
        thread.join()
        http.server_close()
    assert result.url == url
    assert result.ok and result.bytes_echoed == 100, result


def start_ipv6(coturn):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        service_unavailable("IPv6 loopback", f"cannot bind ::1: {exc}", "enable IPv6 on lo")
    port = free_udp_tcp_port()
    low = random.randrange(40000, 60000, 200)
    text = coturn_config(
        realm="veza.test",
        secrets=[SECRET],
        listening_ip="::1",
        relay_ip="::1",
        listening_port=port,
        min_port=low,
        max_port=low + 199,
        allow_loopback_peers=True,
    )
    # the fixture checks readiness over 127.0.0.1: listen there too
    text = text.replace("listening-ip=::1\n", "listening-ip=::1\nlistening-ip=127.0.0.1\n")
    return coturn(text, port)


@pytest.mark.parametrize(("suffix", "channel_data"), [("", False), ("?transport=tcp", True)])
def test_an_ipv6_only_relay(coturn, suffix, channel_data):
    server = start_ipv6(coturn)
    creds = fresh("v6")
    result = probe_turn_url(
        f"turn:[::1]:{server.port}{suffix}",
        username=creds.username,
        credential=creds.credential,
        channel_data=channel_data,
    )
    # the default (IPv4) Allocate is refused with 440; the probe asks for IPv6
    assert result.ok, result
    assert result.relayed_address.startswith("[::1]:")
    assert result.bytes_echoed == 100


def test_the_generated_config_denies_ipv6_special_purpose_peers(coturn):
    server = start_ipv6(coturn)
    creds = fresh("v6-mallory")
    for peer in ("fd00::1", "fe80::1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2001:db8::1",
                 "2002:a00:1::1", "3fff::1", "5f00::1", "100::1"):  # fmt: skip
        result = probe_turn_url(
            f"turn:[::1]:{server.port}",
            username=creds.username,
            credential=creds.credential,
            peer=(peer, 9),
        )
        assert result.failure == "forbidden_peer", (peer, result)
