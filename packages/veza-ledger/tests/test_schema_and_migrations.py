"""Migrations shipped in the package: up, down, up again, no drift, own version table."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from veza_ledger import (
    VERSION_TABLE,
    SchemaOutOfDateError,
    check_schema,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    metadata,
    upgrade,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A database without the ledger's tables."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    base = request.getfixturevalue("postgres_url")
    name = f"ledger_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(sa.make_url(base).set(database=name))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "version_table": VERSION_TABLE,
                "include_name": lambda name, type_, _p: (
                    type_ != "table" or (name or "").startswith("ledger_")
                ),
            },
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_downgrade_upgrade_and_no_drift(empty_engine: sa.Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    assert _diff(empty_engine) == []  # the migrated schema is exactly the models
    tables = set(sa.inspect(empty_engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables
    downgrade(empty_engine, "base")
    assert current_revision(empty_engine) is None
    left = set(sa.inspect(empty_engine).get_table_names())
    assert not {t.name for t in metadata.sorted_tables} & left
    upgrade(empty_engine)
    assert _diff(empty_engine) == []
    check_schema(empty_engine)


def test_the_host_applications_alembic_history_is_untouched(empty_engine: sa.Engine) -> None:
    with empty_engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        )
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('hostapp_42')"))
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert (
            connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            == "hostapp_42"
        )
        ours = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    assert ours == head_revision()


def test_the_startup_check_names_the_command(empty_engine: sa.Engine) -> None:
    with pytest.raises(SchemaOutOfDateError, match="veza-ledger db upgrade --database-url"):
        check_schema(empty_engine)
    upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    with pytest.raises(SchemaOutOfDateError, match="newer than the library"):
        check_schema(empty_engine)


def test_concurrent_starters_are_serialised(empty_engine: sa.Engine) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            upgrade(empty_engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(empty_engine) == head_revision()
    with empty_engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1


def test_concurrent_starter_processes_are_serialised(empty_engine: sa.Engine) -> None:
    """Four processes run `veza-ledger db upgrade` at once, as four app instances would."""
    url = empty_engine.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "veza_ledger._cli", "db", "upgrade", "--database-url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    assert current_revision(empty_engine) == head_revision()
    assert _diff(empty_engine) == []


def test_sqlite_partial_unique_index_really_is_partial(tmp_path: Path) -> None:
    """With only postgresql_where, SQLite would build a full unique index: check the DDL."""
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        ddl = connection.execute(
            sa.text(
                "SELECT sql FROM sqlite_master "
                "WHERE name = 'uq_ledger_refunds_hyperswitch_refund_id'"
            )
        ).scalar_one()
    assert "WHERE hyperswitch_refund_id IS NOT NULL AND hyperswitch_refund_id <> ''" in ddl
    engine.dispose()


def test_journal_is_append_only_in_the_database(engine: sa.Engine, ledger: object) -> None:
    from veza_ledger import Ledger

    assert isinstance(ledger, Ledger)
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=10, currency="EUR")
    ledger.orders.mark_paid(order.id)
    for statement in (
        "UPDATE ledger_journal_entries SET amount = amount * 2",
        "DELETE FROM ledger_journal_entries",
        "DELETE FROM ledger_journal_transactions",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
    assert ledger.journal.trial_balance() == {"EUR": 0}


def test_cli_upgrade_current_check_downgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "veza_ledger._cli", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    assert run("db", "check", "--database-url", url).returncode == 1
    up = run("db", "upgrade", "--database-url", url)
    assert up.returncode == 0, up.stderr
    assert head_revision() in up.stdout
    assert run("db", "check", "--database-url", url).returncode == 0
    assert f'"head": "{head_revision()}"' in run("db", "current", "--database-url", url).stdout
    assert run("db", "downgrade", "base", "--database-url", url).returncode == 2  # needs:
    assert run("db", "downgrade", "base", "--destroy-data", "--database-url", url).returncode == 0
    assert run("db", "check", "--database-url", url).returncode == 1
    missing = run("db", "upgrade")
    assert missing.returncode == 2 and "VEZA_DATABASE_URL" in missing.stderr
