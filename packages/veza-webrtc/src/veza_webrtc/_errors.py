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


class CoturnOptionError(WebRTCConfigurationError):
    """A ``coturn_config`` option that would make a wrong or injectable ``turnserver.conf``.

    coturn's configuration is line based: a newline in a realm or an address would add
    an option of the caller's choosing (``allow-loopback-peers``, a second
    ``static-auth-secret``). The message names the option; a secret's value is never
    repeated.

    Attributes:
        option: The keyword argument of :func:`coturn_config` that was refused.
    """

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        super().__init__(f"coturn option {option!r}: {reason}")
