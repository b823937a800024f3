"""Deprecation shims for signatures that became keyword-only after 0.1.0.

Every veza package keeps its own copy of this module (the packages share no
dependency); ``tests/test_house_rules.py`` checks the copies stay identical.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def positional_deprecated(func: Callable[P, R]) -> Callable[P, R]:
    """Accept, for one more release, keyword-only parameters passed positionally.

    The house rule is keyword-only from the third parameter on, so a call site says what
    each value is. Signatures released in 0.1.0 that took more positionally keep
    working: the extra positional values are mapped, in the old order, onto the
    keyword-only parameters, with a ``DeprecationWarning`` naming them. The wrapped
    signature is what ``inspect.signature`` and type checkers see, so new code is held
    to the keyword-only form.

    Args:
        func: A function whose keyword-only parameters were positional in 0.1.0, in the
            same order.

    Returns:
        The function, wrapped.
    """
    parameters = inspect.signature(func).parameters.values()
    positional = sum(1 for p in parameters if p.kind in _POSITIONAL)
    keyword_only = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def split(args: tuple[object, ...], kwargs: dict[str, object]) -> tuple[object, ...]:
        """Move positional values past ``positional`` into ``kwargs``, with the warning."""
        if len(args) <= positional:
            return args
        extra = args[positional:]
        if len(extra) > len(keyword_only):
            msg = (
                f"{func.__qualname__}() takes at most "
                f"{positional + len(keyword_only)} positional arguments ({len(args)} given)"
            )
            raise TypeError(msg)
        names = keyword_only[: len(extra)]
        for name, value in zip(names, extra, strict=True):
            if name in kwargs:
                msg = f"{func.__qualname__}() got multiple values for argument {name!r}"
                raise TypeError(msg)
            kwargs[name] = value
        warnings.warn(
            f"{func.__qualname__}(): pass {', '.join(names)} by keyword; passing "
            "it positionally is deprecated since 0.2.0 and stops working in 0.3.0",
            DeprecationWarning,
            stacklevel=3,
        )
        return args[:positional]

    unchecked = cast("Callable[..., Any]", func)  # args are re-split by split()
    if inspect.iscoroutinefunction(func):  # stays a coroutine function for inspect

        @functools.wraps(func)
        async def awrapper(*args: object, **kwargs: object) -> object:
            return await unchecked(*split(args, kwargs), **kwargs)

        return cast("Callable[P, R]", awrapper)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if len(args) > positional:
            return cast("R", unchecked(*split(args, kwargs), **kwargs))
        return func(*args, **kwargs)

    return wrapper
