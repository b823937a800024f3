"""STUN and TURN messages on the wire, without I/O (RFC 8489, RFC 8656).

Only what a probe needs, but exactly: the 20-byte header with the magic cookie, the
method and class bits interleaved in the message type, attributes padded to four bytes
(padding bytes are ignored on input, whatever they hold, as RFC 8489 section 14 asks),
XOR-encoded addresses, ERROR-CODE, MESSAGE-INTEGRITY (HMAC-SHA1 over the message with
the length field already counting the integrity attribute) and FINGERPRINT (CRC-32 XOR
``0x5354554e``), and TURN's ChannelData framing.

Parsing is strict and total: any byte string either decodes or raises
:class:`StunParseError`; nothing else escapes (a hypothesis property checks this).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import struct
from collections.abc import Iterable

import attrs

from veza_webrtc._errors import WebRTCError

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
HEADER_SIZE = 20
FINGERPRINT_XOR = 0x5354554E

# methods (RFC 8489, RFC 8656)
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

# classes
REQUEST = 0b00
INDICATION = 0b01
SUCCESS = 0b10
ERROR = 0b11

# attributes
MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020
SOFTWARE = 0x8022
FINGERPRINT = 0x8028

UDP_PROTOCOL = 17  # REQUESTED-TRANSPORT: the relay speaks UDP to peers
_INTEGRITY_SIZE = 20
_FAMILY_V4, _FAMILY_V6 = 0x01, 0x02
_MAX_METHOD = 0xFFF
CHANNEL_MIN, CHANNEL_MAX = 0x4000, 0x4FFF

Address = tuple[str, int]


class StunParseError(WebRTCError, ValueError):
    """Bytes that are not a well-formed STUN message (or attribute, or ChannelData)."""


@attrs.frozen
class StunMessage:
    """A decoded STUN message.

    Attributes:
        method: 12-bit method (``BINDING``, ``ALLOCATE``, ...).
        cls: ``REQUEST``, ``INDICATION``, ``SUCCESS`` or ``ERROR``.
        transaction_id: 12 bytes chosen by the requester.
        attributes: ``(type, value)`` pairs in wire order, values without padding.
    """

    method: int
    cls: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()

    def get(self, kind: int) -> bytes | None:
        """The first attribute of this type (RFC 8489: later duplicates are ignored)."""
        for attribute, value in self.attributes:
            if attribute == kind:
                return value
        return None

    def address(self, kind: int) -> Address | None:
        """An XOR-encoded address attribute, decoded; ``None`` when absent."""
        value = self.get(kind)
        return None if value is None else decode_xor_address(value, self.transaction_id)

    def addresses(self, kind: int) -> list[Address]:
        """Every XOR-encoded address attribute of this type, decoded, in wire order.

        An Allocate success may carry one XOR-RELAYED-ADDRESS per address family.
        """
        return [
            decode_xor_address(value, self.transaction_id)
            for attribute, value in self.attributes
            if attribute == kind
        ]

    def error(self) -> tuple[int, str] | None:
        """``(code, reason)`` from ERROR-CODE, or ``None``."""
        value = self.get(ERROR_CODE)
        return None if value is None else decode_error_code(value)

    def text(self, kind: int) -> str | None:
        """A UTF-8 attribute (REALM, NONCE, SOFTWARE); invalid bytes are replaced."""
        value = self.get(kind)
        return None if value is None else value.decode("utf-8", "replace")


def message_type(method: int, cls: int) -> int:
    """The 14-bit message type: method bits M0-M11 with class bits C0, C1 between them."""
    if not 0 <= method <= _MAX_METHOD or not 0 <= cls <= ERROR:
        msg = f"method {method:#x} or class {cls} out of range"
        raise StunParseError(msg)
    return (
        (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((cls & 0b01) << 4)
        | ((cls & 0b10) << 7)
    )


def split_type(kind: int) -> tuple[int, int]:
    """``(method, class)`` of a message type."""
    method = (kind & 0x000F) | ((kind & 0x00E0) >> 1) | ((kind & 0x3E00) >> 2)
    cls = ((kind & 0x0010) >> 4) | ((kind & 0x0100) >> 7)
    return method, cls


def _pad(length: int) -> int:
    return (4 - length % 4) % 4


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\x00" * _pad(len(value))


def encode(
    message: StunMessage, *, integrity_key: bytes | None = None, fingerprint: bool = False
) -> bytes:
    """Serialise ``message``, appending MESSAGE-INTEGRITY and FINGERPRINT when asked.

    Args:
        message: The message; it must not already carry the two trailing attributes.
        integrity_key: The HMAC-SHA1 key (:func:`long_term_key` for TURN).
        fingerprint: Append FINGERPRINT (RFC 8489 section 14.7).
    """
    if len(message.transaction_id) != 12:
        msg = "a transaction id is 12 bytes"
        raise StunParseError(msg)
    body = b"".join(_attribute(kind, value) for kind, value in message.attributes)
    kind = message_type(message.method, message.cls)

    def header(length: int) -> bytes:
        return struct.pack("!HH", kind, length) + _COOKIE_BYTES + message.transaction_id

    if integrity_key is not None:
        # the length field counts the MESSAGE-INTEGRITY attribute (not a FINGERPRINT)
        signed = header(len(body) + 4 + _INTEGRITY_SIZE) + body
        mac = hmac.digest(integrity_key, signed, hashlib.sha1)
        body += _attribute(MESSAGE_INTEGRITY, mac)
    if fingerprint:
        crc = binascii.crc32(header(len(body) + 8) + body) ^ FINGERPRINT_XOR
        body += _attribute(FINGERPRINT, struct.pack("!I", crc))
    return header(len(body)) + body


def _walk(data: bytes) -> Iterable[tuple[int, int, bytes]]:
    """``(offset, type, value)`` for every attribute of a framed message."""
    offset = HEADER_SIZE
    while offset < len(data):
        if offset + 4 > len(data):
            msg = "truncated attribute header"
            raise StunParseError(msg)
        kind, length = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + length
        if end > len(data):
            msg = f"attribute {kind:#06x} runs past the end of the message"
            raise StunParseError(msg)
        yield offset, kind, data[offset + 4 : end]
        offset = end + _pad(length)
    if offset != len(data):
        msg = "attribute padding runs past the end of the message"
        raise StunParseError(msg)


def is_stun(data: bytes) -> bool:
    """Whether ``data`` starts like a STUN message (top bits 00 and the magic cookie)."""
    return len(data) >= HEADER_SIZE and data[0] < 0x40 and data[4:8] == _COOKIE_BYTES


def decode(data: bytes) -> StunMessage:
    """Parse one complete STUN message.

    Raises:
        StunParseError: Not STUN, a length that disagrees with the bytes, a truncated
            or overlong attribute.
    """
    if len(data) < HEADER_SIZE:
        msg = f"{len(data)} bytes is shorter than a STUN header"
        raise StunParseError(msg)
    kind, length = struct.unpack_from("!HH", data)
    if kind & 0xC000:
        msg = "the two top bits of a STUN message are zero"
        raise StunParseError(msg)
    if data[4:8] != _COOKIE_BYTES:
        msg = "no magic cookie: not an RFC 5389/8489 STUN message"
        raise StunParseError(msg)
    if length % 4 or HEADER_SIZE + length != len(data):
        msg = f"the header says {length} bytes of attributes, {len(data) - HEADER_SIZE} follow"
        raise StunParseError(msg)
    method, cls = split_type(kind)
    attributes = tuple((attribute, value) for _, attribute, value in _walk(data))
    return StunMessage(method=method, cls=cls, transaction_id=data[8:20], attributes=attributes)


def _offset_of(data: bytes, kind: int) -> int | None:
    for offset, attribute, _ in _walk(data):
        if attribute == kind:
            return offset
    return None


def verify_integrity(data: bytes, key: bytes) -> bool:
    """Whether ``data`` carries a MESSAGE-INTEGRITY valid under ``key`` (constant time).

    Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as the RFC
    requires; the length field is rewritten to end at the integrity attribute.
    """
    try:
        decode(data)
        offset = _offset_of(data, MESSAGE_INTEGRITY)
    except StunParseError:
        return False
    if offset is None:
        return False
    value = data[offset + 4 : offset + 4 + _INTEGRITY_SIZE]
    if len(value) != _INTEGRITY_SIZE:
        return False
    length = offset + 4 + _INTEGRITY_SIZE - HEADER_SIZE
    signed = data[:2] + struct.pack("!H", length) + data[4:offset]
    return hmac.compare_digest(hmac.digest(key, signed, hashlib.sha1), value)


def verify_fingerprint(data: bytes) -> bool:
    """Whether ``data`` ends with a correct FINGERPRINT attribute."""
    try:
        decode(data)
        offset = _offset_of(data, FINGERPRINT)
    except StunParseError:
        return False
    if offset is None or offset + 8 != len(data):
        return False
    (given,) = struct.unpack_from("!I", data, offset + 4)
    return bool(given == binascii.crc32(data[:offset]) ^ FINGERPRINT_XOR)


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 9.2.2: ``MD5(username ":" realm ":" password)``.

    The strings are used as given (OpaqueString preparation leaves the ASCII
    credentials TURN REST and coturn use unchanged).
    """
    text = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(text, usedforsecurity=False).digest()


