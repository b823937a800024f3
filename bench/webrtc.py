"""veza-webrtc: credential issuing and per-request configuration cost, in one run.

Run: ``nox -s bench -- webrtc``. Rows:

* ephemeral credentials per second beside the floor (the bare HMAC-SHA1 + base64 of the
  same username, as a user would write it);
* ``to_rtc_configuration`` on a configuration parsed once at start-up, beside building
  it from the environment on every request (what the original endpoint did).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import platform
import sys
import timeit

from veza_webrtc import IceConfig, ephemeral_credentials

ENV = {
    "WEBRTC_STUN_URLS": "stun:stun.example.org:3478",
    "WEBRTC_TURN_URLS": "turn:turn.example.org:3478?transport=udp,"
    "turn:turn.example.org:3478?transport=tcp,turns:turn.example.org:5349?transport=tcp",
    "WEBRTC_TURN_SECRET": "a-long-turn-rest-api-shared-secret-value",
    "WEBRTC_TURN_TTL": "86400",
}
SECRET = ENV["WEBRTC_TURN_SECRET"]
NOW = 1_700_000_000


def per_call(fn) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number


def main() -> None:
    username = f"{NOW + 86400}:user-42"
    floor = per_call(
        lambda: base64.b64encode(
            hmac.digest(SECRET.encode(), username.encode(), hashlib.sha1)
        ).decode()
    )
    ours = per_call(lambda: ephemeral_credentials(SECRET, user_id="user-42", ttl=86400, now=NOW))
    config = IceConfig.from_env(ENV)
    once = per_call(lambda: config.to_rtc_configuration(user_id="user-42", now=NOW))
    every = per_call(
        lambda: IceConfig.from_env(ENV).to_rtc_configuration(user_id="user-42", now=NOW)
    )
    print(
        f"# veza-webrtc benchmark: {platform.python_implementation()} "
        f"{sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    rows = [
        ("ephemeral_credentials", ours, "floor: HMAC-SHA1 + base64", floor),
        ("to_rtc_configuration (parsed once)", once, "from_env + build per request", every),
    ]
    print(f"{'operation':38} {'veza':>10} {'per second':>12}  {'against':30} {'theirs':>10}")
    for name, mine, against, theirs in rows:
        print(
            f"{name:38} {mine * 1e6:>8.2f}µs {1 / mine:>12,.0f}  {against:30} "
            f"{theirs * 1e6:>8.2f}µs  ({mine / theirs:.2f}x)"
        )


if __name__ == "__main__":
    main()
