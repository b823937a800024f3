r"""The one key space both backends accept, enforced by one validator.

A key is a ``/``-separated path of segments. Refused, identically on local disk and S3:

* empty keys, a leading ``/``, empty segments (``a//b``, a trailing ``/``), ``.`` and
  ``..`` segments, and a backslash anywhere (a separator on Windows);
* C0 controls, DEL and C1 controls, Unicode format characters (zero-width, bidi
  overrides) and lone surrogates;
* percent-encoded traversal: ``%2e``, ``%2f``, ``%5c`` and ``%00`` in any case, also
  double-encoded (``%252e``), because some layer (a proxy, a framework) will decode it;
* look-alikes of ``/``, ``\\`` and ``.`` (``∕ ⁄ ／ ⧸ ＼ ∖ ․ ．`` ...) and any segment whose
  NFKC form is ``.`` or ``..``;
* keys not in Unicode NFC (an NFD ``é`` would alias its NFC twin on some filesystems);
* Windows drive letters (``C:/evil``, ``c:x``, a segment ``D:`` anywhere: Windows joins
  ``root`` and ``a/C:/x`` into the drive-relative ``C:x``);
* Windows reserved device names (``CON``, ``NUL``, ``COM1`` ...) with or without an
  extension or a stream suffix (``nul.txt``, ``CON:``), and segments ending in ``.`` or a
  space (Windows strips them);
* the reserved segment prefix ``.veza-`` (staging, temporary files);
* more than 1,024 UTF-8 bytes in total or 255 in one segment.

Keys are case-sensitive and never rewritten: the key you store is the key you get back.
"""

from __future__ import annotations

import re
import unicodedata
from typing import cast
from urllib.parse import unquote

from veza_storage._errors import InvalidKeyError

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_PREFIX = ".veza-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ENCODED = re.compile(r"%(?:2e|2f|5c|00)", re.IGNORECASE)
_LOOKALIKES = frozenset(
    "\u2215\u2044\uff0f\u29f8\u2571\u1735\u2cc6"  # slashes
    "\uff3c\u2216\ufe68\u29f9\u2572"  # backslashes
    "\u2024\uff0e\ufe52\u3002\uff61\u0701\u0702"  # dots
)
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{name}{n}" for name in ("COM", "LPT") for n in "0123456789¹²³"]
)


_DRIVE = re.compile(r"^[A-Za-z]:")
_STEM_END = re.compile(r"[.:]")
_SHOWN = 80  # characters of a refused key quoted in the error


def _fail(key: object, reason: str) -> InvalidKeyError:
    shown = repr(key) if len(repr(key)) <= _SHOWN else repr(key)[: _SHOWN - 3] + "..."
    return InvalidKeyError(f"invalid storage key {shown}: {reason}")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if both backends accept it.

    Raises:
        InvalidKeyError: Why not, quoting (a truncation of) the key.
    """
    if not isinstance(cast("object", key), str) or not key:  # untyped callers pass anything
        raise _fail(key, "keys are non-empty strings")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(key, "lone surrogates are not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise _fail(key, f"longer than {MAX_KEY_BYTES} UTF-8 bytes")
    if key.startswith("/"):
        raise _fail(key, "keys are relative: no leading '/'")
    if "\\" in key:
        raise _fail(key, "backslashes are path separators on Windows")
    if _CONTROL.search(key):
        raise _fail(key, "control characters are not allowed")
    if any(unicodedata.category(c) == "Cf" for c in key):
        raise _fail(key, "invisible format characters (zero-width, bidi) are not allowed")
    if _LOOKALIKES.intersection(key):
        raise _fail(key, "look-alikes of '/', '\\' or '.' are not allowed")
    if unicodedata.normalize("NFC", key) != key:
        raise _fail(key, "keys must be in Unicode NFC")
    decoded = key
    for _ in range(3):  # catch %2e, %252e, %25252e
        if _ENCODED.search(decoded):
            raise _fail(key, "percent-encoded '.', '/', '\\' or NUL is not allowed")
        decoded = unquote(decoded)
    for segment in key.split("/"):
        _check_segment(key, segment)
    return key


def _check_segment(key: str, segment: str) -> None:
    if not segment:
        raise _fail(key, "empty segments ('//' or a trailing '/') are not allowed")
    if segment in (".", "..") or unicodedata.normalize("NFKC", segment) in (".", ".."):
        raise _fail(key, "'.' and '..' segments are not allowed")
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise _fail(key, f"a segment is longer than {MAX_SEGMENT_BYTES} UTF-8 bytes")
    if segment.lower().startswith(RESERVED_PREFIX):
        raise _fail(key, f"segments starting with {RESERVED_PREFIX!r} are reserved")
    if segment[-1] in ". ":
        raise _fail(key, "segments must not end in '.' or a space")
    if _DRIVE.match(segment):
        raise _fail(key, "a Windows drive letter ('C:') is not allowed in a segment")
    stem = _STEM_END.split(segment, maxsplit=1)[0].rstrip(" ").upper()
    if stem in _WINDOWS_RESERVED:
        raise _fail(key, f"{stem} is a reserved device name on Windows")


def is_reserved_name(name: str) -> bool:
    """Whether a stored name belongs to veza-storage itself (staging, temp files)."""
    return any(part.lower().startswith(RESERVED_PREFIX) for part in name.split("/"))