def encode_xor_address(address: Address, transaction_id: bytes) -> bytes:
    """XOR-MAPPED/PEER/RELAYED-ADDRESS value for ``(ip, port)``."""
    host, port = address
    ip = ipaddress.ip_address(host)
    xport = port ^ (MAGIC_COOKIE >> 16)
    if ip.version == 4:
        packed = (int(ip) ^ MAGIC_COOKIE).to_bytes(4, "big")
        return struct.pack("!BBH", 0, _FAMILY_V4, xport) + packed
    mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
    return struct.pack("!BBH", 0, _FAMILY_V6, xport) + (int(ip) ^ mask).to_bytes(16, "big")


def decode_xor_address(value: bytes, transaction_id: bytes) -> Address:
    """``(ip, port)`` from an XOR-encoded address value.

    Raises:
        StunParseError: An unknown family or a wrong length.
    """
    if len(value) < 4:
        msg = "an address attribute is at least 4 bytes"
        raise StunParseError(msg)
    _, family, xport = struct.unpack_from("!BBH", value)
    port = xport ^ (MAGIC_COOKIE >> 16)
    if family == _FAMILY_V4 and len(value) == 8:
        number = int.from_bytes(value[4:8], "big") ^ MAGIC_COOKIE
        return str(ipaddress.IPv4Address(number)), port
    if family == _FAMILY_V6 and len(value) == 20:
        mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
        number = int.from_bytes(value[4:20], "big") ^ mask
        return str(ipaddress.IPv6Address(number)), port
    msg = f"address family {family} with {len(value)} bytes"
    raise StunParseError(msg)


