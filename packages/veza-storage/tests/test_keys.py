"""One key space: a hostile corpus refused identically by both backends, and a fuzzed validator."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veza_storage import InvalidKeyError, validate_key

TRAVERSAL = [
    "..",
    ".",
    "../etc/passwd",
    "a/../b",
    "a/./b",
    "a/..",
    "./a",
    "a/.",
    "../../../../root",
    "tracks/../../secret",
    "..a/../b",
]
ENCODED = [
    "%2e%2e/etc",
    "%2E%2E/etc",
    "a/%2e%2e/b",
    "%2e/a",
    "a%2fb",
    "a%2Fb",
    "a%5cb",
    "a%5Cb",
    "a%00b",
    "%252e%252e/x",
    "%25252e%25252e/x",
    "..%2fx",
    "%2e%2e%2f%2e%2e",
    "x/%2e",
]
SEPARATORS = [
    "/abs",
    "//abs",
    "a//b",
    "a/",
    "a\\b",
    "..\\..\\windows",
    "C:\\boot.ini",
    "\\\\server\\share",
    "a/b/",
    "/",
]
CONTROL = [
    "a\x00b",
    "nul\x00",
    "\x00",
    "a\nb",
    "a\rb",
    "a\tb",
    "\x1b[31mred",
    "a\x7fb",
    "a\x01",
    "a\x1f",
    "a\x85b",
    "a\x9fb",
    "bell\x07",
]
FORMAT = ["a\u200bb", "a\u200db", "a\u202eexe.mp3", "a\ufeffb", "a\u2066b", "\u200e"]
LOOKALIKE = [
    "a\u2215b",
    "a\u2044b",
    "a\uff0fb",
    "a\u29f8b",
    "a\uff3cb",
    "a\u2216b",
    "\u2024\u2024",
    "\uff0e\uff0e/x",
    "x/\uff0e\uff0e",
    "\ufe52\ufe52",
    "a\u2571b",
    "\u3002\u3002",
]
WINDOWS = [
    "CON",
    "con",
    "Con.mp3",
    "Con.mp3:stream",
    "PRN",
    "AUX.txt",
    "NUL",
    "nul.tar.gz",
    "COM1",
    "com9.log",
    "LPT1",
    "lpt9",
    "a/CON",
    "a/prn.mp3/b",
    "COM\u00b9",
    "CONIN$",
    "conout$.txt",
    "CON .mp3",
]
TRAILING = ["a.", "a ", "dir./x", "dir /x", "x/y.", "..."]
RESERVED = [".veza-tmp-123", "a/.veza-uploads/x", ".VEZA-x", ".veza-"]
OVERLONG = ["a" * 256, "x/" + "b" * 256, "/".join(["seg"] * 300), "é" * 128 + "x", "a" * 1025]
UNICODE = ["e\u0301", "cafe\u0301.mp3", "A\u030a", "\ud800", "x\udfff"]
EMPTY = [""]
# drive letters: absolute, drive-relative, with either separator, at any depth
DRIVES = [
    "C:/evil",
    "c:/evil",
    "C:evil",
    "c:x",
    "Z:",
    "d:/",
    "a/C:/evil",
    "tracks/c:",
    "E:/tracks/x.mp3",
    "C:/Windows/System32/drivers/etc/hosts",
    "c:\\x",
    "C:\\evil",
] + [f"{letter}:/x" for letter in "ABDFGHIJKLMNOPQRSTUVWXYabdfghijklmnopqrstuvwxy"]
# every reserved device name, in several cases, with extensions and stream suffixes
DEVICES = [
    variant
    for name in ("CON", "PRN", "AUX", "NUL", "COM1", "COM5", "LPT1", "LPT3", "COM0", "LPT9")
    for variant in (f"x/{name.lower()}", f"{name}.mp3", f"t/{name.capitalize()}.tar.gz", f"{name}:")
]

CORPUS = (
    TRAVERSAL
    + ENCODED
    + SEPARATORS
    + CONTROL
    + FORMAT
    + LOOKALIKE
    + WINDOWS
    + TRAILING
    + RESERVED
    + OVERLONG
    + UNICODE
    + EMPTY
    + DRIVES
    + DEVICES
)


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("key", CORPUS, ids=lambda k: repr(k)[:40])
def test_validator_refuses(key):
    with pytest.raises(InvalidKeyError):
        validate_key(key)


@pytest.mark.parametrize("key", CORPUS, ids=lambda k: repr(k)[:40])
def test_both_backends_refuse_identically_and_write_nothing(storage, key):
    for attempt in (
        lambda: storage.put(key, b"x", content_type="text/plain"),
        lambda: storage.stat(key),
        lambda: storage.open(key),
        lambda: storage.delete(key),
        lambda: storage.presign_get(key, expires_in=60),
    ):
        with pytest.raises(InvalidKeyError):
            attempt()
    assert list(storage.list()) == []


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "tracks/2026/11/8f3a9c1e.mp3",
        "Ünïcödé/トラック.flac",
        "a.b.c",
        "v1.0/x_y-z~",
        "spaces are fine/x y.mp3",
        "%41",
        "100%/x",
        "UPPER/lower",
        "CONSOLE",
        "NULL",
        "COM10",
        ".hidden",
        "..hidden",
        "a" * 255,
        "/".join(["s" * 200] * 5),
    ],
)
def test_ordinary_keys_pass_unchanged(key):
    assert validate_key(key) == key


def test_keys_are_case_sensitive_on_both_backends(storage):
    storage.put("Track.mp3", b"upper", content_type="audio/mpeg")
    storage.put("track.mp3", b"lower", content_type="audio/mpeg")
    with storage.open("Track.mp3") as a, storage.open("track.mp3") as b:
        assert (a.read(), b.read()) == (b"upper", b"lower")


@given(st.text(max_size=80))
def test_validator_fuzz(key):
    try:
        result = validate_key(key)
    except InvalidKeyError:
        return
    assert result == key
    segments = key.split("/")
    assert all(s and s not in (".", "..") for s in segments)
    assert all(unicodedata.normalize("NFKC", s) not in (".", "..") for s in segments)
    assert "\\" not in key
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in key)
    assert len(key.encode()) <= 1024
