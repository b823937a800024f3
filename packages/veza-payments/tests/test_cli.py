"""The veza-payments command line, run as a real process."""

from __future__ import annotations

import subprocess
import sys

from veza_payments import sign_payload

BODY = '{"event_type":"payment_succeeded","description":"café"}'.encode()


def run(
    *args: str, body: bytes = BODY, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "veza_payments._cli", *args],
        input=body,
        capture_output=True,
        check=False,
        env=env,
    )


def test_sign_prints_the_header_value() -> None:
    result = run("webhook-sign", "--key", "k1")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == sign_payload(BODY, "k1")


def test_verify_exit_codes() -> None:
    good = sign_payload(BODY, "k1")
    assert run("webhook-verify", "--key", "k1", "--signature", good).returncode == 0
    bad = run("webhook-verify", "--key", "k2", "--signature", good)
    assert bad.returncode == 1 and b"invalid" in bad.stderr
    changed = run("webhook-verify", "--key", "k1", "--signature", good, body=BODY + b"\n")
    assert changed.returncode == 1


def test_key_from_the_environment_keeps_it_out_of_shell_history() -> None:
    env = {"HS_KEY": "k-env", "PATH": "/usr/bin:/bin"}
    result = run("webhook-sign", "--key-env", "HS_KEY", env=env)
    assert result.stdout.decode().strip() == sign_payload(BODY, "k-env")
    missing = run("webhook-sign", "--key-env", "NOPE", env=env)
    assert missing.returncode == 2 and b"NOPE" in missing.stderr


def test_usage_errors_exit_2() -> None:
    assert run("webhook-verify", "--key", "k").returncode == 2  # no --signature
    assert run("webhook-sign").returncode == 2  # no key


def test_version_prints_the_package_version() -> None:
    from veza_payments import __version__

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"veza-payments {__version__}"
