"""The command line: missing roots are errors (never created), and ``uploads reap``."""

import os
import subprocess
import sys
import time

import pytest

from veza_storage import FileUploadSessionStore, LocalStorage, ResumableUploads
from veza_storage._cli import main

KiB = 1024


@pytest.mark.parametrize(
    "command",
    [
        ["orphans", "--root", "{missing}", "--referenced", "-"],
        ["migrate", "--from", "local:{missing}", "--to", "local:{elsewhere}", "--dry-run"],
        ["uploads", "reap", "--root", "{missing}", "--sessions", "{sessions}"],
    ],
    ids=["orphans", "migrate", "reap"],
)
def test_a_missing_root_is_one_line_exit_2_and_is_not_created(tmp_path, capsys, command):
    missing = tmp_path / "typo"
    (tmp_path / "sessions").mkdir()
    argv = [
        part.format(missing=missing, elsewhere=tmp_path / "dest", sessions=tmp_path / "sessions")
        for part in command
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not exist" in err
    assert str(missing) in err
    assert "Traceback" not in err
    assert not missing.exists()


def test_missing_root_through_the_real_entry_point(tmp_path):
    missing = str(tmp_path / "nope")
    result = subprocess.run(
        [sys.executable, "-m", "veza_storage", "orphans", "--root", missing, "--referenced", "-"],
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"veza-storage: error: the storage root {str(tmp_path / 'nope')!r} does not exist"
    ]
    assert not (tmp_path / "nope").exists()


def test_uploads_reap_removes_expired_sessions_and_their_staged_data(tmp_path, capsys):
    storage = LocalStorage(tmp_path / "root")
    store = FileUploadSessionStore(tmp_path / "sessions")
    old = ResumableUploads(storage, store, ttl=60, clock=lambda: time.time() - 3600)
    stale = old.begin("stale.flac", 100 * KiB, chunk_size=64 * KiB, content_type="audio/flac")
    old.put_chunk(stale, 0, data=os.urandom(64 * KiB))
    live = ResumableUploads(storage, store, ttl=3600).begin(
        "live.flac", 10, chunk_size=64 * KiB, content_type="x/y"
    )
    staging = storage.root / ".veza-uploads"
    assert sorted(p.name for p in staging.iterdir()) == sorted([stale, live])
    argv = [
        "uploads",
        "reap",
        "--root",
        str(storage.root),
        "--sessions",
        str(tmp_path / "sessions"),
    ]
    assert main(argv) == 0
    assert "1 expired upload session(s)" in capsys.readouterr().out
    assert [p.name for p in staging.iterdir()] == [live]
    assert store.get(stale) is None
    assert store.get(live) is not None
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("0 ")


def test_uploads_reap_with_a_missing_session_directory(tmp_path, capsys):
    LocalStorage(tmp_path / "root")
    argv = ["uploads", "reap", "--root", str(tmp_path / "root"), "--sessions", "/nonexistent/s"]
    assert main(argv) == 2
    assert "--sessions" in capsys.readouterr().err
    assert not os.path.exists("/nonexistent/s")


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("postgresql+psycopg://nobody@127.0.0.1:1/x", "OperationalError"),  # nothing listens
        ("postgresql+psycopg://...", "UnicodeError"),  # not a host name at all
    ],
    ids=["unreachable", "malformed-host"],
)
def test_uploads_reap_with_a_session_database_it_cannot_use(tmp_path, capsys, url, cause):
    LocalStorage(tmp_path / "root")
    argv = ["uploads", "reap", "--root", str(tmp_path / "root"), "--database-url", url]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line, no traceback
    assert cause in err
    assert "--database-url" in err
