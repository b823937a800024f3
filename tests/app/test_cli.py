"""``veza-reference``: --help prints and exits, a busy port is one line naming --port
(exit 2, no traceback), ``add-user`` creates an account from a password on stdin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

CLI = str(Path(sys.executable).with_name("veza-reference"))


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), **env},
    )


def test_help_prints_and_exits(tmp_path: Path) -> None:
    result = _run(["--help"], {"VEZA_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "usage: veza-reference" in result.stdout and "--port" in result.stdout
    assert not (tmp_path / "veza.db").exists()  # nothing was started


def test_a_busy_port_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run(["--port", str(port)], {"VEZA_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port" in lines[0] and str(port) in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_add_user_reads_the_password_from_stdin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    env = {"VEZA_DATABASE_URL": url, "VEZA_DATA_DIR": str(tmp_path)}
    created = _run(["add-user", "ops-admin", "--role", "admin"], env, "a-strong-password-1\n")
    assert created.returncode == 0, created.stderr
    assert "a-strong-password-1" not in created.stdout + created.stderr
    again = _run(["add-user", "ops-admin", "--role", "admin"], env, "a-strong-password-1\n")
    assert again.returncode == 2 and "taken" in again.stderr
    short = _run(["add-user", "someone", "--role", "buyer"], env, "short\n")
    assert short.returncode == 2 and "12 characters" in short.stderr
    from veza_reference._users import Users

    engine = sa.create_engine(url)
    try:
        account = Users(engine).authenticate("ops-admin", "a-strong-password-1")
        assert account is not None and account.role == "admin"
    finally:
        engine.dispose()
