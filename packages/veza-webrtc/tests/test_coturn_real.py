"""Against Debian's coturn: our credentials and our generated config, on loopback.

The relay is driven by coturn's own ``turnutils_uclient`` with ``turnutils_peer`` as the
echo peer: a successful run means an allocation was made with our credentials and data
went out through the relay and came back.
"""

import random
import time

import pytest

from veza_services import free_udp_tcp_port
from veza_webrtc import coturn_config, ephemeral_credentials

pytestmark = pytest.mark.coturn


def start(coturn, secrets, **options):
    port = free_udp_tcp_port()
    low = random.randrange(40000, 60000, 200)
    text = coturn_config(
        realm="veza.test",
        secrets=secrets,
        listening_ip="127.0.0.1",
        relay_ip="127.0.0.1",
        listening_port=port,
        min_port=low,
        max_port=low + 199,
        allow_loopback_peers=True,
        **options,
    )
    return coturn(text, port)


def test_fresh_credentials_allocate_and_relay_both_ways(coturn):
    server = start(coturn, ["the-secret"])
    creds = ephemeral_credentials("the-secret", user_id="alice", ttl=600)
    result = server.allocate_and_relay(creds.username, creds.credential)
    assert result.relayed, result.output
    assert result.received == result.sent > 0
    assert not server.refused_credentials_of(creds.username)


def test_expired_credentials_are_refused(coturn):
    server = start(coturn, ["the-secret"])
    creds = ephemeral_credentials("the-secret", user_id="alice", ttl=300, now=time.time() - 400)
    result = server.allocate_and_relay(creds.username, creds.credential)
    assert result.allocation_refused, result.output
    assert result.received == 0
    assert server.refused_credentials_of(creds.username)


def test_a_wrong_secret_is_refused(coturn):
    server = start(coturn, ["the-secret"])
    creds = ephemeral_credentials("another-secret", user_id="alice", ttl=600)
    result = server.allocate_and_relay(creds.username, creds.credential)
    assert result.allocation_refused, result.output
    assert result.received == 0
    assert server.refused_credentials_of(creds.username)


def test_rotation_credentials_signed_by_either_secret_allocate(coturn):
    server = start(coturn, ["new-secret", "old-secret"])
    for secret in ("new-secret", "old-secret"):
        creds = ephemeral_credentials(secret, user_id="bob", ttl=600)
        result = server.allocate_and_relay(creds.username, creds.credential)
        assert result.relayed, (secret, result.output)
    stale = ephemeral_credentials("retired-secret", user_id="bob", ttl=600)
    assert server.allocate_and_relay(stale.username, stale.credential).allocation_refused
    assert server.refused_credentials_of(stale.username)


# a sample across the IANA special-purpose registry, including the blocks added after
# review (AS112-v4, AMT, AS112 direct delegation) and the limited broadcast address
@pytest.mark.parametrize(
    "peer",
    [
        "169.254.169.254",
        "10.1.2.3",
        "192.168.0.10",
        "192.31.196.1",
        "192.52.193.7",
        "192.175.48.42",
        "100.64.0.1",
        "198.18.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_generated_config_refuses_internal_peers(coturn, peer):
    server = start(coturn, ["the-secret"])
    creds = ephemeral_credentials("the-secret", user_id="mallory", ttl=600)
    result = server.allocate_and_relay(creds.username, creds.credential, peer=peer)
    assert result.forbidden_peer, result.output
    assert not result.relayed


def test_the_servers_own_external_address_is_refused_as_a_peer(coturn):
    server = start(coturn, ["the-secret"], external_ip="93.184.216.34")
    creds = ephemeral_credentials("the-secret", user_id="mallory", ttl=600)
    result = server.allocate_and_relay(creds.username, creds.credential, peer="93.184.216.34")
    assert result.forbidden_peer, result.output
    assert not result.relayed
    # and the server still relays to an allowed peer with external-ip set
    assert server.allocate_and_relay(creds.username, creds.credential).relayed
