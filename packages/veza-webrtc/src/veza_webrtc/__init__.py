"""veza-webrtc: ICE configuration that makes calls work behind any NAT.

Validated STUN/TURN, ephemeral TURN credentials with rotation, a hardened coturn
configuration.
"""

from veza_webrtc._version import __version__

__all__ = ["__version__"]
