"""IceConfig: the half-config matrix, validation at start-up, the browser's configuration."""

import logging

import pytest

from veza_webrtc import (
    ICE_CACHE_CONTROL,
    IceConfig,
    IceServerAccessError,
    IceServers,
    IceURLSyntaxError,
    WebRTCConfigurationError,
    check_credentials,
)

STUN = "stun:stun.example.org:3478"
TURN = "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349?transport=tcp"
NOW = 1_700_000_000


def env(**values: str) -> dict[str, str]:
    return {"WEBRTC_STUN_URLS": STUN} | values


# --- the four-way matrix: TURN URLs present or not x credentials complete or not ----------


@pytest.mark.parametrize(
    ("values", "has_turn", "warning"),
    [
        # TURN URLs and complete static credentials
        (
            {"WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_USERNAME": "u", "WEBRTC_TURN_CREDENTIAL": "p"},
            True,
            None,
        ),
        # TURN URLs and a secret
        ({"WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_SECRET": "s"}, True, None),
        # TURN URLs, no credentials at all
        ({"WEBRTC_TURN_URLS": TURN}, False, "WEBRTC_TURN_SECRET"),
        # TURN URLs, username without credential
        ({"WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_USERNAME": "u"}, False, "WEBRTC_TURN_CREDENTIAL"),
        # TURN URLs, credential without username
        ({"WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_CREDENTIAL": "p"}, False, "WEBRTC_TURN_USERNAME"),
        # credentials without TURN URLs
        ({"WEBRTC_TURN_USERNAME": "u", "WEBRTC_TURN_CREDENTIAL": "p"}, False, "WEBRTC_TURN_URLS"),
        ({"WEBRTC_TURN_SECRET": "s"}, False, "WEBRTC_TURN_URLS"),
        # neither: STUN only, nothing to warn about
        ({}, False, None),
    ],
)
def test_half_configured_turn_gives_stun_only_with_one_warning(values, has_turn, warning, caplog):
    with caplog.at_level(logging.WARNING, logger="veza_webrtc"):
        config = IceConfig.from_env(env(**values))
    rtc = config.build().to_rtc_configuration(user_id="u1", now=NOW)
    assert config.has_turn is has_turn
    assert rtc["hasTurn"] is has_turn
    turn_blocks = [s for s in rtc["iceServers"] if s["urls"][0].startswith("turn")]
    assert len(turn_blocks) == (1 if has_turn else 0)
    assert rtc["iceServers"][0] == {"urls": [STUN]}
    if warning is None:
        assert config.warnings == ()
        assert caplog.records == []
    else:
        assert len(config.warnings) == 1
        assert warning in config.warnings[0]
        assert len(caplog.records) == 1
    for secret in ("p", "s"):
        if secret in values.values():
            assert f"'{secret}'" not in repr(config)


def test_ephemeral_credentials_in_the_configuration():
    config = IceConfig.from_env(
        env(WEBRTC_TURN_URLS=TURN, WEBRTC_TURN_SECRET="new,old", WEBRTC_TURN_TTL="3600")
    )
    rtc = config.build().to_rtc_configuration(user_id="alice", now=NOW)
    turn = rtc["iceServers"][1]
    assert turn["urls"] == TURN.split(",")
    assert turn["username"] == f"{NOW + 3600}:alice"
    assert check_credentials(["new"], turn["username"], credential=turn["credential"], now=NOW)
    assert not check_credentials(["old"], turn["username"], credential=turn["credential"], now=NOW)
    assert rtc["expiresAt"] == NOW + 3600
    assert rtc["refreshAfter"] == NOW + 1800
    assert rtc["iceTransportPolicy"] == "all"
    response = config.build().to_response(user_id="alice", now=NOW)
    assert (response["ttl"], response["expires_at"]) == (3600, NOW + 3600)
    assert ICE_CACHE_CONTROL == "private, no-store"


