"""The veza-cdn error hierarchy: one base, each error also the built-in that fits."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from veza_cdn._verification import FailureReason


class CDNError(Exception):
    """Base of every error veza-cdn raises on purpose."""


class CDNConfigurationError(CDNError, ValueError):
    """A configuration value is missing or invalid.

    Raised at start-up (``CDNConfig.from_env``, signer constructors) so a bad deployment
    fails before it serves a single unsigned URL. The message names the variable or
    parameter; it never contains a secret's value.
    """


class SigningError(CDNError, ValueError):
    """A URL cannot be signed as asked (bad URL, an option the scheme cannot express)."""


class CDNDisabledError(CDNError, RuntimeError):
    """The CDN is switched off (``CDN_ENABLED`` is not true) and a signed URL was requested."""


class InvalidTokenError(CDNError, ValueError):
    """A signed URL or cookie failed verification.

    Attributes:
        reason: Why, as a :class:`FailureReason` (expired, bad signature, ...).
        detail: A human-readable explanation without any secret in it.
    """

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
