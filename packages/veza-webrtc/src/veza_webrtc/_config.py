"""The ICE configuration builder: environment in, the browser's RTCConfiguration out.

The family's shape: ``IceConfig.from_env()`` reads and validates the variables once into
a frozen value, and ``.build()`` gives :class:`IceServers`, whose
``to_rtc_configuration(user_id)`` only signs fresh credentials per request. The half-config rule:
TURN URLs without complete credentials (username and credential, or a secret), or
credentials without TURN URLs, produce **no TURN block at all**, with one warning naming
the missing variable. A clean STUN-only call beats authentication errors at call time.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol, cast

import attrs

from veza_webrtc._credentials import DEFAULT_TTL, ephemeral_credentials
from veza_webrtc._errors import (
    IceServerAccessError,
    IceURLSyntaxError,
    TurnProviderError,
    WebRTCConfigurationError,
)
from veza_webrtc._secret import Secret
from veza_webrtc._uri import IceURL, parse_ice_url

_log = logging.getLogger("veza_webrtc")

TransportPolicy = Literal["all", "relay"]
IceServer = dict[str, object]
MAX_USERNAME_BYTES = 509  # RFC 8489 14.3: fewer than 509 bytes
BROWSER_URL_LIMIT = 4  # Firefox logs an error from the fifth URL on
ICE_CACHE_CONTROL = "private, no-store"
"""``Cache-Control`` for an endpoint returning ICE configuration: per-user credentials
must never sit in a shared cache. Clients keep the response in memory for the page's
lifetime and refresh it at ``refreshAfter``."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(name: str, value: str | None, *, default: bool = False) -> bool:
    """Read a boolean variable the way every veza package does.

    Accepted, in any case and with surrounding blanks ignored: ``1``/``0``,
    ``true``/``false``, ``yes``/``no``, ``on``/``off``; unset or blank gives ``default``.
    Anything else is refused instead of being read as false, because a typo such as
    ``ENABLED=ture`` must stop start-up rather than quietly switch a feature off. The
    packages share no dependency, so each keeps this same function in its config
    module; ``tests/test_parse_bool.py`` runs one table through all of them so they
    cannot drift apart.

    Args:
        name: The variable's name, for the error message.
        value: Its raw value (``None`` when unset).
        default: The answer for an unset or blank variable.

    Raises:
        WebRTCConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise WebRTCConfigurationError(msg)


@attrs.frozen
class TurnGrant:
    """ICE servers a hosted TURN provider issued.

    Attributes:
        ice_servers: Normalised ``{"urls": [...], "username"?, "credential"?}`` entries.
        ttl: Lifetime the provider granted, in seconds (``None`` when it does not say).
        expires_at: UTC epoch seconds when the credentials stop working, if known.
    """

    ice_servers: tuple[IceServer, ...] = attrs.field(repr=False)
    ttl: int | None = None
    expires_at: int | None = None


class TurnSource(Protocol):
    """A hosted TURN service (Cloudflare, Twilio) behind the same builder."""

    def fetch(self, *, ttl: int, user_id: str | None, now: float) -> TurnGrant:
        """Ask the provider for credentials valid for about ``ttl`` seconds."""
        ...


def _urls(value: Iterable[IceURL | str] | str, variable: str) -> tuple[IceURL, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    parsed: list[IceURL] = []
    for item in items:
        if isinstance(item, IceURL):
            parsed.append(item)
            continue
        text = item.strip()
        if not text:
            continue
        try:
            parsed.append(parse_ice_url(text))
        except IceURLSyntaxError as exc:
            msg = f"{variable}: {exc}"
            raise IceURLSyntaxError(msg) from None
    return tuple(parsed)


def _stun_urls(value: Iterable[IceURL | str] | str) -> tuple[IceURL, ...]:
    return _urls(value, "WEBRTC_STUN_URLS")


def _turn_urls(value: Iterable[IceURL | str] | str) -> tuple[IceURL, ...]:
    return _urls(value, "WEBRTC_TURN_URLS")


def _secrets(value: Iterable[str | Secret[str]] | str | Secret[str]) -> tuple[Secret[str], ...]:
    if isinstance(value, Secret):
        value = value.reveal()
    items = value.split(",") if isinstance(value, str) else list(value)
    texts = (item.reveal() if isinstance(item, Secret) else item for item in items)
    return tuple(Secret(text.strip()) for text in texts if text.strip())


def _credential(value: str | Secret[str] | None) -> Secret[str] | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


TurnMode = Literal["static", "ephemeral", "source"]


@attrs.frozen
class _Derived:
    """What a valid configuration implies: how TURN credentials are made, and warnings."""

    mode: TurnMode | None
    warnings: tuple[str, ...]


def _derive(config: IceConfig) -> _Derived:
    """Validate ``config`` across fields and derive its TURN mode; pure (no logging).

    Runs in the factories (:meth:`IceConfig.from_env`, :meth:`IceConfig.build`), never
    while a value is constructed: an ``IceConfig`` is plain data, and logging is left to
    ``from_env`` so validating has no side effects.

    Raises:
        IceURLSyntaxError: STUN URLs among the TURN ones or the reverse.
        IceServerAccessError: A static username of 509 bytes or more.
        WebRTCConfigurationError: A bad policy, TTL or separator, or ``relay`` without
            TURN.
    """
    wrong_stun = [str(u) for u in config.stun_urls if u.is_turn]
    if wrong_stun:
        msg = f"WEBRTC_STUN_URLS holds TURN URLs {wrong_stun}: put them in WEBRTC_TURN_URLS"
        raise IceURLSyntaxError(msg)
    wrong_turn = [str(u) for u in config.turn_urls if not u.is_turn]
    if wrong_turn:
        msg = f"WEBRTC_TURN_URLS holds STUN URLs {wrong_turn}: put them in WEBRTC_STUN_URLS"
        raise IceURLSyntaxError(msg)
    if config.transport_policy not in ("all", "relay"):
        msg = (
            f"WEBRTC_ICE_TRANSPORT_POLICY must be 'all' or 'relay', got {config.transport_policy!r}"
        )
        raise WebRTCConfigurationError(msg)
    warnings: list[str] = []
    mode = _turn_mode(config, warnings)
    if mode == "ephemeral":
        ephemeral_credentials(
            config.turn_secrets[0], ttl=config.turn_ttl, now=0, separator=config.separator
        )  # validates ttl and separator
    if mode == "static" and len((config.turn_username or "").encode()) >= MAX_USERNAME_BYTES:
        msg = (
            "WEBRTC_TURN_USERNAME is 509 bytes or longer: browsers throw "
            "InvalidAccessError (RFC 8489 section 14.3)"
        )
        raise IceServerAccessError(msg)
    total = len(config.stun_urls) + (len(config.turn_urls) if mode else 0)
    if total > BROWSER_URL_LIMIT:
        warnings.append(
            f"{total} ICE server URLs configured: Firefox logs an error from 5 on and "
            "every extra URL slows ICE gathering; keep at most 4"
        )
    if mode is None and config.transport_policy == "relay":
        msg = (
            "WEBRTC_ICE_TRANSPORT_POLICY=relay needs a TURN server with credentials: "
            "with no TURN block every call would fail"
        )
        raise WebRTCConfigurationError(msg)
    if not config.stun_urls and mode is None:
        warnings.append(
            "no ICE servers configured (WEBRTC_STUN_URLS, WEBRTC_TURN_URLS): calls will "
            "only connect on the same network"
        )
    return _Derived(mode=mode, warnings=tuple(warnings))


def _turn_mode(config: IceConfig, warnings: list[str]) -> TurnMode | None:
    has_static = bool(config.turn_username) and bool(config.turn_credential)
    partial_static = bool(config.turn_username) != bool(config.turn_credential)
    has_secret = bool(config.turn_secrets)
    if config.turn_source is not None:
        return "source"
    if config.turn_urls:
        if has_secret:
            if has_static or partial_static:
                warnings.append(
                    "WEBRTC_TURN_USERNAME/WEBRTC_TURN_CREDENTIAL are ignored: "
                    "WEBRTC_TURN_SECRET issues ephemeral credentials instead"
                )
            return "ephemeral"
        if has_static:
            return "static"
        missing = (
            "WEBRTC_TURN_CREDENTIAL"
            if config.turn_username
            else (
                "WEBRTC_TURN_USERNAME"
                if config.turn_credential
                else "WEBRTC_TURN_SECRET (or WEBRTC_TURN_USERNAME and WEBRTC_TURN_CREDENTIAL)"
            )
        )
        warnings.append(
            f"WEBRTC_TURN_URLS is set but {missing} is missing: no TURN server will be "
            "offered (STUN only)"
        )
        return None
    if has_secret or has_static or partial_static:
        warnings.append(
            "TURN credentials are set but WEBRTC_TURN_URLS is missing: no TURN server "
            "will be offered (STUN only)"
        )
    return None


@attrs.frozen(kw_only=True)
class IceConfig:
    """What the browser needs to traverse NATs: STUN/TURN servers and credentials.

    A frozen value: constructing one converts its fields but validates nothing across
    them. :meth:`from_env` and :meth:`build` validate; :meth:`build` gives the
    :class:`IceServers` that answers each request.

    Attributes:
        stun_urls: ``WEBRTC_STUN_URLS``: ``stun:``/``stuns:`` URLs.
        turn_urls: ``WEBRTC_TURN_URLS``: ``turn:``/``turns:`` URLs.
        turn_username: ``WEBRTC_TURN_USERNAME``: static long-term username.
        turn_credential: ``WEBRTC_TURN_CREDENTIAL``: its password, held as a
            :class:`Secret` (a ``str`` given is wrapped).
        turn_secrets: ``WEBRTC_TURN_SECRET``: TURN REST shared secrets, each held as a
            :class:`Secret`; the first signs, all are expected to be configured in coturn
            during a rotation.
        turn_ttl: ``WEBRTC_TURN_TTL``: lifetime of ephemeral credentials (seconds).
        transport_policy: ``WEBRTC_ICE_TRANSPORT_POLICY``: ``all`` or ``relay``.
        separator: ``WEBRTC_TURN_SEPARATOR``: coturn's ``rest-api-separator``.
        turn_source: A hosted TURN provider used instead of coturn credentials.
    """

    stun_urls: tuple[IceURL, ...] = attrs.field(default=(), converter=_stun_urls)
    turn_urls: tuple[IceURL, ...] = attrs.field(default=(), converter=_turn_urls)
    turn_username: str | None = None
    turn_credential: Secret[str] | None = attrs.field(default=None, converter=_credential)
    turn_secrets: tuple[Secret[str], ...] = attrs.field(default=(), converter=_secrets)
    turn_ttl: int = DEFAULT_TTL
    transport_policy: TransportPolicy = "all"
    separator: str = ":"
    turn_source: TurnSource | None = attrs.field(default=None, repr=False)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems that do not stop start-up (``from_env`` logs each once).

        Raises:
            WebRTCConfigurationError: The value is invalid (see :meth:`build`).
        """
        return _derive(self).warnings

    @property
    def has_turn(self) -> bool:
        """Whether configurations carry a TURN block (for the UI's warning)."""
        return _derive(self).mode is not None

    @property
    def ephemeral(self) -> bool:
        """Whether TURN credentials are issued per request (TURN REST API secret)."""
        return _derive(self).mode == "ephemeral"

    def build(self) -> IceServers:
        """Validate across fields and return the :class:`IceServers` for these settings.

        Raises:
            IceURLSyntaxError: STUN URLs among the TURN ones or the reverse.
            IceServerAccessError: A static username of 509 bytes or more.
            WebRTCConfigurationError: A bad policy, TTL or separator, or ``relay``
                without TURN.
        """
        return IceServers(self)

    def to_rtc_configuration(
        self, user_id: str | None = None, now: float | None = None
    ) -> dict[str, object]:
        """Deprecated: ``config.build().to_rtc_configuration(...)`` (the 0.1.0 path).

        .. deprecated:: 0.2.0
            Build once at start-up and keep the :class:`IceServers`; this validates the
            configuration again on every call. Removed in 0.3.0.
        """
        _deprecated("to_rtc_configuration")
        return IceServers(self).to_rtc_configuration(user_id, now)

    def to_response(
        self, user_id: str | None = None, now: float | None = None
    ) -> dict[str, object]:
        """Deprecated: ``config.build().to_response(...)`` (the 0.1.0 path).

        .. deprecated:: 0.2.0
            Build once at start-up and keep the :class:`IceServers`. Removed in 0.3.0.
        """
        _deprecated("to_response")
        return IceServers(self).to_response(user_id, now)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        turn_source: TurnSource | None = None,
    ) -> IceConfig:
        """Read and validate the ``WEBRTC_*`` variables once, at start-up.

        Warnings (a half-configured TURN block, too many URLs) are logged here, once.

        Raises:
            WebRTCConfigurationError: A bad value; the message names the variable and
                the value (credentials are never repeated).
        """
        return _from_env(cls, os.environ if environ is None else environ, turn_source)


