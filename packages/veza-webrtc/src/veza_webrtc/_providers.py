"""Hosted TURN services behind the same builder: Cloudflare Realtime TURN and Twilio.

Each provider answers in its own shape (Cloudflare: ``iceServers`` with no TTL;
Twilio: ``ice_servers`` with a *string* ``ttl`` and a deprecated ``url`` beside
``urls``). Both are normalised into ours: ``{"urls": [...], "username", "credential"}``
entries, every URL validated as browsers would, plus ``ttl`` and ``expires_at``.

By default only the provider's TURN URLs are kept, at most one per transport (UDP, TCP,
TLS): providers list five to seven URLs, Firefox logs an error from the fifth, and each
extra URL slows ICE gathering. STUN comes from your own ``WEBRTC_STUN_URLS``.

Grants are cached and reused while more than half their lifetime remains, so a page
load does not cost a provider round trip; pass ``cache=False`` to fetch every time.
httpx is imported when a source is created (``veza-webrtc[providers]``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from veza_webrtc._config import IceServer, TurnGrant
from veza_webrtc._errors import IceURLSyntaxError, TurnProviderError, WebRTCConfigurationError
from veza_webrtc._secret import Secret
from veza_webrtc._uri import parse_ice_url

if TYPE_CHECKING:  # the [providers] extra's types; imported on use at run time
    import httpx

_log = logging.getLogger("veza_webrtc")
CLOUDFLARE_MAX_TTL = 48 * 3600


def _client(
    base_url: str,
    timeout: float,
    transport: httpx.BaseTransport | None,
    *,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> httpx.Client:
    try:
        import httpx  # noqa: PLC0415 - the [providers] extra
    except ImportError:
        msg = "hosted TURN sources need httpx: pip install 'veza-webrtc[providers]'"
        raise WebRTCConfigurationError(msg) from None
    return httpx.Client(
        base_url=base_url, timeout=timeout, transport=transport, headers=headers, auth=auth
    )


def normalise_ice_servers(
    raw: Sequence[Mapping[str, Any]], *, compact: bool = True
) -> tuple[IceServer, ...]:
    """Turn a provider's server list into validated TURN entries of our shape.

    Raises:
        TurnProviderError: No usable TURN URL with credentials in the answer.
    """
    servers: list[IceServer] = []
    seen: set[tuple[str, str]] = set()
    for entry in raw:
        urls = entry.get("urls", entry.get("url", []))
        urls = [urls] if isinstance(urls, str) else list(urls)
        username, credential = entry.get("username"), entry.get("credential")
        kept: list[str] = []
        for url in urls:
            try:
                parsed = parse_ice_url(str(url))
            except IceURLSyntaxError:
                _log.warning("veza-webrtc: dropped an invalid URL from the TURN provider")
                continue
            if not parsed.is_turn or not username or not credential:
                continue
            kind = ("tls" if parsed.scheme == "turns" else parsed.transport or "udp", "")
            if compact and kind in seen:
                continue
            seen.add(kind)
            kept.append(str(parsed))
        if kept:
            servers.append({"urls": kept, "username": str(username), "credential": str(credential)})
    if not servers:
        msg = "the TURN provider returned no TURN URL with credentials"
        raise TurnProviderError(msg)
    return tuple(servers)


class _CachingSource:
    """Shared caching: reuse a grant while more than half its lifetime remains."""

    def __init__(self, *, cache: bool) -> None:
        self._cache = cache
        self._grant: TurnGrant | None = None
        self._issued = 0.0
        self._lock = threading.Lock()

    def fetch(self, *, ttl: int, user_id: str | None, now: float) -> TurnGrant:
        """A grant valid for about ``ttl`` seconds (cached while fresh)."""
        del user_id  # provider credentials are not per user
        with self._lock:
            grant = self._grant
            if (
                self._cache
                and grant is not None
                and grant.expires_at is not None
                and now < grant.expires_at - (grant.expires_at - self._issued) / 2
            ):
                return grant
        grant = self._request(ttl=ttl, now=now)
        with self._lock:
            self._grant, self._issued = grant, now
        return grant

    def _request(self, *, ttl: int, now: float) -> TurnGrant:
        raise NotImplementedError


class CloudflareTurnSource(_CachingSource):
    """Cloudflare Realtime TURN (``generate-ice-servers``; TTL up to 48 hours).

    Args:
        key_id: The TURN key id.
        api_token: The TURN key's API token (a bearer token; ``str`` or :class:`Secret`,
            never shown).
        base_url: The API origin (tests point it at a local fake).
        timeout: Seconds before the request is abandoned.
        transport: An httpx transport, to test your code against ours.
        cache: Reuse a grant while more than half its lifetime remains.
    """

    def __init__(
        self,
        key_id: str,
        api_token: str | Secret[str],
        *,
        base_url: str = "https://rtc.live.cloudflare.com",
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(cache=cache)
        self._api_token = api_token if isinstance(api_token, Secret) else Secret(api_token)
        if not key_id or not self._api_token:
            msg = "Cloudflare TURN needs a key id and an API token"
            raise WebRTCConfigurationError(msg)
        self._key_id = key_id
        self._client = _client(
            base_url,
            timeout,
            transport,
            headers={"Authorization": f"Bearer {self._api_token.reveal()}"},
        )

    def __repr__(self) -> str:
        return f"CloudflareTurnSource(key_id={self._key_id!r}, api_token={self._api_token!r})"

    def _request(self, *, ttl: int, now: float) -> TurnGrant:
        granted = min(ttl, CLOUDFLARE_MAX_TTL)
        path = f"/v1/turn/keys/{self._key_id}/credentials/generate-ice-servers"
        body = _call(self._client, "POST", path, "Cloudflare", json={"ttl": granted})
        servers = body.get("iceServers")
        if isinstance(servers, Mapping):  # the older /generate endpoint's single object
            servers = [servers]
        if not isinstance(servers, list):
            msg = "Cloudflare's answer has no iceServers list"
            raise TurnProviderError(msg)
        return TurnGrant(normalise_ice_servers(servers), ttl=granted, expires_at=int(now) + granted)


class TwilioTurnSource(_CachingSource):
    """Twilio Network Traversal Service tokens (``Tokens.json``).

    Args:
        account_sid: The account SID (``AC…``).
        auth_token: Its auth token (``str`` or :class:`Secret`, never shown).
        base_url: The API origin (tests point it at a local fake).
        timeout: Seconds before the request is abandoned.
        transport: An httpx transport.
        cache: Reuse a grant while more than half its lifetime remains.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str | Secret[str],
        *,
        base_url: str = "https://api.twilio.com",
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(cache=cache)
        self._auth_token = auth_token if isinstance(auth_token, Secret) else Secret(auth_token)
        if not account_sid or not self._auth_token:
            msg = "Twilio needs an account SID and an auth token"
            raise WebRTCConfigurationError(msg)
        self._sid = account_sid
        self._client = _client(
            base_url, timeout, transport, auth=(account_sid, self._auth_token.reveal())
        )

    def __repr__(self) -> str:
        return f"TwilioTurnSource(account_sid={self._sid!r}, auth_token={self._auth_token!r})"

    def _request(self, *, ttl: int, now: float) -> TurnGrant:
        path = f"/2010-04-01/Accounts/{self._sid}/Tokens.json"
        body = _call(self._client, "POST", path, "Twilio", data={"Ttl": str(ttl)})
        servers = body.get("ice_servers")
        if not isinstance(servers, list):
            msg = "Twilio's answer has no ice_servers list"
            raise TurnProviderError(msg)
        try:
            granted = int(str(body.get("ttl", ttl)))  # Twilio sends the TTL as a string
        except ValueError:
            granted = ttl
        return TurnGrant(normalise_ice_servers(servers), ttl=granted, expires_at=int(now) + granted)


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    provider: str,
    *,
    json: Mapping[str, object] | None = None,
    data: Mapping[str, str] | None = None,
) -> Mapping[str, Any]:
    import httpx  # noqa: PLC0415 - the [providers] extra

    try:
        response = client.request(method, path, json=json, data=data)
    except httpx.HTTPError as exc:
        msg = f"{provider} TURN request failed: {type(exc).__name__}"
        raise TurnProviderError(msg) from None
    if response.status_code >= 400:
        msg = f"{provider} TURN request answered HTTP {response.status_code}"
        raise TurnProviderError(msg)
    try:
        body = response.json()
    except ValueError:
        msg = f"{provider} TURN answer is not JSON"
        raise TurnProviderError(msg) from None
    if not isinstance(body, Mapping):
        msg = f"{provider} TURN answer is not a JSON object"
        raise TurnProviderError(msg)
    return body
