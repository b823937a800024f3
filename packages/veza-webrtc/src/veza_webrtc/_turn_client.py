"""A minimal TURN client session (RFC 8656) over a :class:`Channel`: what the probe drives.

Requests are retransmitted over UDP with RFC 8489's doubling RTO (500 ms, 1 s, 2 s ...)
until the deadline; over TCP and TLS they are sent once. Long-term credentials follow
RFC 8489 section 9.2: the first request goes without them, the server's 401 gives the
REALM and NONCE, and each later request carries USERNAME, REALM, NONCE and
MESSAGE-INTEGRITY. A 438 (Stale Nonce) answer carries a new NONCE: the request is sent
again with it, once. Responses that carry MESSAGE-INTEGRITY are checked with the same
key, so a spoofed success cannot make a broken server look healthy.
"""

from __future__ import annotations

import os
import time
from collections import deque

from veza_webrtc._secret import Secret
from veza_webrtc._stun import (
    ALLOCATE,
    BINDING,
    CHANNEL_BIND,
    CHANNEL_MAX,
    CHANNEL_MIN,
    CHANNEL_NUMBER,
    CREATE_PERMISSION,
    DATA,
    DATA_ATTR,
    ERROR,
    INDICATION,
    LIFETIME,
    MESSAGE_INTEGRITY,
    NONCE,
    REALM,
    REFRESH,
    REQUEST,
    REQUESTED_ADDRESS_FAMILY,
    REQUESTED_TRANSPORT,
    SEND,
    SOFTWARE,
    SUCCESS,
    UDP_PROTOCOL,
    USERNAME,
    XOR_PEER_ADDRESS,
    Address,
    StunMessage,
    StunParseError,
    decode,
    decode_channel_data,
    encode,
    encode_channel_data,
    encode_xor_address,
    is_stun,
    long_term_key,
    verify_integrity,
)
from veza_webrtc._transport import Channel
from veza_webrtc._version import __version__

_FIRST_RTO = 0.5
_UNAUTHORIZED = 401
_STALE_NONCE = 438
_SOFTWARE = f"veza-webrtc probe {__version__}".encode()


class TurnRefusedError(Exception):
    """The server answered a request with an error response.

    Attributes:
        method: The STUN method of the refused request.
        code: The ERROR-CODE (401, 403, 438, 486, ...).
        reason: The server's reason phrase.
        authenticated: Whether the refused request carried credentials.
    """

    def __init__(self, method: int, code: int, reason: str, *, authenticated: bool) -> None:
        self.method, self.code, self.reason = method, code, reason
        self.authenticated = authenticated
        super().__init__(f"error {code} {reason}")


class IntegrityError(Exception):
    """A response's MESSAGE-INTEGRITY did not verify under our key."""


