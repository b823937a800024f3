"""Ephemeral TURN credentials: the TURN REST API scheme coturn's ``use-auth-secret`` checks.

``username = f"{expiry}{separator}{user_id}"`` (just the expiry when there is no user
id), ``credential = base64(HMAC-SHA1(secret, username))``, ``expiry = now + ttl``.

What coturn does with them, and why the rules below exist:

* coturn only checks that the expiry is not in the past, with **no clock-skew leeway**;
* an allocation **outlives** its credentials: coturn keeps relaying for an allocation
  made before the expiry (Cloudflare disconnects instead), so a short TTL does not cut
  calls, it only stops new allocations and refreshes after it;
* with several ``static-auth-secret`` lines coturn tries each secret in turn, which is
  what makes rotation possible: sign with the newest, keep the old ones configured
  until every credential they signed has expired.

TTLs under 300 seconds are refused: with no leeway, a slightly slow clock on the TURN
server or a slow page turns them into immediate auth failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Sequence

import attrs

from veza_webrtc._compat import positional_deprecated
from veza_webrtc._errors import WebRTCConfigurationError
from veza_webrtc._secret import Secret

MIN_TTL = 300
DEFAULT_TTL = 86_400


@attrs.frozen
class TurnCredentials:
    """A username/credential pair for TURN, and when it stops working.

    Attributes:
        username: ``"<expiry>:<user id>"`` (or just the expiry).
        credential: base64 HMAC-SHA1 of the username under the TURN secret.
        ttl: Seconds the credentials were issued for.
        expires_at: UTC epoch seconds after which coturn refuses new allocations.
    """

    username: str
    credential: str = attrs.field(repr=False)
    ttl: int
    expires_at: int

    def to_dict(self) -> dict[str, object]:
        """``{"username", "credential", "ttl", "expires_at"}`` (the CLI's output)."""
        return {
            "username": self.username,
            "credential": self.credential,
            "ttl": self.ttl,
            "expires_at": self.expires_at,
        }


def _check_ttl(ttl: int) -> None:
    if isinstance(ttl, bool) or ttl < MIN_TTL:
        msg = (
            f"the TURN credential TTL must be an integer of at least {MIN_TTL} seconds, "
            f"got {ttl!r}: coturn allows no clock skew"
        )
        raise WebRTCConfigurationError(msg)


def turn_credential(secret: str | Secret[str], username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``: what coturn recomputes."""
    if isinstance(secret, Secret):
        secret = secret.reveal()
    digest = hmac.digest(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest).decode("ascii")


def ephemeral_credentials(
    secret: str | Secret[str],
    *,
    user_id: str | None = None,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
    separator: str = ":",
) -> TurnCredentials:
    """Issue TURN REST API credentials valid for ``ttl`` seconds.

    Args:
        secret: The shared secret configured in coturn (``static-auth-secret``), as a
            ``str`` or a :class:`Secret`.
        user_id: Recorded in the username (coturn logs it; per-user quotas use it).
        ttl: Lifetime in seconds (at least 300).
        now: Issue time, UTC epoch seconds (default: now).
        separator: Between expiry and user id; must match coturn's
            ``rest-api-separator`` (``:`` by default).

    Raises:
        WebRTCConfigurationError: Empty secret, TTL under 300 s, a bad separator, or a
            user id containing the separator (coturn would split it there).
    """
    if not secret:
        msg = "the TURN secret is empty"
        raise WebRTCConfigurationError(msg)
    _check_ttl(ttl)
    if len(separator) != 1 or separator.isalnum():
        msg = f"the separator must be one non-alphanumeric character, got {separator!r}"
        raise WebRTCConfigurationError(msg)
    if user_id is not None and separator in user_id:
        msg = f"the user id must not contain the separator {separator!r}"
        raise WebRTCConfigurationError(msg)
    expires_at = math.floor(time.time() if now is None else now) + ttl
    username = str(expires_at) if not user_id else f"{expires_at}{separator}{user_id}"
    return TurnCredentials(
        username=username,
        credential=turn_credential(secret, username),
        ttl=ttl,
        expires_at=expires_at,
    )


@positional_deprecated
def check_credentials(
    secrets: Sequence[str | Secret[str]],
    username: str,
    *,
    credential: str,
    now: float | None = None,
    separator: str = ":",
) -> bool:
    """Check credentials the way coturn does: a known secret signed them, not expired.

    For tests and for TURN servers built on this library; coturn does the same itself.
    """
    expiry_text = username.split(separator, 1)[0]
    if not expiry_text.isdigit():
        return False
    if int(expiry_text) < (time.time() if now is None else now):
        return False
    given = credential.encode("ascii", "replace")
    return any(
        hmac.compare_digest(turn_credential(s, username).encode("ascii"), given) for s in secrets
    )
