"""Hosted TURN sources against local HTTP servers that answer like Cloudflare and Twilio."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from veza_webrtc import (
    CloudflareTurnSource,
    IceConfig,
    Secret,
    TurnProviderError,
    TwilioTurnSource,
    WebRTCConfigurationError,
)

CLOUDFLARE_ANSWER = {
    "iceServers": [
        {"urls": ["stun:stun.cloudflare.com:3478", "stun:stun.cloudflare.com:53"]},
        {
            "urls": [
                "turn:turn.cloudflare.com:3478?transport=udp",
                "turn:turn.cloudflare.com:53?transport=udp",
                "turn:turn.cloudflare.com:3478?transport=tcp",
                "turn:turn.cloudflare.com:80?transport=tcp",
                "turns:turn.cloudflare.com:5349?transport=tcp",
                "turns:turn.cloudflare.com:443?transport=tcp",
            ],
            "username": "cf-user",
            "credential": "cf-pass",
        },
    ]
}
TWILIO_ANSWER = {
    "username": "tw-user",
    "password": "tw-pass",
    "ttl": "3600",
    "date_created": "Thu, 26 Nov 2026 18:00:00 +0000",
    "ice_servers": [
        {"url": "stun:global.stun.twilio.com:3478", "urls": "stun:global.stun.twilio.com:3478"},
        {
            "url": "turn:global.turn.twilio.com:3478?transport=udp",
            "urls": "turn:global.turn.twilio.com:3478?transport=udp",
            "username": "tw-user",
            "credential": "tw-pass",
        },
        {
            "url": "turn:global.turn.twilio.com:3478?transport=tcp",
            "urls": "turn:global.turn.twilio.com:3478?transport=tcp",
            "username": "tw-user",
            "credential": "tw-pass",
        },
        {
            "url": "turn:global.turn.twilio.com:443?transport=tcp",
            "urls": "turn:global.turn.twilio.com:443?transport=tcp",
            "username": "tw-user",
            "credential": "tw-pass",
        },
    ],
}


class FakeProvider:
    """A real HTTP server on 127.0.0.1 that records requests and answers like a provider."""

    def __init__(self, status: int, body: object) -> None:
        self.requests: list[dict] = []
        self.status, self.body = status, body
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length).decode(),
                    }
                )
                payload = json.dumps(fake.body).encode() if fake.body is not None else b"<html>"
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    made = []

    def make(status=201, body=None):
        made.append(FakeProvider(status, body))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


def test_cloudflare_request_and_normalisation(provider):
    fake = provider(201, CLOUDFLARE_ANSWER)
    source = CloudflareTurnSource("key-123", "api-token-xyz", base_url=fake.url)
    grant = source.fetch(ttl=7 * 86400, user_id="alice", now=1000)
    (request,) = fake.requests
    assert request["path"] == "/v1/turn/keys/key-123/credentials/generate-ice-servers"
    assert request["headers"]["Authorization"] == "Bearer api-token-xyz"
    assert json.loads(request["body"]) == {"ttl": 48 * 3600}  # capped at Cloudflare's maximum
    assert grant.ice_servers == (
        {
            "urls": [
                "turn:turn.cloudflare.com:3478?transport=udp",
                "turn:turn.cloudflare.com:3478?transport=tcp",
                "turns:turn.cloudflare.com:5349?transport=tcp",
            ],
            "username": "cf-user",
            "credential": "cf-pass",
        },
    )
    assert (grant.ttl, grant.expires_at) == (48 * 3600, 1000 + 48 * 3600)
    assert "api-token-xyz" not in repr(source)


def test_twilio_request_and_string_ttl(provider):
    fake = provider(201, TWILIO_ANSWER)
    source = TwilioTurnSource("AC123", "auth-secret", base_url=fake.url)
    grant = source.fetch(ttl=3600, user_id=None, now=0)
    (request,) = fake.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Tokens.json"
    expected_auth = "Basic " + base64.b64encode(b"AC123:auth-secret").decode()
    assert request["headers"]["Authorization"] == expected_auth
    assert parse_qs(request["body"]) == {"Ttl": ["3600"]}
    assert grant.ttl == 3600
    assert grant.expires_at == 3600
    assert [s["urls"] for s in grant.ice_servers] == [
        ["turn:global.turn.twilio.com:3478?transport=udp"],
        ["turn:global.turn.twilio.com:3478?transport=tcp"],
    ]
    assert "auth-secret" not in repr(source)


def test_grants_are_cached_until_half_their_life(provider):
    fake = provider(201, CLOUDFLARE_ANSWER)
    source = CloudflareTurnSource("k", "t", base_url=fake.url)
    source.fetch(ttl=3600, user_id=None, now=0)
    source.fetch(ttl=3600, user_id=None, now=1799)
    assert len(fake.requests) == 1
    source.fetch(ttl=3600, user_id=None, now=1801)
    assert len(fake.requests) == 2
    uncached = CloudflareTurnSource("k", "t", base_url=fake.url, cache=False)
    uncached.fetch(ttl=3600, user_id=None, now=0)
    uncached.fetch(ttl=3600, user_id=None, now=0)
    assert len(fake.requests) == 4


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"errors": ["bad token"]}),
        (201, None),
        (201, {"iceServers": "nope"}),
        (201, {"iceServers": [{"urls": ["stun:s"]}]}),
    ],
)
def test_provider_failures_are_typed(provider, status, body):
    fake = provider(status, body)
    with pytest.raises(TurnProviderError):
        CloudflareTurnSource("k", "t", base_url=fake.url).fetch(ttl=600, user_id=None, now=0)


def test_unreachable_provider_is_typed():
    source = CloudflareTurnSource("k", "t", base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(TurnProviderError, match="failed"):
        source.fetch(ttl=600, user_id=None, now=0)


def test_builder_with_a_provider_and_its_outage(provider, caplog):
    fake = provider(201, CLOUDFLARE_ANSWER)
    config = IceConfig(
        stun_urls="stun:stun.example.org",
        turn_source=CloudflareTurnSource("k", "t", base_url=fake.url),
    )
    rtc = config.build().to_rtc_configuration(now=100)
    assert rtc["hasTurn"] is True
    assert rtc["expiresAt"] == 100 + 86400
    assert rtc["iceServers"][1]["username"] == "cf-user"
    down = IceConfig(
        stun_urls="stun:stun.example.org",
        turn_source=CloudflareTurnSource("k", "t", base_url="http://127.0.0.1:9", timeout=1),
    )
    degraded = down.build().to_rtc_configuration(now=100)
    assert degraded["hasTurn"] is False
    assert degraded["iceServers"] == [{"urls": ["stun:stun.example.org"]}]
    assert "STUN only" in caplog.text


def test_sources_take_secret_values(provider):
    cloudflare = provider(201, CLOUDFLARE_ANSWER)
    CloudflareTurnSource("key-1", Secret("cf-token"), base_url=cloudflare.url).fetch(
        ttl=600, user_id=None, now=0
    )
    assert cloudflare.requests[0]["headers"]["Authorization"] == "Bearer cf-token"
    twilio = provider(201, TWILIO_ANSWER)
    TwilioTurnSource("AC1", Secret("tw-token"), base_url=twilio.url).fetch(
        ttl=600, user_id=None, now=0
    )
    expected = "Basic " + base64.b64encode(b"AC1:tw-token").decode()
    assert twilio.requests[0]["headers"]["Authorization"] == expected
    with pytest.raises(WebRTCConfigurationError):
        CloudflareTurnSource("key-1", Secret(""))
