r"""A generated corpus of hostile request paths, for testing any edge or verifier.

Every path in it is either unsafe (a dot segment in any spelling, an encoded or
look-alike separator, a control character, an empty segment, a broken escape or
invalid UTF-8) or outside the scope it is built around (a sibling folder sharing the
scope's name as a string prefix). A verifier given a token scoped to ``scope`` must
refuse every one; an edge must answer none of them with content.
"""

from __future__ import annotations

from itertools import product

# spellings of "..", "." and look-alikes, raw and percent-encoded
_DOTS = (
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%2e",
    "..;",
    "..;x",
    "%2e%2e;",
    "%252e%252e",
    "%25252e%25252e",
    "%c0%ae%c0%ae",
    "%e0%80%ae%e0%80%ae",
    "\uff0e\uff0e",
    "%EF%BC%8E%EF%BC%8E",
    "\u2025",
)
# spellings of "/" and "\" between the dot segment and what follows
_SEPARATORS = (
    "/",
    "%2f",
    "%2F",
    "\\",
    "%5c",
    "%5C",
    "%252f",
    "\uff0f",
    "%EF%BC%8F",
)
_SPECIALS = (
    "//{target}",
    "/./{target}",
    "/a/../../{target}",
    "/a/..%2f..%2f{target}",
    "%2f..%2f..%2f{target}",
    "/..%00/{target}",
    "/%00/../../{target}",
    "/a%00.ts",
    "/a%0a.ts",
    "/a%0d%0aSet-Cookie:x=1",
    "/a%09.ts",
    "/a%7f.ts",
    "/a%c2%85.ts",
    "/a\n.ts",
    "/a\x00.ts",
    "/a%.ts",
    "/a%zz.ts",
    "/a%2.ts",
    "/a%ff.ts",
    "/a%c3.ts",
    "/a%ed%a0%80.ts",
    "//",
    "/a//b.ts",
    "/\\..\\..\\{target}",
    "/..\\..\\{target}",
    "/a\u2215..\u2215{target}",
    "/a%E2%88%95..%E2%88%95{target}",
)


def hostile_paths(scope: str = "/hls/1", target: str = "tracks/secret.wav") -> list[str]:
    """Hostile request paths (raw, as sent on the wire) around the folder ``scope``.

    Args:
        scope: The folder a token covers, e.g. ``/hls/<id>`` (no trailing slash).
        target: An object outside the scope the paths try to reach.

    Returns:
        Over 150 paths; none is a safe path inside ``scope``.
    """
    base = scope.rstrip("/")
    paths: list[str] = []
    for dots, separator in product(_DOTS, _SEPARATORS):
        paths.append(f"{base}/{dots}{separator}{dots}{separator}{target}")
    paths.extend(f"{base}{special.format(target=target)}" for special in _SPECIALS)
    parent, _, name = base.rpartition("/")
    paths.extend(
        [
            f"{base}0/a.ts",
            f"{base}0/",
            f"{base}-evil/a.ts",
            f"{base}.ts",
            f"{base}%00/a.ts",
            f"{base}x/{target}",
            f"{parent}/{name.upper()}x/a.ts",
            f"{parent}/",
            f"{parent}",
            "/",
            f"/{target}",
            f"{parent}/{name}1/../{name}/a.ts",
        ]
    )
    return list(dict.fromkeys(paths))
