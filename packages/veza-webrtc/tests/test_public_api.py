"""Pins the public surface of veza_webrtc: a rename or an accidental export fails here."""

import importlib.metadata
import importlib.resources

import veza_webrtc

EXPECTED_EXPORTS = {
    "IceServers",
    "CachedIceProbe",
    "ICE_CACHE_CONTROL",
    "CloudflareTurnSource",
    "CoturnBuild",
    "CoturnOptionError",
    "IceConfig",
    "IceServerAccessError",
    "IceURL",
    "IceURLSyntaxError",
    "ProbeResult",
    "Secret",
    "TurnCredentials",
    "TurnGrant",
    "TurnProviderError",
    "TurnSource",
    "TwilioTurnSource",
    "WebRTCConfigurationError",
    "WebRTCError",
    "__version__",
    "check_credentials",
    "coturn_config",
    "ephemeral_credentials",
    "parse_ice_url",
    "probe_ice_servers",
    "probe_turn_url",
    "turn_credential",
}


def test_exports_are_exactly_the_pinned_set():
    assert set(veza_webrtc.__all__) == EXPECTED_EXPORTS


def test_every_export_resolves():
    assert [n for n in veza_webrtc.__all__ if not hasattr(veza_webrtc, n)] == []


def test_version_matches_installed_metadata():
    assert veza_webrtc.__version__ == importlib.metadata.version("veza-webrtc")


def test_ships_py_typed_marker():
    assert importlib.resources.files("veza_webrtc").joinpath("py.typed").is_file()


def test_error_hierarchy():
    for name in ("WebRTCConfigurationError", "IceURLSyntaxError", "IceServerAccessError"):
        error = getattr(veza_webrtc, name)
        assert issubclass(error, veza_webrtc.WebRTCError)
        assert issubclass(error, ValueError)
    assert issubclass(veza_webrtc.TurnProviderError, RuntimeError)