def test_static_credentials_have_no_expiry():
    config = IceConfig(stun_urls=STUN, turn_urls=TURN, turn_username="u", turn_credential="p")
    rtc = config.build().to_rtc_configuration()
    assert rtc["iceServers"][1] == {"urls": TURN.split(","), "username": "u", "credential": "p"}
    assert "expiresAt" not in rtc
    assert config.build().to_response()["ttl"] is None


def test_secret_wins_over_static_credentials_with_a_warning():
    config = IceConfig(turn_urls=TURN, turn_username="u", turn_credential="p", turn_secrets="s")
    assert config.ephemeral
    assert "ignored" in config.warnings[0]


def test_relay_policy_without_turn_fails_at_start_up():
    with pytest.raises(WebRTCConfigurationError, match="relay"):
        IceConfig.from_env(env(WEBRTC_ICE_TRANSPORT_POLICY="relay"))
    config = IceConfig.from_env(
        env(WEBRTC_ICE_TRANSPORT_POLICY="RELAY", WEBRTC_TURN_URLS=TURN, WEBRTC_TURN_SECRET="s")
    )
    assert config.build().to_rtc_configuration(now=NOW)["iceTransportPolicy"] == "relay"


@pytest.mark.parametrize(
    ("values", "variable", "shown"),
    [
        ({"WEBRTC_STUN_URLS": "stun://bad"}, "WEBRTC_STUN_URLS", "stun://bad"),
        (
            {"WEBRTC_TURN_URLS": "turn:h?transport=quic", "WEBRTC_TURN_SECRET": "s"},
            "WEBRTC_TURN_URLS",
            "turn:h?transport=quic",
        ),
        ({"WEBRTC_STUN_URLS": "turn:h"}, "WEBRTC_STUN_URLS", "turn:h"),
        ({"WEBRTC_TURN_URLS": "stun:h", "WEBRTC_TURN_SECRET": "s"}, "WEBRTC_TURN_URLS", "stun:h"),
        ({"WEBRTC_TURN_TTL": "a day"}, "WEBRTC_TURN_TTL", "a day"),
        (
            {"WEBRTC_TURN_TTL": "60", "WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_SECRET": "s"},
            "WEBRTC_TURN_TTL",
            "60",
        ),
        ({"WEBRTC_ICE_TRANSPORT_POLICY": "none"}, "WEBRTC_ICE_TRANSPORT_POLICY", "none"),
        (
            {"WEBRTC_TURN_SEPARATOR": "ab", "WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_SECRET": "s"},
            "WEBRTC_TURN_SEPARATOR",
            "ab",
        ),
    ],
)
def test_bad_values_fail_at_start_up_naming_variable_and_value(values, variable, shown):
    with pytest.raises(WebRTCConfigurationError) as info:
        IceConfig.from_env(values)
    assert variable in str(info.value)
    assert shown in str(info.value)


def test_errors_never_include_credentials():
    with pytest.raises(WebRTCConfigurationError) as info:
        IceConfig.from_env(
            {"WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_SECRET": "TopSecret1", "WEBRTC_TURN_TTL": "10"}
        )
    assert "TopSecret1" not in str(info.value)


def test_username_of_509_bytes_is_an_invalid_access_error():
    IceConfig(turn_urls=TURN, turn_username="u" * 508, turn_credential="p").build()
    with pytest.raises(IceServerAccessError, match="509"):
        IceConfig(turn_urls=TURN, turn_username="u" * 509, turn_credential="p").build()
    with pytest.raises(IceServerAccessError):
        IceConfig(turn_urls=TURN, turn_username="é" * 255, turn_credential="p").build()


def test_more_than_four_urls_warns():
    config = IceConfig(stun_urls="stun:a,stun:b,stun:c", turn_urls=TURN, turn_secrets="s")
    assert any("5 ICE server URLs" in w for w in config.warnings)


def test_no_servers_at_all_warns():
    assert "no ICE servers" in IceConfig().warnings[0]


def test_urls_are_trimmed_and_empty_items_ignored():
    config = IceConfig.from_env({"WEBRTC_STUN_URLS": " stun:a , ,stun:b "})
    assert [str(u) for u in config.stun_urls] == ["stun:a", "stun:b"]


