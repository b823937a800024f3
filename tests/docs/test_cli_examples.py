"""Every command line the READMEs and docs pages show for a veza CLI is checked (issue 17).

A command is a line of a plain, ``console``, ``bash`` or ``sh`` block that starts with
``veza-cdn``, ``veza-storage``, ``veza-ledger``, ``veza-payments`` or ``veza-webrtc``
(after a ``$`` prompt in a transcript, where the other lines are its output). Every one
is parsed by the program's own argument parser: a renamed flag fails here. Synopsis
lines (``[--flag]``, ``(A | B)``, ``URL``-style placeholders) must name only flags the
subcommand has. Then every command that can run on one machine runs, in page order, in
a shell, in a folder of its own, against local parts (a SQLite ledger at a path, a local
storage root, key files): the exit status must be 0, or what the transcript's
``echo $?`` shows, and a transcript's output must match (``…`` stands for anything).
A command that needs a remote service (a CDN edge, a TURN server, a provider, S3) is
listed in ``NOT_OFFLINE`` with the reason; it is parsed, not run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("veza-cdn", "veza-storage", "veza-ledger", "veza-payments", "veza-webrtc")
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_COMMAND = re.compile(rf"^(\$ )?({'|'.join(PROGRAMS)})(?: (?! )(.*))?$")
_SHELL_FENCES = {"", "console", "bash", "sh", "shell", "text"}
# what marks a usage line: optional parts, alternatives, placeholders standing alone
_PLACEHOLDERS = {"URL", "KEY", "EPOCH", "PROVIDER", "SIGNED_URL", "ID", "PEMFILE", "NAME"}
_PLACEHOLDERS |= {"BASE64URL", "HEX", "SECRET", "PATH", "ACL", "IP", "LIST", "KBPS", "PREFIX"}
KNOWN_COMMANDS = 57
KNOWN_RUNNABLE = 31  # run here; the others are parsed (NOT_OFFLINE says why)

# how a command starts (as written, prompt stripped) -> why it is parsed but not run here
NOT_OFFLINE = {
    "veza-storage migrate --from local:/srv/tracks --to s3://": "S3 (and an AWS profile)",
    "veza-storage orphans --bucket": "S3",
    "veza-storage uploads reap --bucket": "S3 and PostgreSQL",
    "veza-webrtc probe": "a TURN server at turn.example.com (the output shown is its)",
    "veza-webrtc coturn-config --realm turn.example.com --secret-file /etc": "writes /etc",
    "veza-cdn probe": "a CDN edge (the CDN_* of a real pull zone)",
    "veza-payments probe": "Hyperswitch and the shop's webhook endpoint",
    'veza-cdn verify bunny "$URL"': "the reader's expired URL and key",
}
DRIFTED = "veza-ledger db check"  # the transcript of a database drifted by hand: parsed only


def _substituted(text: str) -> str:
    for old, new in SUBSTITUTIONS.items():
        text = text.replace(old, new)
    return text


def _is_synopsis(command: Command) -> bool:
    """A usage line (``[--flag]``, ``(A | B)``, ``URL``), not a command to type."""
    words = shlex.split(_substituted(command.text.split(" < ")[0]), comments=True)
    return any(set(w) & set("[]()|") or w in _PLACEHOLDERS for w in words)


def _not_offline(command: Command) -> bool:
    if command.text == DRIFTED and command.output is not None:
        return True
    return command.text.startswith(tuple(NOT_OFFLINE))


# what stands for the reader's values, and what the test gives instead (files are made)
SUBSTITUTIONS = {
    "postgresql+psycopg://app@db/app": "sqlite:///ledger.db",
    "--database-url URL": "--database-url sqlite:///ledger.db",
    "@db.internal:5433": "@127.0.0.1:9",
    "local:/srv/tracks": "local:srv/tracks",
    "--root /srv/tracks": "--root srv/tracks",
    "--sessions /var/lib/app/upload-sessions": "--sessions upload-sessions",
    "--signature HEX": '--signature "$SIG"',
    "--signature 3f1c…": '--signature "$SIG"',
}
# the same, in what a transcript shows
OUTPUT_SUBSTITUTIONS = {"@db.internal:5433": "@127.0.0.1:9"}
# a transcript's placeholder output line -> the pattern the real output must match
OUTPUT_PATTERNS = {"3f1c…(128 hex digits)": r"[0-9a-f]{128}"}


@dataclass
class Command:
    page: str
    line: int
    text: str  # as written, prompt and continuation joined
    output: list[str] | None  # a transcript's lines up to the next prompt
    status: int = 0  # from a following ``$ echo $?``

    @property
    def program(self) -> str:
        return self.text.split()[0]


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
    return found + sorted((ROOT / "docs").rglob("*.md"))


def commands(page: Path) -> list[Command]:
    """The page's CLI commands, in order."""
    text = page.read_text(encoding="utf-8")
    found: list[Command] = []
    for fence in _FENCE.finditer(text):
        if fence.group(1).strip() not in _SHELL_FENCES:
            continue
        first = text.count("\n", 0, fence.start()) + 2
        lines = fence.group(2).replace("\\\n", " ").splitlines()
        transcript = any(line.startswith("$ ") for line in lines)
        current: Command | None = None
        for number, line in enumerate(lines, first):
            if transcript and line.startswith("$ echo $?"):
                continue
            in_output = current is not None and current.output is not None
            if transcript and in_output and not line.startswith("$ "):
                assert current is not None and current.output is not None
                if line.strip().isdigit():  # what `echo $?` printed
                    current.status = int(line)
                else:
                    current.output.append(line)
                continue
            match = _COMMAND.match(line)
            if match is None or (transcript and not match.group(1)):
                continue
            current = Command(
                str(page.relative_to(ROOT)),
                number,
                " ".join(line.removeprefix("$ ").split()),
                [] if transcript else None,
            )
            found.append(current)
    return found


