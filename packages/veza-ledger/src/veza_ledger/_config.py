"""Configuration helpers shared in spirit with the other veza packages.

veza-ledger reads few variables (the database URL, the webhook log's retention); the
boolean parser lives here so that a boolean setting, when one is added, is read exactly
as in veza-cdn, veza-payments, veza-storage and veza-webrtc.
"""

from __future__ import annotations

from veza_ledger._errors import LedgerConfigurationError

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
        LedgerConfigurationError: ``value`` is none of those words (the message names ``name``).
    """
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    msg = f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}"
    raise LedgerConfigurationError(msg)
