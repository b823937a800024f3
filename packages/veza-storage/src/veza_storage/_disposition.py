"""``Content-Disposition`` for downloads: an ASCII fallback plus RFC 5987 ``filename*``."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\;%]')


def ascii_fallback(filename: str) -> str:
    """A plain-ASCII approximation (accents stripped, anything else ``_``)."""
    decomposed = unicodedata.normalize("NFKD", filename)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = _UNSAFE.sub("_", stripped).strip() or "download"
    return cleaned[:200]


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''percent-encoded``.

    Old clients read the quoted ASCII fallback; every current browser prefers the
    RFC 5987 form, which carries the exact UTF-8 name.
    """
    kind = "inline" if inline else "attachment"
    encoded = quote(filename, safe="!#$&+-.^_`|~")
    return f"{kind}; filename=\"{ascii_fallback(filename)}\"; filename*=UTF-8''{encoded}"
