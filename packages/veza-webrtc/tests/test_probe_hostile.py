"""The probe against hostile or broken servers: real UDP/TCP sockets on 127.0.0.1.

A server that answers with garbage, with another transaction's answer, or with a
success whose MESSAGE-INTEGRITY does not verify must not make the probe report a
working TURN server, and must not make it raise.
"""

import socket
import threading

import pytest

from veza_webrtc import IceConfig, probe_ice_servers, probe_turn_url
from veza_webrtc._stun import (
    ALLOCATE,
    BINDING,
    ERROR,
    ERROR_CODE,
    NONCE,
    REALM,
    SUCCESS,
    XOR_MAPPED_ADDRESS,
    XOR_RELAYED_ADDRESS,
    StunMessage,
    decode,
    encode,
    encode_error_code,
    encode_xor_address,
    long_term_key,
)


class FakeTurn:
    """A UDP server answering each request with whatever ``answer`` returns."""

    def __init__(self, answer):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.requests = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                data, client = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.requests.append(data)
            for reply in self.answer(data, client):
                self.sock.sendto(reply, client)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def fake():
    servers = []

    def start(answer):
        server = FakeTurn(answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def success_binding(request, client):
    return encode(
        StunMessage(
            BINDING,
            SUCCESS,
            request.transaction_id,
            ((XOR_MAPPED_ADDRESS, encode_xor_address(client, request.transaction_id)),),
        )
    )


def forging_server(data, client):
    """Binding works; Allocate: 401, then a 'success' signed with the wrong key."""
    request = decode(data)
    if request.method == BINDING:
        return [success_binding(request, client)]
    if request.get(0x0008) is None:  # no MESSAGE-INTEGRITY yet: challenge
        challenge = StunMessage(
            ALLOCATE,
            ERROR,
            request.transaction_id,
            (
                (ERROR_CODE, encode_error_code(401, "Unauthorized")),
                (REALM, b"fake"),
                (NONCE, b"n0nce"),
            ),
        )
        return [encode(challenge)]
    forged = StunMessage(
        ALLOCATE,
        SUCCESS,
        request.transaction_id,
        ((XOR_RELAYED_ADDRESS, encode_xor_address(("127.0.0.1", 50000), request.transaction_id)),),
    )
    return [encode(forged, integrity_key=long_term_key("u", "fake", "not-the-password"))]


def test_a_forged_allocate_success_is_a_protocol_error(fake):
    server = fake(forging_server)
    result = probe_turn_url(
        f"turn:127.0.0.1:{server.port}", username="u", credential="pw", timeout=2
    )
    assert result.failure == "protocol_error", result
    assert "MESSAGE-INTEGRITY" in result.diagnosis
    assert result.relayed_address is None
    assert result.authenticated is None or result.authenticated is False


def test_garbage_and_foreign_answers_are_ignored_until_the_deadline(fake):
    def noisy(data, client):
        other = StunMessage(BINDING, SUCCESS, bytes(12), ())  # someone else's transaction
        return [b"\x00" * 7, b"\xff" * 40, encode(other), data[:-1]]

    server = fake(noisy)
    result = probe_turn_url(f"stun:127.0.0.1:{server.port}", timeout=1.2)
    assert result.failure == "udp_blocked", result
    assert not result.reachable
    assert len(server.requests) >= 2  # retransmitted (RTO 500 ms, then 1 s)


def test_udp_retransmission_recovers_a_lost_request(fake):
    seen = []

    def lossy(data, client):
        seen.append(data)
        if len(seen) == 1:
            return []  # the first datagram is "lost"
        return [success_binding(decode(data), client)]

    server = fake(lossy)
    result = probe_turn_url(f"stun:127.0.0.1:{server.port}", timeout=3)
    assert result.ok, result
    assert seen[0] == seen[1]  # the same transaction, sent again
    assert result.mapped_address.startswith("127.0.0.1:")


def test_no_credentials_for_a_turn_url(fake):
    server = fake(lambda data, client: [success_binding(decode(data), client)])
    result = probe_turn_url(f"turn:127.0.0.1:{server.port}", timeout=2)
    assert result.failure == "no_credential"
    assert result.reachable


def test_an_error_response_without_realm_is_a_protocol_error(fake):
    def bare_401(data, client):
        request = decode(data)
        if request.method == BINDING:
            return [success_binding(request, client)]
        attributes = ((ERROR_CODE, encode_error_code(401, "Unauthorized")),)
        return [encode(StunMessage(request.method, ERROR, request.transaction_id, attributes))]

    server = fake(bare_401)
    result = probe_turn_url(
        f"turn:127.0.0.1:{server.port}", username="u", credential="pw", timeout=2
    )
    assert result.failure == "protocol_error", result


def test_turn_urls_left_out_for_want_of_credentials_are_reported(fake):
    server = fake(lambda data, client: [success_binding(decode(data), client)])
    config = IceConfig(
        stun_urls=f"stun:127.0.0.1:{server.port}",
        turn_urls=[f"turn:127.0.0.1:{server.port}", f"turns:127.0.0.1:{server.port}"],
        turn_username="only-a-username",
    )
    stun, turn, turns = probe_ice_servers(config, timeout=2)
    assert stun.ok
    assert (turn.failure, turns.failure) == ("no_credential", "no_credential")
    assert "WEBRTC_TURN_CREDENTIAL" in turn.diagnosis
    assert turns.transport == "tls"
    assert not turn.reachable  # not probed: the browser would not be given it


def test_a_server_that_answers_stun_but_not_turn_is_a_timeout_not_blocked_udp(fake):
    def stun_only(data, client):
        request = decode(data)
        return [success_binding(request, client)] if request.method == BINDING else []

    server = fake(stun_only)
    result = probe_turn_url(
        f"turn:127.0.0.1:{server.port}", username="u", credential="pw", timeout=1.2
    )
    assert result.failure == "timeout", result
    assert result.reachable
    assert "Binding" in result.diagnosis
