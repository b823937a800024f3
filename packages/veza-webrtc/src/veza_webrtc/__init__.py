"""veza-webrtc: ICE configuration that makes calls work behind any NAT.

Validated STUN/TURN, ephemeral TURN credentials with rotation, a hardened coturn
configuration.
"""

from veza_webrtc._config import ICE_CACHE_CONTROL, IceConfig, IceServers, TurnGrant, TurnSource
from veza_webrtc._coturn import CoturnBuild, coturn_config
from veza_webrtc._credentials import (
    TurnCredentials,
    check_credentials,
    ephemeral_credentials,
    turn_credential,
)
from veza_webrtc._errors import (
    CoturnOptionError,
    IceServerAccessError,
    IceURLSyntaxError,
    TurnProviderError,
    WebRTCConfigurationError,
    WebRTCError,
)
from veza_webrtc._health import CachedIceProbe
from veza_webrtc._probe import ProbeResult, probe_ice_servers, probe_turn_url
from veza_webrtc._providers import CloudflareTurnSource, TwilioTurnSource
from veza_webrtc._secret import Secret
from veza_webrtc._uri import IceURL, parse_ice_url
from veza_webrtc._version import __version__

__all__ = [
    "ICE_CACHE_CONTROL",
    "CachedIceProbe",
    "CloudflareTurnSource",
    "CoturnBuild",
    "CoturnOptionError",
    "IceConfig",
    "IceServerAccessError",
    "IceServers",
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
]
