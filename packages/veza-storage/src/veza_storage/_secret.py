"""A wrapper that keeps secrets out of reprs, logs and exception messages.

The same shape as ``veza_cdn.Secret`` (one idiom across the family): ``.reveal()`` where
the value is used, ``Secret('********')`` everywhere else.
"""

from __future__ import annotations

import hmac
from typing import Generic, NoReturn, TypeVar

T = TypeVar("T", str, bytes)


class Secret(Generic[T]):
    """Holds a secret value; ``repr``/``str`` show only a mask.

    The value is reachable only through :meth:`reveal`, so an accidental
    ``logger.info("%s", config)`` or a traceback that prints locals cannot leak it.
    Equality is constant-time.

    Args:
        value: The secret (an HMAC signing key, an S3 secret access key).
    """

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """Return the secret value. Call it only where the value is used."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine: str | bytes = self._value
        theirs: str | bytes = other._value
        if type(mine) is not type(theirs):
            return False
        as_bytes = [v.encode("utf-8") if isinstance(v, str) else v for v in (mine, theirs)]
        return hmac.compare_digest(as_bytes[0], as_bytes[1])

    def __hash__(self) -> int:
        return hash((type(self), "secret"))

    def __reduce__(self) -> NoReturn:
        msg = "Secret values are not picklable"
        raise TypeError(msg)
