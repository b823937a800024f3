"""The veza-webrtc error hierarchy: one base, each error also the built-in that fits."""

from __future__ import annotations


class WebRTCError(Exception):
    """Base of every error veza-webrtc raises on purpose."""


class WebRTCConfigurationError(WebRTCError, ValueError):
    """A configuration value is invalid.

    Raised at start-up by ``IceConfig.from_env`` and the constructors, naming the
    variable (or parameter) and the offending value, never a credential.
    """


class IceURLSyntaxError(WebRTCConfigurationError):
    """A STUN/TURN URL the browser would reject with a ``SyntaxError`` DOMException."""


class IceServerAccessError(WebRTCConfigurationError):
    """A TURN server the browser would reject with an ``InvalidAccessError``.

    A TURN URL without both username and credential, or a username of 509 bytes or
    more (RFC 8489 section 14.3).
    """


class TurnProviderError(WebRTCError, RuntimeError):
    """A hosted TURN provider (Cloudflare, Twilio) could not be asked for credentials."""
