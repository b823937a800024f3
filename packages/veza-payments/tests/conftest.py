"""Fixtures: the provider fakes (real HTTP servers on 127.0.0.1) and clients on them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, Self

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from veza_payments import AsyncStripeConnect, HyperswitchClient, RetryPolicy, StripeConnect
from veza_payments.testing import FakeHyperswitch, FakeStripe


class Sleeps(list[float]):
    """Records requested sleeps instead of sleeping (retries stay instant in tests)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fake() -> Iterator[FakeHyperswitch]:
    with FakeHyperswitch() as server:
        yield server


@pytest.fixture
def client(fake: FakeHyperswitch, sleeps: Sleeps) -> Iterator[HyperswitchClient]:
    with HyperswitchClient(
        fake.api_key,
        base_url=fake.url,
        timeout=0.5,
        max_retries=RetryPolicy(total=5, max_elapsed=30),
        sleep=sleeps,
    ) as c:
        yield c


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


class Blocking:
    """An :class:`AsyncStripeConnect` driven from synchronous test code.

    Every method runs on the portal's event loop; a paged read is drained there and
    handed back as an iterator. The Stripe tests are written once and run on both
    clients (``make_connect`` is parametrized), not copied.
    """

    def __init__(self, portal: BlockingPortal, target: AsyncStripeConnect) -> None:
        self._portal = portal
        self._target = target

    def __repr__(self) -> str:
        return repr(self._target)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                result = attr(*args, **kwargs)
                if hasattr(result, "__aiter__"):
                    return iter([item async for item in result])
                if hasattr(result, "__await__"):
                    return await result
                return result

            return self._portal.call(run)

        return call

    def close(self) -> None:
        self._portal.call(self._target.aclose)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture(params=["sync", "async"])
def make_connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., StripeConnect]]:
    """Build a ``StripeConnect``, or an ``AsyncStripeConnect`` behind :class:`Blocking`."""
    if request.param == "sync":
        yield StripeConnect
        return
    with start_blocking_portal() as portal:

        def build(api_key: str, **kwargs: Any) -> Any:
            sleep = kwargs.pop("sleep", None)
            if sleep is not None:

                async def asleep(seconds: float, *, record: Callable[[float], Any] = sleep) -> None:
                    record(seconds)

                kwargs["sleep"] = asleep
            return Blocking(portal, AsyncStripeConnect(api_key, **kwargs))

        yield functools.partial(build)


@pytest.fixture
def connect(
    fake_stripe: FakeStripe, sleeps: Sleeps, make_connect: Callable[..., StripeConnect]
) -> Iterator[StripeConnect]:
    with make_connect(
        fake_stripe.api_key, base_url=fake_stripe.url, timeout=0.5, sleep=sleeps
    ) as c:
        yield c
