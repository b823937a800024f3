"""Test helpers for integrators: a hostile object-key corpus.

``from veza_storage.testing import hostile_keys``. Every key in it must be refused
(``InvalidKeyError``) by any storage backend before it touches a file or a bucket:
traversal in every spelling, encoded and look-alike separators, control and format
characters, Windows device names and drive letters, trailing dots and spaces, veza's
reserved names, overlong keys, lone surrogates and the empty key. veza refuses all of
them identically on local disk and S3; run the list through your own backend or
upload route to prove the same. Standard library only.
"""

from __future__ import annotations

__all__ = ["hostile_keys"]

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

_CORPUS = (
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


def hostile_keys() -> list[str]:
    """Over 200 object keys every backend must refuse (a fresh list each call)."""
    return list(_CORPUS)
