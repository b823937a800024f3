"""No secret in any repr or str: every object of the package that carries one is walked."""

import pytest

from veza_webrtc import (
    CachedIceProbe,
    CloudflareTurnSource,
    IceConfig,
    Secret,
    TurnGrant,
    TwilioTurnSource,
    coturn_config,
    ephemeral_credentials,
)

SECRET = "S3cr3t-TURN-value"
PASSWORD = "Pa55word-TURN-static"


def objects():
    ephemeral = IceConfig(turn_urls="turn:t.example", turn_secrets=[SECRET, SECRET + "-old"])
    static = IceConfig(turn_urls="turn:t.example", turn_username="u", turn_credential=PASSWORD)
    cloudflare = CloudflareTurnSource("key-id", SECRET, base_url="http://127.0.0.1:9")
    twilio = TwilioTurnSource("AC123", SECRET, base_url="http://127.0.0.1:9")
    yield "IceConfig (ephemeral)", ephemeral
    yield "IceConfig (static)", static
    yield "IceConfig.turn_secrets", ephemeral.turn_secrets
    yield "IceConfig.turn_credential", static.turn_credential
    yield "IceConfig (hosted source)", IceConfig(turn_source=cloudflare)
    yield "CloudflareTurnSource", cloudflare
    yield "CloudflareTurnSource (Secret)", CloudflareTurnSource("k", Secret(SECRET))
    yield "TwilioTurnSource (Secret)", TwilioTurnSource("AC1", Secret(SECRET))
    yield "TwilioTurnSource", twilio
    yield "TurnCredentials", ephemeral_credentials(SECRET, user_id="u", ttl=600)
    grant = TurnGrant(({"urls": ["turn:t.example"], "username": "u", "credential": SECRET},))
    yield "TurnGrant", grant
    yield "Secret", Secret(SECRET)
    yield "CachedIceProbe", CachedIceProbe(ephemeral)
    yield "CachedIceProbe (static)", CachedIceProbe(static)


@pytest.mark.parametrize(
    ("name", "value"), list(objects()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_no_secret_in_repr_or_str(name, value):
    for text in (repr(value), str(value), f"{value}", f"{value!r}"):
        assert SECRET not in text, name
        assert PASSWORD not in text, name
        # the credential derived from the secret is as sensitive as the secret
        assert ephemeral_credentials(SECRET, user_id="u", ttl=600).credential not in text


def test_configs_hold_secret_values():
    ephemeral = IceConfig(turn_urls="turn:t.example", turn_secrets=f"{SECRET}, other")
    assert all(isinstance(s, Secret) for s in ephemeral.turn_secrets)
    assert [s.reveal() for s in ephemeral.turn_secrets] == [SECRET, "other"]
    static = IceConfig(turn_urls="turn:t.example", turn_username="u", turn_credential=PASSWORD)
    assert isinstance(static.turn_credential, Secret)
    assert static.turn_credential.reveal() == PASSWORD
    wrapped = IceConfig(
        turn_urls="turn:t.example", turn_username="u", turn_credential=Secret(PASSWORD)
    )
    assert wrapped == static


def test_the_browser_still_gets_the_revealed_values():
    static = IceConfig(turn_urls="turn:t.example", turn_username="u", turn_credential=PASSWORD)
    servers = static.build().to_rtc_configuration()["iceServers"]
    assert servers == [{"urls": ["turn:t.example"], "username": "u", "credential": PASSWORD}]
    ephemeral = IceConfig(turn_urls="turn:t.example", turn_secrets=[Secret(SECRET)])
    issued = ephemeral.build().to_rtc_configuration(user_id="u", now=1_700_000_000)["iceServers"]
    expected = ephemeral_credentials(SECRET, user_id="u", ttl=86_400, now=1_700_000_000)
    assert issued[0]["credential"] == expected.credential


def test_the_generated_coturn_config_is_the_one_place_a_secret_is_written():
    text = coturn_config(realm="r", secrets=[Secret(SECRET)])
    assert f"static-auth-secret={SECRET}" in text
