"""A host application's Alembic beside the ledger: its autogenerate leaves the ledger alone.

The host project is built in ``tmp_path`` as a user would build it: its own package and
model, its own ``alembic.ini``, script directory and version table (Alembic's default
``alembic_version``), and the ``env.py`` printed in ``docs/ledger/migrations.md``, run
verbatim. Alembic is run as the ``alembic`` command, in a subprocess, on PostgreSQL and
SQLite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from veza_ledger import VERSION_TABLE, check_schema, create_engine, head_revision, upgrade
from veza_ledger.migrations_filter import include_name, include_object

DOCS = Path(__file__).parents[3] / "docs" / "ledger" / "migrations.md"

HOST_MODELS = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "host_users"
    __table_args__ = (sa.Index("ix_host_users_email", "email", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
"""

ALEMBIC_INI = """
[alembic]
script_location = %(here)s/migrations
sqlalchemy.url = {url}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %%(levelname)s %%(name)s %%(message)s
"""


def documented_env_py() -> str:
    """The ``env.py`` block that follows the ``host-env-py`` marker in the docs."""
    text = DOCS.read_text()
    match = re.search(r"<!-- host-env-py -->\n```python\n(.*?)\n```", text, re.DOTALL)
    assert match, "docs/ledger/migrations.md lost its host env.py"
    return match.group(1) + "\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database the host and the ledger will share."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"ledger_host_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _host_project(root: Path, url: str) -> Path:
    (root / "myapp").mkdir(parents=True)
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "models.py").write_text(HOST_MODELS)
    (root / "alembic.ini").write_text(ALEMBIC_INI.format(url=url))
    scripts = root / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(documented_env_py())
    template = files("alembic") / "templates" / "generic" / "script.py.mako"
    (scripts / "script.py.mako").write_text(template.read_text())
    return root


def _alembic(project: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(project)}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(project / "alembic.ini"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _newest_revision_file(project: Path, slug: str) -> str:
    (path,) = (project / "migrations" / "versions").glob(f"*_{slug}.py")
    return path.read_text()


def _body(script: str, function: str) -> str:
    match = re.search(rf"def {function}\(\) -> None:\n(.*?)(?=\n\ndef |\Z)", script, re.DOTALL)
    assert match, script
    return match.group(1)


def test_without_the_filter_autogenerate_would_drop_the_ledger(shared_url: str) -> None:
    """The problem the filter solves, shown: a plain comparison wants the ledger gone."""
    engine = create_engine(shared_url)
    upgrade(engine)
    host = sa.MetaData()
    sa.Table("host_users", host, sa.Column("id", sa.Integer, primary_key=True))
    with engine.connect() as connection:
        plain = compare_metadata(MigrationContext.configure(connection), host)
        filtered = compare_metadata(
            MigrationContext.configure(
                connection, opts={"include_name": include_name, "include_object": include_object}
            ),
            host,
        )
    engine.dispose()
    dropped = {d[1].name for d in plain if d[0] == "remove_table"}
    assert {"ledger_journal_entries", "ledger_orders", VERSION_TABLE} <= dropped
    assert [(d[0], d[1].name) for d in filtered] == [("add_table", "host_users")]


def test_host_autogenerate_proposes_nothing_for_the_ledger(shared_url: str, tmp_path: Path) -> None:
    engine = create_engine(shared_url)
    upgrade(engine)  # the ledger first, as `veza-ledger db upgrade` in a release step
    project = _host_project(tmp_path / "host", shared_url)

    _alembic(project, "revision", "--autogenerate", "-m", "initial")
    initial = _newest_revision_file(project, "initial")
    assert "op.create_table('host_users'" in initial or 'op.create_table("host_users"' in initial
    assert "ledger" not in initial  # no table, index, constraint or version table of the ledger
    _alembic(project, "upgrade", "head")

    # The host changes its model: the next autogenerate sees that, and nothing else.
    models = project / "myapp" / "models.py"
    models.write_text(
        models.read_text() + "    nickname: Mapped[str | None] = mapped_column(sa.String(64))\n"
    )
    _alembic(project, "revision", "--autogenerate", "-m", "nickname")
    second = _newest_revision_file(project, "nickname")
    upgrade_body = _body(second, "upgrade")
    assert "host_users" in upgrade_body and "'nickname'" in upgrade_body, upgrade_body
    operations = re.findall(r"\b(?:batch_)?op\.(\w+)\(", upgrade_body)  # batch_op on SQLite
    assert operations in (["add_column"], ["batch_alter_table", "add_column"]), upgrade_body
    assert "ledger" not in second
    _alembic(project, "upgrade", "head")

    # Both histories intact, each in its own version table; the ledger's schema unchanged.
    with engine.connect() as connection:
        ours = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        theirs = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert ours == head_revision()
    assert theirs and theirs != ours
    assert check_schema(engine) == []
    engine.dispose()
