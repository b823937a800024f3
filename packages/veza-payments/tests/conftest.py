"""Fixtures: the provider fakes (real HTTP servers on 127.0.0.1) and clients on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veza_payments import HyperswitchClient, RetryPolicy, StripeConnect
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


@pytest.fixture
def connect(fake_stripe: FakeStripe, sleeps: Sleeps) -> Iterator[StripeConnect]:
    with StripeConnect(
        fake_stripe.api_key, base_url=fake_stripe.url, timeout=0.5, sleep=sleeps
    ) as c:
        yield c