def _deprecated(method: str) -> None:
    warnings.warn(
        f"IceConfig.{method}() is deprecated; build once with IceConfig.build() and call "
        f"IceServers.{method}()",
        DeprecationWarning,
        stacklevel=3,
    )


class IceServers:
    """The ICE servers a validated :class:`IceConfig` describes, answering each request.

    Built once at start-up (``IceConfig.from_env().build()``); per request it only signs
    fresh TURN credentials (or asks the hosted provider).

    Args:
        config: The settings; validated here.

    Raises:
        WebRTCConfigurationError: ``config`` is invalid (see :meth:`IceConfig.build`).
    """

    __slots__ = ("_mode", "config", "warnings")

    def __init__(self, config: IceConfig) -> None:
        derived = _derive(config)
        self.config = config
        self._mode = derived.mode
        self.warnings = derived.warnings

    def __repr__(self) -> str:
        return f"IceServers({self.config!r})"

    @property
    def has_turn(self) -> bool:
        """Whether configurations carry a TURN block (for the UI's warning)."""
        return self._mode is not None

    @property
    def ephemeral(self) -> bool:
        """Whether TURN credentials are issued per request (TURN REST API secret)."""
        return self._mode == "ephemeral"

    def to_rtc_configuration(
        self, user_id: str | None = None, now: float | None = None
    ) -> dict[str, object]:
        """The dict a browser passes to ``new RTCPeerConnection(...)``.

        Extra members browsers ignore ride along for the client: ``hasTurn``, and with
        ephemeral credentials ``expiresAt`` and ``refreshAfter`` (TTL/2 after issue):
        call ``setConfiguration()`` and ``restartIce()`` with a fresh configuration
        before ``expiresAt``.

        Args:
            user_id: Put into ephemeral usernames (coturn logs and quotas per user).
            now: Issue time, UTC epoch seconds (default: now).
        """
        issued = time.time() if now is None else now
        servers: list[IceServer] = []
        if self.config.stun_urls:
            servers.append({"urls": [str(u) for u in self.config.stun_urls]})
        config: dict[str, object] = {
            "iceServers": servers,
            "iceTransportPolicy": self.config.transport_policy,
        }
        turn_urls = [str(u) for u in self.config.turn_urls]
        if self._mode == "static":
            servers.append(
                {
                    "urls": turn_urls,
                    "username": self.config.turn_username,
                    "credential": self.config.turn_credential.reveal()
                    if self.config.turn_credential is not None
                    else None,
                }
            )
        elif self._mode == "ephemeral":
            credentials = ephemeral_credentials(
                self.config.turn_secrets[0],
                user_id=user_id,
                ttl=self.config.turn_ttl,
                now=issued,
                separator=self.config.separator,
            )
            servers.append(
                {
                    "urls": turn_urls,
                    "username": credentials.username,
                    "credential": credentials.credential,
                }
            )
            config["expiresAt"] = credentials.expires_at
            config["refreshAfter"] = int(issued) + self.config.turn_ttl // 2
        elif self._mode == "source" and self.config.turn_source is not None:
            try:
                grant = self.config.turn_source.fetch(
                    ttl=self.config.turn_ttl, user_id=user_id, now=issued
                )
            except TurnProviderError as exc:
                # STUN-only beats an error page: the client warns via hasTurn=false
                _log.warning("veza-webrtc: TURN provider unavailable, STUN only: %s", exc)
                grant = TurnGrant(())
            servers.extend(grant.ice_servers)
            if grant.expires_at is not None:
                lifetime = grant.expires_at - int(issued)
                config["expiresAt"] = grant.expires_at
                config["refreshAfter"] = int(issued) + lifetime // 2
        config["hasTurn"] = any(
            str(url).startswith(("turn:", "turns:"))
            for server in servers
            for url in cast("list[str]", server["urls"])
        )
        return config

    def to_response(
        self, user_id: str | None = None, now: float | None = None
    ) -> dict[str, object]:
        """The configuration plus ``ttl`` and ``expires_at``, for an HTTP endpoint.

        Serve it with ``Cache-Control: private, no-store`` (:data:`ICE_CACHE_CONTROL`).
        """
        config = self.to_rtc_configuration(user_id=user_id, now=now)
        expires_at = config.get("expiresAt")
        config["ttl"] = self.config.turn_ttl if expires_at is not None else None
        config["expires_at"] = expires_at
        return config


