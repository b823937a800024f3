"""Is my TURN server working? Probe every STUN/TURN URL of an ICE configuration.

For a TURN URL the probe does what a browser's ICE agent does, then checks that data
really goes through: Binding (reachable, round-trip time, mapped address), Allocate
with long-term credentials (401 realm/nonce, 438 stale nonce), CreatePermission for an
echo peer, data out and back through the relay (Send/Data indications, or ChannelBind
and ChannelData), then Refresh with lifetime 0 so the allocation does not linger. For a
STUN URL it does the Binding only. Each failure gets a stable code and a sentence an
operator can act on.

The echo peer: by default the probe is its own peer. It opens a UDP socket, names it
(at the address the TURN server sees the probe at) in CreatePermission, sends through
the relay to it and answers from it back to the relayed address, so nothing else has to
run. Give ``peer=(host, port)`` to use a UDP echo server instead (coturn's
``turnutils_peer``, for example), which also works when the probe host cannot receive
UDP from the relay.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final, TypedDict

import attrs

from veza_webrtc import _tracing
from veza_webrtc._config import IceConfig, IceServers
from veza_webrtc._errors import IceURLSyntaxError
from veza_webrtc._secret import Secret
from veza_webrtc._stun import (
    CREATE_PERMISSION,
    XOR_MAPPED_ADDRESS,
    XOR_RELAYED_ADDRESS,
    Address,
    StunMessage,
    StunParseError,
)
from veza_webrtc._transport import Channel, TransportName
from veza_webrtc._turn_client import IntegrityError, TurnRefusedError, TurnSession
from veza_webrtc._uri import IceURL, parse_ice_url

if TYPE_CHECKING:  # the [otel] extra's types; never imported at run time
    from opentelemetry.trace import TracerProvider

# failure codes (stable: health checks and dashboards match on them)
UNREACHABLE: Final = "unreachable"
UDP_BLOCKED: Final = "udp_blocked"
TLS_CERTIFICATE: Final = "tls_certificate"
TLS_HANDSHAKE: Final = "tls_handshake"
NO_CREDENTIAL: Final = "no_credential"
WRONG_CREDENTIAL: Final = "wrong_credential"
EXPIRED_CREDENTIAL: Final = "expired_credential"
FORBIDDEN_PEER: Final = "forbidden_peer"
ALLOCATION_QUOTA: Final = "allocation_quota"
INSUFFICIENT_CAPACITY: Final = "insufficient_capacity"
RELAY_NO_ECHO: Final = "relay_no_echo"
TIMEOUT: Final = "timeout"
PROTOCOL_ERROR: Final = "protocol_error"
UNSUPPORTED: Final = "unsupported"
REFUSED: Final = "refused"

_FORBIDDEN = 403
_QUOTA = 486
_CAPACITY = 508
_UNAUTHORIZED = 401
_FAMILY_UNSUPPORTED = 440
_CHANNEL = 0x4000
_MS = 1000.0


@attrs.frozen
class ProbeResult:
    """What probing one STUN/TURN URL found.

    Attributes:
        url: The URL probed, as written in the configuration.
        transport: ``udp``, ``tcp`` or ``tls``.
        reachable: A STUN Binding was answered.
        authenticated: The TURN server accepted the credentials (``None`` for STUN URLs
            and when the server was not reached).
        relayed_address: ``ip:port`` of the allocation, when one was made.
        mapped_address: ``ip:port`` the server sees the probe at.
        rtt_ms: Round-trip time of the Binding request, in milliseconds.
        bytes_echoed: Payload bytes that went out through the relay and came back.
        failure: ``None`` when everything worked, else a stable code (``udp_blocked``,
            ``wrong_credential``, ``expired_credential``, ``forbidden_peer``,
            ``allocation_quota``, ``tls_certificate``, ...).
        diagnosis: For a human: what failed and what to do about it.
        error_code: The STUN error code behind the failure, if any.
        elapsed_ms: Time the whole probe of this URL took.
    """

    url: str
    transport: TransportName
    reachable: bool = False
    authenticated: bool | None = None
    relayed_address: str | None = None
    mapped_address: str | None = None
    rtt_ms: float | None = None
    bytes_echoed: int = 0
    failure: str | None = None
    diagnosis: str | None = None
    error_code: int | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the URL works end to end (for TURN: data went through the relay)."""
        return self.failure is None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``ok`` included); never contains a credential."""
        return {"ok": self.ok, **attrs.asdict(self)}


def _transport_of(url: IceURL) -> TransportName:
    if url.scheme in ("stuns", "turns"):
        return "tls"
    return "tcp" if url.transport == "tcp" else "udp"


def _fmt(address: Address | None) -> str | None:
    if address is None:
        return None
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _FailedError(Exception):
    def __init__(self, code: str, diagnosis: str, error_code: int | None = None) -> None:
        super().__init__(diagnosis)
        self.code, self.diagnosis, self.error_code = code, diagnosis, error_code


def _alternatives(url: IceURL) -> str:
    return (
        f"try turn:{url.host}:{url.effective_port}?transport=tcp or turns:{url.host}:5349 "
        "(and offer them in WEBRTC_TURN_URLS)"
    )


def _connect_failure(url: IceURL, transport: TransportName, exc: BaseException) -> _FailedError:
    where = f"{url.host}:{url.effective_port}/{transport}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _FailedError(
            TLS_CERTIFICATE,
            f"the TLS certificate of {where} was refused: {exc.verify_message} "
            "(browsers refuse it too: use a certificate from a public CA that names "
            f"{url.host}, with its full chain)",
        )
    if isinstance(exc, ssl.SSLError):
        return _FailedError(TLS_HANDSHAKE, f"the TLS handshake with {where} failed: {exc.reason}")
    if isinstance(exc, socket.gaierror):
        return _FailedError(UNREACHABLE, f"cannot resolve {url.host}: {exc.strerror}")
    if isinstance(exc, ConnectionRefusedError):
        return _FailedError(UNREACHABLE, f"nothing listens on {where} (connection refused)")
    if isinstance(exc, TimeoutError) and transport == "udp":
        return _FailedError(
            UDP_BLOCKED,
            f"no answer from {where}: UDP is blocked on the way or the server is down; "
            + _alternatives(url),
        )
    if isinstance(exc, TimeoutError):
        return _FailedError(TIMEOUT, f"no answer from {where} in time")
    return _FailedError(UNREACHABLE, f"cannot reach {where}: {exc}")


def _credential_failure(username: str, separator: str, now: float) -> _FailedError:
    expiry, _, _ = username.partition(separator)
    if expiry.isdigit() and int(expiry) < now:
        ago = int(now - int(expiry))
        return _FailedError(
            EXPIRED_CREDENTIAL,
            f"the credentials expired {ago} s ago (username {username!r}): issue fresh "
            "ones; coturn allows no clock skew, so also check the servers' clocks",
            _UNAUTHORIZED,
        )
    return _FailedError(
        WRONG_CREDENTIAL,
        f"the server refused username {username!r}: the credential is wrong (for TURN "
        "REST credentials: a static-auth-secret mismatch, or a rest-api-separator or "
        "realm that differs from the issuer's)",
        _UNAUTHORIZED,
    )


class _Found(TypedDict, total=False):
    """What a probe learnt so far: the :class:`ProbeResult` fields it fills in."""

    reachable: bool
    authenticated: bool | None
    relayed_address: str | None
    mapped_address: str | None
    rtt_ms: float | None
    bytes_echoed: int


def _refusal(
    exc: TurnRefusedError, username: str, separator: str, peer: Address | None
) -> _FailedError:
    if exc.code == _UNAUTHORIZED and exc.authenticated:
        return _credential_failure(username, separator, time.time())
    if exc.method == CREATE_PERMISSION and exc.code == _FORBIDDEN:
        target = _fmt(peer) if peer else "the peer"
        return _FailedError(
            FORBIDDEN_PEER,
            f"the server refuses to relay to {target} (403 {exc.reason}): its "
            "denied-peer-ip list covers that address, as it should for internal ones",
            exc.code,
        )
    if exc.code == _QUOTA:
        return _FailedError(
            ALLOCATION_QUOTA,
            "allocation quota reached (486): this user (or the server, total-quota) has "
            "too many relays open; raise user-quota or close stale sessions",
            exc.code,
        )
    if exc.code == _CAPACITY:
        return _FailedError(
            INSUFFICIENT_CAPACITY,
            "the server has no relay port left (508): widen min-port/max-port",
            exc.code,
        )
    return _FailedError(REFUSED, f"the server answered error {exc.code} {exc.reason}", exc.code)


@attrs.define
class _Probe:
    url: IceURL
    username: str | None
    credential: Secret[str] | None
    deadline: float
    peer: Address | None
    tls_context: ssl.SSLContext | None
    channel_data: bool
    payload_size: int
    separator: str
    found: _Found = attrs.field(factory=_Found)

    def run(self) -> None:
        transport = _transport_of(self.url)
        if self.url.scheme == "turns" and self.url.transport == "udp":
            raise _FailedError(
                UNSUPPORTED, "TURN over DTLS is not probed: use turns:...?transport=tcp"
            )
        host = self.url.host.strip("[]")
        try:
            channel = Channel(
                host,
                self.url.effective_port,
                transport,
                deadline=self.deadline,
                tls_context=self.tls_context,
            )
        except (OSError, ssl.SSLError) as exc:
            raise _connect_failure(self.url, transport, exc) from None
        try:
            self._over(channel)
        except TimeoutError:
            if not self.found.get("reachable"):
                raise _connect_failure(self.url, transport, TimeoutError()) from None
            raise _FailedError(  # it answered the Binding, then went quiet: not a blocked port
                TIMEOUT,
                f"{self.url.host}:{self.url.effective_port}/{transport} answered the Binding "
                "request but not the TURN requests in time (overloaded, or a middlebox "
                "that passes STUN but not TURN)",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise _connect_failure(self.url, transport, exc) from None
        except (StunParseError, IntegrityError) as exc:
            raise _FailedError(PROTOCOL_ERROR, f"the server's answer is not valid: {exc}") from None
        finally:
            channel.close()

    def _over(self, channel: Channel) -> None:
        session = TurnSession(channel, username=self.username, password=self.credential)
        started = time.monotonic()
        binding = session.binding(deadline=self.deadline)
        self.found["rtt_ms"] = round((time.monotonic() - started) * _MS, 3)
        self.found["reachable"] = True
        self.found["mapped_address"] = _fmt(binding.address(XOR_MAPPED_ADDRESS))
        if not self.url.is_turn:
            return
        if self.username is None or self.credential is None:
            raise _FailedError(NO_CREDENTIAL, "no TURN credentials to test this URL with")
        try:
            allocation = self._allocate(session)
        except TurnRefusedError as exc:
            if exc.authenticated or exc.code != _UNAUTHORIZED:
                self.found["authenticated"] = exc.code != _UNAUTHORIZED
            raise _refusal(exc, self.username, self.separator, None) from None  # no peer yet
        self.found["authenticated"] = True
        # coturn 4.6.1 adds "0.0.0.0:0" for a family it refused earlier in the session
        usable = [
            (host, port)
            for host, port in allocation.addresses(XOR_RELAYED_ADDRESS)
            if port and not ipaddress.ip_address(host).is_unspecified
        ]
        relayed = usable[0] if usable else None
        mapped = allocation.address(XOR_MAPPED_ADDRESS)
        if relayed is None:
            raise _FailedError(PROTOCOL_ERROR, "the Allocate success has no XOR-RELAYED-ADDRESS")
        self.found["relayed_address"] = _fmt(relayed)
        try:
            self._echo(session, relayed, mapped)
        finally:
            # release the relay now; if this fails it times out by itself (LIFETIME)
            with contextlib.suppress(OSError, TurnRefusedError, StunParseError, IntegrityError):
                session.refresh(0, deadline=max(self.deadline, time.monotonic() + 0.5))

    def _allocate(self, session: TurnSession) -> StunMessage:
        """Allocate; a server that relays IPv6 only answers 440 to the default (IPv4)."""
        try:
            return session.allocate(deadline=self.deadline)
        except TurnRefusedError as exc:
            if exc.code != _FAMILY_UNSUPPORTED:
                raise
        return session.allocate(deadline=self.deadline, family=6)

    def _echo(self, session: TurnSession, relayed: Address, mapped: Address | None) -> None:
        payload = os.urandom(self.payload_size)
        if self.peer is not None:
            self._echo_through(session, self.peer, payload, own=None)
            return
        family = socket.AF_INET6 if ":" in relayed[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as own:
            own.bind(
                ("::" if family == socket.AF_INET6 else "", 0)
            )  # all interfaces: the relay must reach it
            port = own.getsockname()[1]
            host = mapped[0] if mapped is not None else session.channel.local_address[0]
            self._echo_through(session, (host, port), payload, own=own)

    def _echo_through(
        self,
        session: TurnSession,
        peer: Address,
        payload: bytes,
        *,
        own: socket.socket | None,
    ) -> None:
        try:
            session.create_permission(peer, deadline=self.deadline)
            if self.channel_data:
                session.channel_bind(peer, _CHANNEL, deadline=self.deadline)
        except TurnRefusedError as exc:
            raise _refusal(exc, self.username or "", self.separator, peer) from None
        try:
            if self.channel_data:
                session.send_channel_data(_CHANNEL, payload)
            else:
                session.send_indication(peer, payload)
            if own is not None:  # we are the peer: answer from our socket to the relay
                own.settimeout(max(self.deadline - time.monotonic(), 0.001))
                received, source = own.recvfrom(65_535)
                if received != payload:
                    raise _FailedError(PROTOCOL_ERROR, "the relay delivered other bytes than sent")
                own.sendto(received, source[:2])
            while session.receive_data(deadline=self.deadline)[1] != payload:
                pass  # something else relayed (a late retransmission): keep waiting
        except TimeoutError:
            raise _FailedError(
                RELAY_NO_ECHO,
                f"the allocation works but nothing came back through the relay from "
                f"{_fmt(peer)}: the relay port range (min-port..max-port, UDP) is probably "
                "firewalled, or external-ip is wrong",
            ) from None
        self.found["bytes_echoed"] = len(payload)


def probe_turn_url(
    url: IceURL | str,
    *,
    username: str | None = None,
    credential: str | Secret[str] | None = None,
    timeout: float = 5.0,
    peer: Address | None = None,
    tls_context: ssl.SSLContext | None = None,
    channel_data: bool = False,
    payload_size: int = 100,
    separator: str = ":",
    tracer_provider: TracerProvider | None = None,
) -> ProbeResult:
    """Probe one STUN or TURN URL; never raises for a server problem.

    Args:
        url: ``stun:``, ``stuns:``, ``turn:`` or ``turns:`` URL.
        username: TURN username (static, or TURN REST ``expiry:user``).
        credential: Its password (``str`` or :class:`Secret`; never reported).
        timeout: Seconds for the whole probe of this URL.
        peer: A UDP echo server to relay to; default: the probe answers itself.
        tls_context: For ``stuns:``/``turns:`` (default: system trust store, hostname
            checked, as browsers do).
        channel_data: Relay with ChannelBind + ChannelData instead of Send/Data
            indications.
        payload_size: Bytes sent through the relay and expected back.
        separator: The TURN REST separator, to tell expired credentials from wrong ones.
        tracer_provider: OpenTelemetry tracer provider (``veza-webrtc[otel]``); the
            global one by default. One span per URL, never a credential in it.

    Raises:
        IceURLSyntaxError: ``url`` is not a valid ICE server URL.
    """
    parsed = parse_ice_url(url) if isinstance(url, str) else url
    attributes: dict[str, str | int] = {
        "veza.ice.url": str(parsed),
        "server.address": parsed.host.strip("[]"),
        "server.port": parsed.effective_port,
        "network.transport": "udp" if _transport_of(parsed) == "udp" else "tcp",
        "network.protocol.name": "turn" if parsed.is_turn else "stun",
    }
    with _tracing.span(
        _tracing.tracer(tracer_provider), f"{parsed.scheme} probe", attributes, client=True
    ) as current:
        result = _probe_url(
            parsed,
            url=str(url),
            username=username,
            credential=credential,
            timeout=timeout,
            peer=peer,
            tls_context=tls_context,
            channel_data=channel_data,
            payload_size=payload_size,
            separator=separator,
        )
        if current is not None:
            current.set_attribute("veza.probe.ok", result.ok)
            current.set_attribute("veza.probe.bytes_echoed", result.bytes_echoed)
            if result.rtt_ms is not None:
                current.set_attribute("veza.probe.rtt_ms", result.rtt_ms)
            if result.failure is not None:
                current.set_attribute("error.type", result.failure)
                current.set_status(_tracing.error_status(result.failure))
        return result


def _probe_url(
    parsed: IceURL,
    *,
    url: str,
    username: str | None,
    credential: str | Secret[str] | None,
    timeout: float,
    peer: Address | None,
    tls_context: ssl.SSLContext | None,
    channel_data: bool,
    payload_size: int,
    separator: str,
) -> ProbeResult:
    secret = Secret(credential) if isinstance(credential, str) else credential
    started = time.monotonic()
    probe = _Probe(
        url=parsed,
        username=username,
        credential=secret,
        deadline=started + timeout,
        peer=peer,
        tls_context=tls_context,
        channel_data=channel_data,
        payload_size=payload_size,
        separator=separator,
    )
    failure: _FailedError | None = None
    try:
        probe.run()
    except _FailedError as exc:
        failure = exc
    elapsed = round((time.monotonic() - started) * _MS, 3)
    return ProbeResult(
        url=url,
        transport=_transport_of(parsed),
        failure=failure.code if failure else None,
        diagnosis=failure.diagnosis if failure else None,
        error_code=failure.error_code if failure else None,
        elapsed_ms=elapsed,
        **probe.found,
    )


def probe_ice_servers(
    config: IceServers | IceConfig | Mapping[str, object],
    *,
    timeout: float = 5.0,
    user_id: str | None = "veza-probe",
    peer: Address | None = None,
    tls_context: ssl.SSLContext | None = None,
    channel_data: bool = False,
    separator: str | None = None,
    tracer_provider: TracerProvider | None = None,
) -> list[ProbeResult]:
    """Probe every URL of an ICE configuration, concurrently; results in URL order.

    Args:
        config: :class:`IceServers`, or an :class:`IceConfig` (built here): fresh
            credentials are issued for the probe, as for a browser (ephemeral, static or
            from a hosted source; TURN URLs it leaves out for want of credentials come
            back as ``no_credential`` failures); or an ``RTCConfiguration`` dict
            (``{"iceServers": [...]}``).
        timeout: Seconds for each URL; the call returns within about that.
        user_id: Put into ephemeral usernames (coturn's logs show it).
        peer: A UDP echo server; default: the probe is its own peer.
        tls_context: For ``stuns:``/``turns:`` URLs.
        channel_data: Use ChannelBind + ChannelData.
        separator: The TURN REST separator (default: the config's, or ``:``), to tell
            expired credentials from wrong ones.
        tracer_provider: OpenTelemetry tracer provider (``veza-webrtc[otel]``): one
            ``ice probe`` span with a child span per URL.
    """
    servers_built = config.build() if isinstance(config, IceConfig) else config
    if isinstance(servers_built, IceServers):
        separator = separator or servers_built.config.separator
        rtc: Mapping[str, object] = servers_built.to_rtc_configuration(user_id=user_id)
    else:
        rtc = servers_built
    jobs: list[tuple[str, str | None, str | None]] = []
    servers = rtc.get("iceServers", [])
    for server in servers if isinstance(servers, Sequence) else []:
        if not isinstance(server, Mapping):
            continue
        urls = server.get("urls", [])
        for url in [urls] if isinstance(urls, str) else list(urls or []):
            username, credential = server.get("username"), server.get("credential")
            jobs.append(
                (
                    str(url),
                    str(username) if username is not None else None,
                    str(credential) if credential is not None else None,
                )
            )
    # TURN URLs the half-configuration rule left out (no complete credentials): the
    # browser gets no TURN server, which is exactly what an operator must hear about
    dropped = []
    if (
        isinstance(servers_built, IceServers)
        and servers_built.config.turn_urls
        and not servers_built.has_turn
    ):
        reason = next((w for w in servers_built.warnings if "WEBRTC_TURN_URLS" in w), "")
        dropped = [
            ProbeResult(
                url=str(url),
                transport=_transport_of(url),
                failure=NO_CREDENTIAL,
                diagnosis=f"not offered to browsers: {reason}",
            )
            for url in servers_built.config.turn_urls
        ]
    if not jobs:
        return dropped

    def one(job: tuple[str, str | None, str | None]) -> ProbeResult:
        url, username, credential = job
        try:
            parsed = parse_ice_url(url)
        except IceURLSyntaxError as exc:
            return ProbeResult(url=url, transport="udp", failure=UNSUPPORTED, diagnosis=str(exc))
        return probe_turn_url(
            parsed,
            username=username,
            credential=credential,
            timeout=timeout,
            peer=peer,
            tls_context=tls_context,
            channel_data=channel_data,
            separator=separator or ":",
            tracer_provider=tracer_provider,
        )

    tracer = _tracing.tracer(tracer_provider)
    with (
        _tracing.span(tracer, "ice probe", {"veza.ice.urls": len(jobs)}) as current,
        ThreadPoolExecutor(max_workers=min(len(jobs), 8)) as pool,
    ):
        # each worker thread runs in a copy of this context, so URL spans are children
        contexts = [contextvars.copy_context() for _ in jobs]
        results = [*pool.map(lambda c, job: c.run(one, job), contexts, jobs), *dropped]
        if current is not None:
            current.set_attribute("veza.probe.failed", sum(not r.ok for r in results))
        return results
