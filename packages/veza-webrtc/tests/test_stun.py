"""The STUN codec: RFC 5769's published vectors, then hypothesis properties.

The vectors are RFC 5769 sections 2.1-2.3 (short-term password
``VOkJxbRl1RmTxUk/WvJxBt``); their padding bytes are 0x20 on purpose, which a decoder
must ignore.
"""

import binascii
import contextlib
import struct

import pytest
from hypothesis import given, settings, strategies as st

from veza_webrtc._stun import (
    BINDING,
    DATA_ATTR,
    ERROR,
    FINGERPRINT,
    INDICATION,
    MESSAGE_INTEGRITY,
    REQUEST,
    SOFTWARE,
    SUCCESS,
    USERNAME,
    XOR_MAPPED_ADDRESS,
    XOR_PEER_ADDRESS,
    StunMessage,
    StunParseError,
    decode,
    decode_channel_data,
    decode_error_code,
    decode_xor_address,
    encode,
    encode_channel_data,
    encode_error_code,
    encode_xor_address,
    frame_length,
    long_term_key,
    message_type,
    split_type,
    verify_fingerprint,
    verify_integrity,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
TRANSACTION = h("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae")
SAMPLE_REQUEST = h("""
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf""")
SAMPLE_IPV4 = h("""
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96""")
SAMPLE_IPV6 = h("""
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c""")


def test_rfc5769_sample_request():
    message = decode(SAMPLE_REQUEST)
    assert (message.method, message.cls) == (BINDING, REQUEST)
    assert message.transaction_id == TRANSACTION
    assert message.get(USERNAME) == b"evtj:h6vY"
    assert message.get(SOFTWARE) == b"STUN test client"
    assert verify_integrity(SAMPLE_REQUEST, PASSWORD)
    assert verify_fingerprint(SAMPLE_REQUEST)
    assert not verify_integrity(SAMPLE_REQUEST, PASSWORD + b"x")


@pytest.mark.parametrize(
    ("data", "address"),
    [
        (SAMPLE_IPV4, ("192.0.2.1", 32853)),
        (SAMPLE_IPV6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_rfc5769_sample_responses(data, address):
    message = decode(data)
    assert (message.method, message.cls) == (BINDING, SUCCESS)
    assert message.address(XOR_MAPPED_ADDRESS) == address
    assert encode_xor_address(address, TRANSACTION) == message.get(XOR_MAPPED_ADDRESS)
    assert verify_integrity(data, PASSWORD)
    assert verify_fingerprint(data)
    # rebuilt from its parts it verifies the same (our padding is zeros, theirs spaces)
    parts = tuple(
        (k, v) for k, v in message.attributes if k not in (MESSAGE_INTEGRITY, FINGERPRINT)
    )
    rebuilt = encode(
        StunMessage(message.method, message.cls, message.transaction_id, parts),
        integrity_key=PASSWORD,
        fingerprint=True,
    )
    assert rebuilt[-32:-8] == data[-32:-8] or verify_integrity(rebuilt, PASSWORD)
    assert decode(rebuilt).address(XOR_MAPPED_ADDRESS) == address


def test_message_type_bits_match_the_rfc_table():
    assert message_type(BINDING, REQUEST) == 0x0001
    assert message_type(BINDING, SUCCESS) == 0x0101
    assert message_type(BINDING, ERROR) == 0x0111
    assert message_type(0x003, REQUEST) == 0x0003  # Allocate
    assert message_type(0x006, INDICATION) == 0x0016  # Send indication
    assert message_type(0x007, INDICATION) == 0x0017  # Data indication


def test_long_term_key_is_md5_of_user_realm_password():
    assert long_term_key("user", "realm", "pass").hex() == "8493fbc53ba582fb4c044c456bdc40eb"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 19,
        b"\xc0" + SAMPLE_REQUEST[1:],  # top bits set
        SAMPLE_REQUEST[:4] + b"\x00\x00\x00\x00" + SAMPLE_REQUEST[8:],  # no cookie
        SAMPLE_REQUEST[:-1],  # length mismatch
        SAMPLE_REQUEST[:2] + b"\x00\x59" + SAMPLE_REQUEST[4:],  # not a multiple of 4
        SAMPLE_REQUEST[:2] + b"\x00\x04" + SAMPLE_REQUEST[4:20] + b"\x00\x01\x00\x08",
    ],
)
def test_malformed_messages_are_refused(data):
    with pytest.raises(StunParseError):
        decode(data)
    assert not verify_integrity(data, PASSWORD)
    assert not verify_fingerprint(data)


# ------------------------------------------------------------------ properties

transaction_ids = st.binary(min_size=12, max_size=12)
attribute_types = st.integers(0, 0xFFFF).filter(lambda t: t not in (0x0008, 0x8028))
attributes = st.lists(st.tuples(attribute_types, st.binary(max_size=64)), max_size=8)
messages = st.builds(
    StunMessage,
    method=st.integers(0, 0xFFF),
    cls=st.sampled_from([REQUEST, INDICATION, SUCCESS, ERROR]),
    transaction_id=transaction_ids,
    attributes=attributes.map(tuple),
)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@settings(max_examples=100)
@given(messages)
def test_encode_decode_round_trip(message):
    assert decode(encode(message)) == message


@settings(max_examples=100)
@given(messages, st.binary(min_size=1, max_size=32), st.booleans())
def test_integrity_and_fingerprint_verify_and_round_trip(message, key, fingerprint):
    data = encode(message, integrity_key=key, fingerprint=fingerprint)
    assert verify_integrity(data, key)
    assert verify_fingerprint(data) is fingerprint
    decoded = decode(data)
    assert decoded.attributes[: len(message.attributes)] == message.attributes
    assert decoded.get(MESSAGE_INTEGRITY) is not None


@settings(max_examples=100)
@given(messages, st.binary(min_size=1, max_size=32), st.data())
def test_any_flipped_bit_breaks_integrity_or_framing(message, key, data):
    encoded = encode(message, integrity_key=key, fingerprint=True)
    position = data.draw(st.integers(0, len(encoded) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(encoded)
    flipped[position] ^= 1 << bit
    flipped_bytes = bytes(flipped)
    # the MAC covers everything before it; the CRC covers everything before itself
    assert not (verify_integrity(flipped_bytes, key) and verify_fingerprint(flipped_bytes))


@settings(max_examples=100)
@given(messages, st.binary(min_size=1, max_size=32), st.binary(min_size=1, max_size=32))
def test_integrity_fails_under_another_key(message, key, other):
    if key.rstrip(b"\0") == other.rstrip(b"\0"):
        return  # HMAC pads keys with zeros: these two are the same key
    assert not verify_integrity(encode(message, integrity_key=key), other)


@settings(max_examples=100)
@given(st.one_of(ipv4, ipv6), ports, transaction_ids)
def test_xor_address_round_trip(host, port, transaction):
    value = encode_xor_address((host, port), transaction)
    assert decode_xor_address(value, transaction) == (host, port)
    # the XOR hides the address: a v4 address never appears in clear
    if ":" not in host and port != 0x2112:
        assert struct.pack("!H", port) != value[2:4]


@settings(max_examples=100)
@given(st.one_of(ipv4, ipv6), ports, transaction_ids)
def test_xor_address_survives_a_whole_message(host, port, transaction):
    message = StunMessage(
        0x006,
        INDICATION,
        transaction,
        ((XOR_PEER_ADDRESS, encode_xor_address((host, port), transaction)), (DATA_ATTR, b"x")),
    )
    assert decode(encode(message, fingerprint=True)).address(XOR_PEER_ADDRESS) == (host, port)


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_the_decoder_is_total(data):
    with contextlib.suppress(StunParseError):  # anything else would fail the test
        decode(data)
    verify_integrity(data, b"k")
    verify_fingerprint(data)


@settings(max_examples=100)
@given(
    st.integers(300, 699),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
)
def test_error_code_round_trip(code, reason):
    # NUL is no reason-phrase text: trailing NULs are padding some servers count in
    assert decode_error_code(encode_error_code(code, reason)) == (code, reason)


@settings(max_examples=100)
@given(st.integers(0x4000, 0x4FFF), st.binary(max_size=100), st.booleans())
def test_channel_data_round_trip_and_stream_framing(channel, payload, pad):
    framed = encode_channel_data(channel, payload, pad=pad)
    assert decode_channel_data(framed) == (channel, payload)
    if pad:
        assert len(framed) % 4 == 0
        assert frame_length(framed[:4]) == len(framed)


@settings(max_examples=100)
@given(messages)
def test_stream_framing_of_stun_messages(message):
    encoded = encode(message)
    assert frame_length(encoded[:4]) == len(encoded)


@given(st.integers(0, 0x3FFF))
def test_message_type_split_is_the_inverse(kind):
    method, cls = split_type(kind)
    assert message_type(method, cls) == kind


def test_fingerprint_is_crc32_xor_stun():
    data = encode(StunMessage(BINDING, REQUEST, bytes(12)), fingerprint=True)
    (value,) = struct.unpack("!I", data[-4:])
    assert value == binascii.crc32(data[:-8]) ^ 0x5354554E


def test_error_reason_padding_nuls_are_dropped():
    # coturn 4.6.1 counts the padding into the reason phrase of its 440 answer
    value = struct.pack("!HBB", 0, 4, 40) + b"Unsupported address family\x00\x00"
    assert decode_error_code(value) == (440, "Unsupported address family")


UNSPECIFIED = ("0.0.0.0", 0)  # noqa: S104 - an address value, nothing binds to it


def test_every_relayed_address_of_an_allocate_success():
    transaction = bytes(range(12))
    attributes = tuple(
        (0x0016, encode_xor_address(address, transaction))
        for address in (UNSPECIFIED, ("::1", 50000))
    )
    message = decode(encode(StunMessage(0x003, SUCCESS, transaction, attributes)))
    assert message.addresses(0x0016) == [UNSPECIFIED, ("::1", 50000)]
    assert message.address(0x0016) == UNSPECIFIED