class TurnSession:
    """One client of one TURN server over one channel.

    Args:
        channel: The connection.
        username: Long-term (or TURN REST) username; ``None`` for Binding only.
        password: Its password.
    """

    def __init__(
        self,
        channel: Channel,
        *,
        username: str | None = None,
        password: Secret[str] | None = None,
    ) -> None:
        self.channel = channel
        self._username = username
        self._password = password
        self.realm: str | None = None
        self.nonce: str | None = None
        self.stale_nonce_retries = 0
        self.pending: deque[tuple[Address | int, bytes]] = deque()
        self._key: bytes | None = None

    # -- requests -----------------------------------------------------------------

    def transact(
        self,
        method: int,
        attributes: list[tuple[int, bytes]],
        *,
        deadline: float,
        peer: Address | None = None,
    ) -> StunMessage:
        """Send a request, handling the 401/438 credential exchange; return the success.

        ``peer`` becomes an XOR-PEER-ADDRESS, encoded per transaction (an IPv6 address
        is masked with the transaction id).

        Raises:
            TurnRefusedError: A final error response.
            IntegrityError: A response forged or signed with another key.
            TimeoutError: No answer before ``deadline``.
        """
        authenticated = method != BINDING and self._key is not None
        stale_retried = False
        while True:
            response = self._round_trip(
                method, attributes, deadline, signed=authenticated, peer=peer
            )
            if response.cls == SUCCESS:
                return response
            code, reason = response.error() or (0, "error response without ERROR-CODE")
            if code == _UNAUTHORIZED and not authenticated and self._can_authenticate():
                self._learn(response)
                authenticated = True
                continue
            if code == _STALE_NONCE and authenticated and not stale_retried:
                self._learn(response)
                self.stale_nonce_retries += 1
                stale_retried = True
                continue
            raise TurnRefusedError(method, code, reason, authenticated=authenticated)

    def _can_authenticate(self) -> bool:
        return self._username is not None and self._password is not None

    def _learn(self, response: StunMessage) -> None:
        realm, nonce = response.text(REALM), response.text(NONCE)
        if nonce is None or (realm is None and self.realm is None):
            msg = "a 401/438 answer without REALM and NONCE"
            raise StunParseError(msg)
        self.realm = realm = realm or self.realm
        self.nonce = nonce
        if self._username is None or self._password is None or realm is None:
            msg = "credentials learned without a username and password (a bug in the caller)"
            raise RuntimeError(msg)
        self._key = long_term_key(self._username, realm, self._password.reveal())

    def _round_trip(
        self,
        method: int,
        attributes: list[tuple[int, bytes]],
        deadline: float,
        *,
        signed: bool,
        peer: Address | None,
    ) -> StunMessage:
        transaction = os.urandom(12)
        extra: list[tuple[int, bytes]] = [(SOFTWARE, _SOFTWARE)]
        if peer is not None:
            extra.insert(0, (XOR_PEER_ADDRESS, encode_xor_address(peer, transaction)))
        if signed:
            username, realm, nonce = self._username, self.realm, self.nonce
            if username is None or realm is None or nonce is None:
                msg = "a signed request before the server's realm and nonce were learned"
                raise RuntimeError(msg)
            extra += [
                (USERNAME, username.encode()),
                (REALM, realm.encode()),
                (NONCE, nonce.encode()),
            ]
        message = StunMessage(method, REQUEST, transaction, (*attributes, *extra))
        frame = encode(message, integrity_key=self._key if signed else None, fingerprint=True)
        rto = _FIRST_RTO
        self.channel.send(frame)
        next_send = time.monotonic() + rto
        while True:
            wait_until = min(deadline, next_send) if self.channel.transport == "udp" else deadline
            try:
                data = self.channel.receive(wait_until)
            except TimeoutError:
                if time.monotonic() >= deadline or self.channel.transport != "udp":
                    raise
                rto *= 2
                self.channel.send(frame)
                next_send = time.monotonic() + rto
                continue
            response = self._dispatch(data, transaction)
            if response is None:
                continue
            forged = (
                signed
                and self._key is not None
                and response.get(MESSAGE_INTEGRITY) is not None
                and not verify_integrity(data, self._key)
            )
            if forged:
                msg = "a response's MESSAGE-INTEGRITY does not verify"
                raise IntegrityError(msg)
            return response

    def _dispatch(self, data: bytes, transaction: bytes) -> StunMessage | None:
        """The response to ``transaction``; queue relayed data, drop anything else."""
        if not is_stun(data):
            try:
                number, relayed = decode_channel_data(data)
            except StunParseError:
                return None
            self.pending.append((number, relayed))
            return None
        try:
            message = decode(data)
        except StunParseError:
            return None  # RFC 8489: silently discard malformed messages
        if message.method == DATA and message.cls == INDICATION:
            peer = message.address(XOR_PEER_ADDRESS)
            payload = message.get(DATA_ATTR)
            if peer is not None and payload is not None:
                self.pending.append((peer, payload))
            return None
        if message.transaction_id != transaction or message.cls not in (SUCCESS, ERROR):
            return None
        return message

    # -- TURN ---------------------------------------------------------------------

    def binding(self, *, deadline: float) -> StunMessage:
        """A Binding request (no credentials): reachability and the mapped address."""
        return self.transact(BINDING, [], deadline=deadline)

    def allocate(self, *, deadline: float, family: int | None = None) -> StunMessage:
        """Allocate a UDP relay (REQUESTED-TRANSPORT 17).

        Args:
            deadline: ``time.monotonic()`` value to give up at.
            family: 4 or 6 for REQUESTED-ADDRESS-FAMILY (RFC 8656 section 14.8); without
                it the server relays IPv4.
        """
        attributes = [(REQUESTED_TRANSPORT, bytes([UDP_PROTOCOL, 0, 0, 0]))]
        if family is not None:
            attributes.append((REQUESTED_ADDRESS_FAMILY, bytes([1 if family == 4 else 2, 0, 0, 0])))
        return self.transact(ALLOCATE, attributes, deadline=deadline)

    def create_permission(self, peer: Address, *, deadline: float) -> StunMessage:
        """Let ``peer``'s IP send to (and be sent to through) the relay."""
        return self.transact(CREATE_PERMISSION, [], deadline=deadline, peer=peer)

    def channel_bind(self, peer: Address, channel: int, *, deadline: float) -> StunMessage:
        """Bind ``channel`` (0x4000-0x4FFF) to ``peer``."""
        if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
            msg = f"channel numbers are 0x4000-0x4FFF, got {channel:#x}"
            raise StunParseError(msg)
        number = [(CHANNEL_NUMBER, channel.to_bytes(2, "big") + b"\x00\x00")]
        return self.transact(CHANNEL_BIND, number, deadline=deadline, peer=peer)

    def send_indication(self, peer: Address, payload: bytes) -> None:
        """Send ``payload`` to ``peer`` through the relay (no answer is expected)."""
        transaction = os.urandom(12)
        message = StunMessage(
            SEND,
            INDICATION,
            transaction,
            (
                (XOR_PEER_ADDRESS, encode_xor_address(peer, transaction)),
                (DATA_ATTR, payload),
            ),
        )
        self.channel.send(encode(message, fingerprint=True))

    def send_channel_data(self, channel: int, payload: bytes) -> None:
        """Send ``payload`` on a bound channel."""
        self.channel.send(
            encode_channel_data(channel, payload, pad=self.channel.transport != "udp")
        )

    def receive_data(self, *, deadline: float) -> tuple[Address | int, bytes]:
        """The next relayed payload: ``(peer, bytes)`` or ``(channel, bytes)``."""
        while not self.pending:
            self._dispatch(self.channel.receive(deadline), b"")
        return self.pending.popleft()

    def refresh(self, lifetime: int, *, deadline: float) -> StunMessage:
        """Refresh the allocation; ``lifetime=0`` releases it."""
        return self.transact(REFRESH, [(LIFETIME, lifetime.to_bytes(4, "big"))], deadline=deadline)
