"""``veza-ledger`` from the shell: --version, quiet migrations, one-line operational errors,
a downgrade to base that must be asked for, and ``db check`` naming the live drift.

Output and exit codes are read from a real subprocess where the process boundary is the
point (logging, tracebacks); the rest calls ``main`` in-process to keep the suite fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from veza_ledger import Ledger, __version__, create_engine, current_revision, head_revision
from veza_ledger._cli import main
from veza_ledger._migrations import revision_chain
from veza_services import free_port


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veza_ledger._cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"ledger_cli_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"veza-ledger {__version__}"


def test_db_commands_are_quiet_unless_verbose(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    quiet = run("db", "upgrade", "--database-url", url)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == f"veza-ledger schema at {head_revision()}\n"
    head, below = revision_chain(head_revision())[:2]
    loud = run("-v", "db", "downgrade", "--database-url", url, below)
    assert loud.returncode == 0, loud.stderr
    assert f"Running downgrade {head} -> {below}" in loud.stderr
    also_loud = run("db", "upgrade", "-v", "--database-url", url)
    assert f"Running upgrade {below} -> {head}" in also_loud.stderr


@pytest.mark.parametrize("command", [("db", "upgrade"), ("db", "check"), ("findings",)])
def test_an_unreachable_database_is_one_line_and_exit_2(
    tmp_path: Path, command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    password = "s3cret-Pw"  # must never be printed
    unreachable = {
        "postgresql": f"postgresql+psycopg://app:{password}@127.0.0.1:{free_port()}/app",
        "sqlite": f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'ledger.db'}",
    }
    for dialect, url in unreachable.items():
        assert main([*command, "--database-url", url]) == 2, dialect
        out, err = capsys.readouterr()
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1, err
        (line,) = lines
        assert line.startswith("veza-ledger: cannot connect to the database at "), line
        assert "Check --database-url (or $VEZA_DATABASE_URL)" in line
        assert password not in line
        assert dialect != "postgresql" or "Connection refused" in line
    assert not (tmp_path / "no").exists()


def test_no_traceback_from_the_console_script(tmp_path: Path) -> None:
    """The process boundary itself: stderr is the one line, nothing else, exit 2."""
    done = run("db", "check", "--database-url", f"sqlite:///{tmp_path / 'no' / 'ledger.db'}")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_url_that_is_not_a_database_url_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current", "--database-url", "mysqlx://nowhere/db"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "the database URL is not usable" in err


def test_downgrade_to_base_needs_destroy_data(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--database-url", url]) == 0
    engine = create_engine(url)
    ledger = Ledger(engine)
    order = ledger.orders.create(buyer_id="b", seller_id="s", amount=700, currency="EUR")
    ledger.orders.mark_paid(order.id)
    capsys.readouterr()

    depth = len(revision_chain(head_revision()))
    for revision in ("base", f"-{depth}", f"-{depth + 2}"):
        assert main(["db", "downgrade", "--database-url", url, revision]) == 2, revision
        err = capsys.readouterr().err
        assert "destroys their data" in err and "--destroy-data" in err
    assert current_revision(engine) == head_revision()
    assert ledger.orders.get(order.id).amount == 700  # nothing was dropped
    assert ledger.journal.trial_balance() == {"EUR": 0}

    below_head = revision_chain(head_revision())[1]
    assert main(["db", "downgrade", "--database-url", url, below_head]) == 0  # 0003: no table
    assert main(["db", "downgrade", "--database-url", url, "--destroy-data", "base"]) == 0
    assert current_revision(engine) is None
    assert not [t for t in sa.inspect(engine).get_table_names() if t.startswith("ledger_")]
    engine.dispose()


def test_db_check_names_every_difference(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert main(["db", "check", "--database-url", url]) == 0
    assert "matches the models" in capsys.readouterr().out
    engine = create_engine(url)
    trigger = (
        "ledger_journal_transactions_append_only"
        if engine.dialect.name == "postgresql"
        else "ledger_journal_transactions_no_update"
    )
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_ledger_orders_status_id"))
        connection.execute(
            sa.text(
                f"DROP TRIGGER {trigger} ON ledger_journal_transactions"
                if engine.dialect.name == "postgresql"
                else f"DROP TRIGGER {trigger}"
            )
        )
    engine.dispose()
    assert main(["db", "check", "--database-url", url]) == 1
    out = capsys.readouterr().out
    assert "differs from the models" in out and "in 2 place(s)" in out
    assert "ix_ledger_orders_status_id" in out and trigger in out
    assert main(["db", "check", "--json", "--database-url", url]) == 1
    drifts = json.loads(capsys.readouterr().out)
    assert sorted((d["kind"], d["name"], d["found"]) for d in drifts) == [
        ("index", "ix_ledger_orders_status_id", None),
        ("trigger", trigger, None),
    ]


def test_an_unknown_revision_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'rev.db'}"
    assert main(["db", "upgrade", "--database-url", url, "0002"]) == 0
    capsys.readouterr()
    assert main(["db", "upgrade", "--database-url", url, "0099"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "0099" in err, err
