"""veza-webrtc: credential issuing, per-request configuration cost and TURN probe latency.

Run: ``nox -s bench -- webrtc`` (or ``uv run python bench/webrtc.py``). Rows:

* ephemeral credentials per second beside the floor (the bare HMAC-SHA1 + base64 of the
  same username, as a user would write it);
* ``to_rtc_configuration`` on a configuration parsed once at start-up, beside building
  it from the environment on every request (what the original endpoint did);
* ``probe_turn_url`` per TURN URL (UDP, TCP, TLS) against Debian's coturn on 127.0.0.1
  (Binding, Allocate with the 401 exchange, CreatePermission, 100 bytes echoed through
  the relay, Refresh 0), beside ``turnutils_uclient`` relaying 5 x 100 bytes on the same
  server and URL: what an operator runs today. uclient's wall time includes its own
  fixed pauses, so its line also shows the total it reports itself. Skipped (with a
  line saying so) when coturn is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import platform
import random
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from veza_webrtc import IceConfig, coturn_config, ephemeral_credentials, probe_turn_url

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
    servers = config.build()
    once = per_call(lambda: servers.to_rtc_configuration(user_id="user-42", now=NOW))
    every = per_call(
        lambda: IceConfig.from_env(ENV).build().to_rtc_configuration(user_id="user-42", now=NOW)
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


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if probe_turn_url(f"stun:127.0.0.1:{port}", timeout=0.3).ok:
            return
        time.sleep(0.1)
    raise RuntimeError("turnserver did not start")


def _wait_for_tls(port: int, cert: Path) -> None:
    # coturn's TLS listener may start later than its UDP one on a loaded machine
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if probe_turn_url(f"stuns:127.0.0.1:{port}", tls_context=context, timeout=1).ok:
            return
    raise RuntimeError("turnserver's TLS listener did not start")


def probe_rows(runs: int = 20) -> None:
    """Probe latency per TURN URL beside turnutils_uclient, on one coturn."""
    if not all(shutil.which(b) for b in ("turnserver", "turnutils_uclient", "openssl")):
        print("# probe latency: skipped (turnserver, turnutils_uclient or openssl missing)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cert, key = work / "cert.pem", work / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        port, tls_port, peer_port = _free_port(), _free_port(), _free_port()
        low = random.randrange(40000, 60000, 200)
        text = coturn_config(
            realm="veza.bench", secrets=[SECRET], listening_ip="127.0.0.1",
            relay_ip="127.0.0.1", listening_port=port, tls_listening_port=tls_port,
            tls_cert=str(cert), tls_key=str(key), min_port=low, max_port=low + 199,
            allow_loopback_peers=True,
        )  # fmt: skip
        # turnutils_uclient picks TLS 1.0/1.1/1.2 at random per connection and hangs when
        # refused: let this one server accept them so both clients run on the same server
        text = text.replace("\nno-tlsv1\n", "\n").replace("\nno-tlsv1_1\n", "\n")
        (work / "turnserver.conf").write_text(text)
        server = subprocess.Popen(
            ["turnserver", "-c", str(work / "turnserver.conf"), "--db", str(work / "db"),
             "--log-file", str(work / "log"), "--simple-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        peer = subprocess.Popen(
            ["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for(port)
            _wait_for_tls(tls_port, cert)
            _probe_table(port, tls_port, peer_port, cert, runs)
        finally:
            for process in (server, peer):
                process.terminate()
                process.wait(timeout=5)


def _probe_table(port: int, tls_port: int, peer_port: int, cert: Path, runs: int) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    urls = [
        ("udp", f"turn:127.0.0.1:{port}?transport=udp", port, []),
        ("tcp", f"turn:127.0.0.1:{port}?transport=tcp", port, ["-t"]),
        ("tls", f"turns:127.0.0.1:{tls_port}?transport=tcp", tls_port, ["-t", "-S"]),
    ]
    print()
    print(f"# probe latency per TURN URL, coturn on 127.0.0.1, {runs} probes per URL")
    print(
        f"{'url':42} {'probe median':>13} {'p90':>9} {'echoed':>7}   "
        f"{'uclient wall':>12} {'uclient says':>13} {'relayed':>9}"
    )
    for _, url, server_port, flags in urls:
        creds = ephemeral_credentials(SECRET, user_id="bench", ttl=600)
        times, echoed = [], set()
        for run in range(runs):
            # one user per probe: coturn frees a released allocation's user-quota slot
            # about a second after Refresh 0, and 20 probes take less than that
            creds = ephemeral_credentials(SECRET, user_id=f"bench{run}", ttl=600)
            result = probe_turn_url(
                url, username=creds.username, credential=creds.credential,
                tls_context=context, timeout=5,
            )  # fmt: skip
            if not result.ok:
                raise RuntimeError(f"{url}: {result.failure}: {result.diagnosis}")
            times.append(result.elapsed_ms)
            echoed.add(result.bytes_echoed)
        times.sort()
        started = time.perf_counter()
        uclient = subprocess.run(
            ["turnutils_uclient", *flags, "-c", "-z", "1", "-n", "5", "-m", "1", "-l", "100",
             "-u", creds.username, "-w", creds.credential, "-e", "127.0.0.1",
             "-r", str(peer_port), "-p", str(server_port), "127.0.0.1"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        out = uclient.stdout + uclient.stderr
        said = re.findall(r"Total transmit time is (\d+)", out)
        totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
        relayed = f"{totals[-1][1]}/{totals[-1][0]}" if totals else "0/0"
        print(
            f"{url:42} {statistics.median(times):>10.2f} ms {times[int(len(times) * 0.9)]:>6.2f} ms"
            f" {'/'.join(map(str, sorted(echoed))):>6}B   {wall:>10.2f} s "
            f"{(said[-1] + ' s') if said else '-':>13} {relayed:>8}"
        )


if __name__ == "__main__":
    main()
    probe_rows()