def test_user_id_with_the_separator_is_refused():
    config = IceConfig(turn_urls=TURN, turn_secrets="s")
    with pytest.raises(WebRTCConfigurationError, match="separator"):
        config.build().to_rtc_configuration(user_id="a:b")


def test_parsing_happens_once_not_per_request(monkeypatch):
    import veza_webrtc._config as module

    config = IceConfig(stun_urls=STUN, turn_urls=TURN, turn_secrets="s")
    monkeypatch.setattr(module, "parse_ice_url", lambda _: pytest.fail("parsed per request"))
    config.build().to_rtc_configuration(user_id="x")


@pytest.mark.parametrize("ttl", [299, 0, -5])
def test_short_ttls_are_refused(ttl):
    config = IceConfig(turn_urls=TURN, turn_secrets="s", turn_ttl=ttl)  # a value: not checked
    with pytest.raises(WebRTCConfigurationError, match="300"):
        config.build()
    with pytest.raises(WebRTCConfigurationError, match="WEBRTC_TURN_TTL"):
        IceConfig.from_env(
            {"WEBRTC_TURN_URLS": TURN, "WEBRTC_TURN_SECRET": "s", "WEBRTC_TURN_TTL": str(ttl)}
        )


def test_bad_username_on_the_access_error_path_is_not_a_syntax_error():
    assert not issubclass(IceServerAccessError, IceURLSyntaxError)


def test_building_a_value_has_no_side_effects_and_from_env_logs(caplog):
    with caplog.at_level(logging.DEBUG, logger="veza_webrtc"):
        half = IceConfig(turn_urls=TURN)  # TURN URLs without credentials: a warning
    assert caplog.records == []  # values do not log; the factory does
    assert half.warnings and not half.has_turn
    with caplog.at_level(logging.WARNING, logger="veza_webrtc"):
        IceConfig.from_env({"WEBRTC_TURN_URLS": TURN})
    assert [r.getMessage() for r in caplog.records] == [f"veza-webrtc: {w}" for w in half.warnings]


def test_derived_state_follows_evolve_and_equality_ignores_it():
    import attrs

    config = IceConfig(turn_urls=TURN, turn_secrets="s")
    assert config.ephemeral
    static = attrs.evolve(config, turn_secrets=(), turn_username="u", turn_credential="p")
    assert static.has_turn and not static.ephemeral
    stun_only = attrs.evolve(config, turn_secrets=())
    assert not stun_only.has_turn and stun_only.warnings
    assert IceConfig(turn_urls=TURN, turn_secrets="s") == config
    relay = attrs.evolve(stun_only, transport_policy="relay")  # values are not validated...
    with pytest.raises(WebRTCConfigurationError, match="relay"):
        relay.build()  # ...the factory is


def test_the_value_is_validated_in_factories_not_while_constructed():
    assert not hasattr(IceConfig, "__attrs_post_init__")
    wrong = IceConfig(stun_urls="turn:t.example", turn_ttl=5)  # constructs: plain data
    with pytest.raises(IceURLSyntaxError, match="WEBRTC_STUN_URLS"):
        wrong.build()


def test_build_gives_the_service_and_the_old_methods_are_deprecated_aliases():
    config = IceConfig(turn_urls=TURN, turn_secrets="Sup3r-Secr3t")
    servers = config.build()
    assert isinstance(servers, IceServers)
    assert servers.config is config and servers.ephemeral and servers.has_turn
    assert "Sup3r-Secr3t" not in repr(servers)
    assert "Secret('********')" in repr(servers)
    expected = servers.to_rtc_configuration(user_id="u", now=NOW)
    with pytest.warns(DeprecationWarning, match=r"IceConfig\.build\(\)"):
        assert config.to_rtc_configuration(user_id="u", now=NOW) == expected
    with pytest.warns(DeprecationWarning, match="to_response"):
        assert config.to_response(user_id="u", now=NOW) == servers.to_response(user_id="u", now=NOW)


def test_keyword_only_construction():
    with pytest.raises(TypeError):
        IceConfig(STUN)  # type: ignore[misc]