def _from_env(
    cls: type[IceConfig], env: Mapping[str, str], turn_source: TurnSource | None
) -> IceConfig:
    ttl_text = (env.get("WEBRTC_TURN_TTL") or "").strip()
    try:
        ttl = int(ttl_text) if ttl_text else DEFAULT_TTL
    except ValueError:
        msg = f"WEBRTC_TURN_TTL must be a number of seconds, got {ttl_text!r}"
        raise WebRTCConfigurationError(msg) from None
    policy = (env.get("WEBRTC_ICE_TRANSPORT_POLICY") or "all").strip().lower()
    if policy not in ("all", "relay"):
        msg = (
            "WEBRTC_ICE_TRANSPORT_POLICY must be 'all' or 'relay', "
            f"got {env.get('WEBRTC_ICE_TRANSPORT_POLICY')!r}"
        )
        raise WebRTCConfigurationError(msg)
    try:
        config = cls(
            stun_urls=env.get("WEBRTC_STUN_URLS", ""),
            turn_urls=env.get("WEBRTC_TURN_URLS", ""),
            turn_username=(env.get("WEBRTC_TURN_USERNAME") or "").strip() or None,
            turn_credential=env.get("WEBRTC_TURN_CREDENTIAL") or None,
            turn_secrets=env.get("WEBRTC_TURN_SECRET", ""),
            turn_ttl=ttl,
            transport_policy=cast("TransportPolicy", policy),
            separator=env.get("WEBRTC_TURN_SEPARATOR") or ":",
            turn_source=turn_source,
        )
        derived = _derive(config)  # validated once, here, not while the value is built
    except WebRTCConfigurationError as exc:
        if "TTL" in str(exc):
            msg = f"WEBRTC_TURN_TTL: {exc}"
            raise WebRTCConfigurationError(msg) from None
        if "separator" in str(exc):
            msg = f"WEBRTC_TURN_SEPARATOR: {exc}"
            raise WebRTCConfigurationError(msg) from None
        raise
    for warning in derived.warnings:
        _log.warning("veza-webrtc: %s", warning)
    return config
