"""Every ledger test runs on SQLite and on PostgreSQL (127.0.0.1:5432, a database per run)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from veza_ledger import Ledger, create_engine, metadata, upgrade
from veza_payments import RetryPolicy, StripeConnect
from veza_payments.testing import FakeStripe

LEDGER_TABLES = [t.name for t in reversed(metadata.sorted_tables)]


@pytest.fixture(scope="session")
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(postgres_url, pool_size=10, max_overflow=10)
    upgrade(engine)
    yield engine
    engine.dispose()


def _sqlite_engine(path: Path) -> sa.Engine:
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


class Clock:
    """A settable clock for the ledger."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def _truncate(engine: sa.Engine) -> None:
    with (
        engine.begin() as connection
    ):  # TRUNCATE fires no row triggers: the journal stays append-only
        # the journal refuses TRUNCATE (0003); a superuser's replica role skips triggers
        connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        connection.execute(sa.text(f"TRUNCATE {', '.join(LEDGER_TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_only(pg_engine: sa.Engine) -> sa.Engine:
    """PostgreSQL alone, for behaviour only PostgreSQL has (row locks, SKIP LOCKED, EXPLAIN)."""
    _truncate(pg_engine)
    return pg_engine


@pytest.fixture
def pg_ledger(pg_only: sa.Engine, clock: Clock) -> Ledger:
    return Ledger(pg_only, clock=clock)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = _sqlite_engine(tmp_path / "ledger.db")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    with (
        engine.begin() as connection
    ):  # TRUNCATE fires no row triggers: the journal stays append-only
        # the journal refuses TRUNCATE (0003); a superuser's replica role skips triggers
        connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        connection.execute(sa.text(f"TRUNCATE {', '.join(LEDGER_TABLES)} RESTART IDENTITY CASCADE"))
    yield engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(engine: sa.Engine, clock: Clock) -> Ledger:
    return Ledger(engine, clock=clock)


def is_pg(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    """A strict Stripe fake (veza-payments' testing) for the worker tests."""
    with FakeStripe() as server:
        yield server


@pytest.fixture
def stripe_client(fake: FakeStripe) -> Iterator[Callable[..., StripeConnect]]:
    """Build a ``StripeConnect`` on ``fake`` with a test's timeout and retry budget."""
    with contextlib.ExitStack() as stack:

        def build(*, timeout: float, retries: int) -> StripeConnect:
            client = StripeConnect(
                fake.api_key,
                base_url=fake.url,
                timeout=timeout,
                max_retries=RetryPolicy(total=retries),
                sleep=lambda _s: None,
            )
            return stack.enter_context(client)

        yield build