ALL = [c for p in pages() for c in commands(p)]


def _id(command: Command) -> str:
    return f"{command.page}:{command.line}"


def _parser(program: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = import_module(
        program.replace("-", "_") + "._cli"
    ).build_parser()
    return parser


def _argv(command: Command) -> list[str]:
    argv = shlex.split(command.text.split(" < ")[0], comments=True)
    return argv[1:]


def test_no_command_slips_by() -> None:
    print(  # noqa: T201 - the counts, in -s/-rA
        f"{len(ALL)} CLI commands on {len({c.page for c in ALL})} pages,"
        f" {len(RUNNABLE)} run, {sum(map(_is_synopsis, ALL))} usage lines"
    )
    assert len(RUNNABLE) >= KNOWN_RUNNABLE, [_id(c) for c in RUNNABLE]
    assert len(ALL) >= KNOWN_COMMANDS, [_id(c) for c in ALL]
    assert {c.program for c in ALL} == set(PROGRAMS)
    unused = {p for p in NOT_OFFLINE if not any(c.text.startswith(p) for c in ALL)}
    assert not unused, f"NOT_OFFLINE entries no page shows: {unused}"


@pytest.mark.parametrize("command", ALL, ids=_id)
def test_the_command_parses(
    command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _files(tmp_path)  # @FILE arguments are read while parsing
    monkeypatch.chdir(tmp_path)
    parser = _parser(command.program)
    if _is_synopsis(command):
        # a usage line: its subcommand path exists, and each flag it names
        words = [
            w
            for w in shlex.split(command.text, comments=True)[1:]
            if re.fullmatch(r"[a-z][a-z-]*", w)
        ]
        if "PROVIDER" in command.text:  # the flags of any provider's form
            paths = [
                [*words, provider]
                for provider in ("bunny", "cloudfront", "google", "akamai", "cloudflare")
            ]
        else:
            paths = [words]
        usage = ""
        for path in paths:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
                parser.parse_args([*path, "--help"])
            usage += out.getvalue()
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", command.text):
            assert flag in usage, f"{command.text}: {flag} is not an option of this command"
        return
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            parser.parse_args(_argv(command))
        except SystemExit as exc:
            pytest.fail(f"{command.text}: {err.getvalue().strip()} (exit {exc.code})")


RUNNABLE = [c for c in ALL if not _not_offline(c) and not _is_synopsis(c)]
RUN_PAGES = sorted({c.page for c in RUNNABLE})


def _files(folder: Path) -> None:
    """The reader's files the commands name."""
    (folder / "key.txt").write_text("docs-bunny-security-key\n")
    (folder / "bunny.key").write_text("docs-bunny-security-key\n")
    (folder / "secret.txt").write_text("docs-turn-rest-secret\n")
    (folder / "secrets.txt").write_text("docs-turn-rest-secret\n")
    (folder / "body.json").write_text('{"event_type":"payment_succeeded"}')
    (folder / "srv" / "tracks" / "tracks").mkdir(parents=True)
    (folder / "srv" / "tracks" / "tracks" / "kept.mp3").write_bytes(b"ID3kept")
    (folder / "srv" / "tracks" / "tracks" / "orphan.mp3").write_bytes(b"ID3orphan")
    (folder / "keys.txt").write_text("tracks/kept.mp3\n")
    (folder / "upload-sessions").mkdir()


def _matches(expected: list[str], actual: str) -> bool:
    lines = [line for line in actual.splitlines() if line.strip()]
    patterns = [
        OUTPUT_PATTERNS.get(line) or ".*".join(map(re.escape, re.split(r"…|\.\.\.", line)))
        for line in expected
        if line.strip()
    ]
    return len(lines) == len(patterns) and all(
        re.fullmatch(p, a) for p, a in zip(patterns, lines, strict=True)
    )


def _bin(program: str) -> str:
    found = shutil.which(program, path=str(Path(sys.executable).parent))
    assert found, f"{program} is not installed beside {sys.executable}"
    return found


@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_page_commands_run(page: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    _files(tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CDN_", "WEBRTC_", "VEZA_", "HYPERSWITCH_", "STRIPE_"))
    }
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "HS_KEY": "whsec_docs_key",
        "SIGNED_URL": "",
    }
    if "/ledger/" in page or "veza-ledger" in page:  # "or $VEZA_DATABASE_URL"
        env["VEZA_DATABASE_URL"] = "sqlite:///ledger.db"
        # every ledger page starts from a database at the head (its release step)
        subprocess.run(
            [_bin("veza-ledger"), "db", "upgrade", "--database-url", "sqlite:///ledger.db"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
        )
    if page.endswith("reconciliation.md"):  # the sweep reads the provider: its fake
        from veza_payments.testing import FakeHyperswitch

        psp = FakeHyperswitch().start()
        request.addfinalizer(psp.stop)
        env |= {"HYPERSWITCH_API_KEY": psp.api_key, "HYPERSWITCH_BASE_URL": psp.url}
    for command in [c for c in RUNNABLE if c.page == page]:
        shell = _substituted(command.text)
        result = subprocess.run(
            ["bash", "-c", shell],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        shown = f"{command.page}:{command.line}: {shell}\n{result.stdout}{result.stderr}"
        assert result.returncode == command.status, shown
        assert "Traceback" not in result.stderr, shown
        if command.output is not None:
            expected = command.output
            for old, new in OUTPUT_SUBSTITUTIONS.items():
                expected = [line.replace(old, new) for line in expected]
            assert _matches(expected, result.stdout + result.stderr), shown
        if "webhook-sign" in shell:
            env["SIG"] = result.stdout.strip()
        if " sign bunny " in shell:
            env["SIGNED_URL"] = result.stdout.strip()