def encode_error_code(code: int, reason: str) -> bytes:
    """ERROR-CODE value: class (hundreds) and number, then a UTF-8 reason."""
    if not 300 <= code <= 699:
        msg = f"error code {code} is outside 300-699"
        raise StunParseError(msg)
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


def decode_error_code(value: bytes) -> tuple[int, str]:
    """``(code, reason)`` from an ERROR-CODE value."""
    if len(value) < 4:
        msg = "ERROR-CODE is at least 4 bytes"
        raise StunParseError(msg)
    klass, number = value[2] & 0x07, value[3]
    # some servers (coturn) count padding NULs into the reason phrase
    return klass * 100 + number, value[4:].decode("utf-8", "replace").rstrip("\x00")


def encode_channel_data(channel: int, payload: bytes, *, pad: bool) -> bytes:
    """A ChannelData message; ``pad`` to four bytes over TCP and TLS (RFC 8656 12.5)."""
    if not CHANNEL_MIN <= channel <= CHANNEL_MAX:
        msg = f"channel numbers are 0x4000-0x4FFF, got {channel:#x}"
        raise StunParseError(msg)
    framed = struct.pack("!HH", channel, len(payload)) + payload
    return framed + b"\x00" * (_pad(len(payload)) if pad else 0)


def decode_channel_data(data: bytes) -> tuple[int, bytes]:
    """``(channel, payload)`` of a ChannelData message (trailing padding ignored)."""
    if len(data) < 4:
        msg = "ChannelData is at least 4 bytes"
        raise StunParseError(msg)
    channel, length = struct.unpack_from("!HH", data)
    if not CHANNEL_MIN <= channel <= CHANNEL_MAX or 4 + length > len(data):
        msg = "not a ChannelData message"
        raise StunParseError(msg)
    return channel, data[4 : 4 + length]


def frame_length(head: bytes) -> int:
    """Total bytes of the STUN or ChannelData frame starting with these 4 bytes (TCP/TLS).

    Raises:
        StunParseError: Neither STUN (top bits 00) nor ChannelData (top bits 01).
    """
    if len(head) < 4:
        msg = "a frame header is 4 bytes"
        raise StunParseError(msg)
    first, length = (int(v) for v in struct.unpack_from("!HH", head))
    if first < CHANNEL_MIN:
        return HEADER_SIZE + length
    if first <= CHANNEL_MAX:
        return 4 + length + _pad(length)
    msg = "a stream frame starts with STUN or ChannelData"
    raise StunParseError(msg)
