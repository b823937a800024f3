"""The veza-webrtc command line."""

import json
import os
import subprocess
import sys

from veza_webrtc import check_credentials


def run(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WEBRTC_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "veza_webrtc", *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
    )


def test_ice_config_from_the_environment():
    result = run(
        "ice-config",
        "--user",
        "u7",
        env={
            "WEBRTC_STUN_URLS": "stun:stun.example.org",
            "WEBRTC_TURN_URLS": "turn:turn.example.org?transport=udp",
            "WEBRTC_TURN_SECRET": "s3cret",
        },
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    turn = config["iceServers"][1]
    assert turn["username"].endswith(":u7")
    assert check_credentials(["s3cret"], turn["username"], credential=turn["credential"])
    assert config["hasTurn"] is True


def test_ice_config_bad_variable_exits_2_naming_it():
    result = run("ice-config", env={"WEBRTC_STUN_URLS": "stun://oops"})
    assert result.returncode == 2
    assert "WEBRTC_STUN_URLS" in result.stderr
    assert "stun://oops" in result.stderr


def test_credentials_command():
    result = run(
        "credentials",
        "--secret",
        "s3cret",
        "--user",
        "alice",
        "--ttl",
        "3600",
        "--now",
        "1700000000",
    )
    assert result.returncode == 0
    out = json.loads(result.stdout)
    assert out["username"] == "1700003600:alice"
    assert out["ttl"] == 3600
    assert out["expires_at"] == 1700003600
    assert check_credentials(
        ["s3cret"], out["username"], credential=out["credential"], now=1700000000
    )


def test_credentials_refusal_does_not_echo_the_secret():
    result = run("credentials", "--secret", "TopSecretValue", "--user", "a:b", "--ttl", "3600")
    assert result.returncode == 2
    assert "separator" in result.stderr
    assert "TopSecretValue" not in result.stderr
