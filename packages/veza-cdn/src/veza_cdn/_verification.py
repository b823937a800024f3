"""The result of verifying a signed URL or cookie, with a typed reason on failure."""

from __future__ import annotations

import enum
import hmac

import attrs

from veza_cdn._errors import InvalidTokenError


class FailureReason(enum.Enum):
    """Why a token was refused. The values are stable strings, safe to log and count."""

    MALFORMED = "malformed"
    """The URL or cookie does not carry a well-formed token for this scheme."""
    BAD_SIGNATURE = "bad_signature"
    """The signature does not match the signed content under any known key."""
    UNKNOWN_KEY = "unknown_key"
    """The token names a key (key pair id, key name) this verifier does not hold."""
    EXPIRED = "expired"
    """The token's expiry time has passed."""
    NOT_YET_VALID = "not_yet_valid"
    """The token's start time (``st``, ``DateGreaterThan``, issued-at) is in the future."""
    PATH_OUT_OF_SCOPE = "path_out_of_scope"
    """The request's path is outside the path, prefix or ACL the token covers."""
    IP_MISMATCH = "ip_mismatch"
    """The token is bound to an address the request did not come from."""
    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    """The token's country allow/block list excludes the request's country."""
    UNSAFE_PATH = "unsafe_path"
    """The request's path breaks the path rule (dot segment, encoded slash, control
    character, ...): refused before any scope check, never normalised."""


@attrs.frozen
class Verification:
    """Outcome of a verification. Truthy when valid.

    Attributes:
        valid: Whether the token is acceptable.
        reason: Why not, when ``valid`` is false.
        detail: A short explanation, free of secrets.
        expires: The token's expiry (UTC epoch seconds) when it could be read.
        path: On success, the request path decoded once (``/música/a.mp3``), exactly
            what the token was checked against. An edge serves this path and no
            other spelling of it.
    """

    valid: bool
    reason: FailureReason | None = None
    detail: str = ""
    expires: int | None = None
    path: str | None = None

    def __bool__(self) -> bool:
        return self.valid

    @classmethod
    def ok(cls, *, expires: int | None = None, path: str | None = None) -> Verification:
        """A successful verification (``path``: the decoded path that was checked)."""
        return cls(valid=True, detail="valid", expires=expires, path=path)

    @classmethod
    def fail(
        cls, reason: FailureReason, detail: str, *, expires: int | None = None
    ) -> Verification:
        """A failed verification."""
        return cls(valid=False, reason=reason, detail=detail, expires=expires)

    def raise_for_failure(self) -> None:
        """Raise :class:`InvalidTokenError` unless the token is valid."""
        if not self.valid:
            # fail() always sets a reason; a hand-built invalid result without one is
            # still refused, as the least specific failure
            raise InvalidTokenError(self.reason or FailureReason.MALFORMED, self.detail)


def check_time_window(
    now: float, expires: int, not_before: int | None = None
) -> Verification | None:
    """The shared expiry rule: valid while ``not_before <= now < expires``.

    Returns a failed :class:`Verification`, or ``None`` when the time is inside the window.
    """
    if now >= expires:
        return Verification.fail(
            FailureReason.EXPIRED, f"expired at {expires}, now {int(now)}", expires=expires
        )
    if not_before is not None and now < not_before:
        return Verification.fail(
            FailureReason.NOT_YET_VALID,
            f"valid from {not_before}, now {int(now)}",
            expires=expires,
        )
    return None


def constant_time_equal(received: str, expected: str) -> bool:
    """Compare a received token with the expected one in constant time.

    ``hmac.compare_digest`` refuses non-ASCII ``str``; a tampered URL can decode to
    anything, so both sides are compared as UTF-8 bytes.
    """
    return hmac.compare_digest(
        received.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
