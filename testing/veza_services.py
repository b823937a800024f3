"""Shared pytest fixtures for the real services veza's tests talk to.

The convention (written down in docs/contributing.md):

* A test that needs a service asks for its fixture. When the service is missing the
  test is **skipped** with a reason that says how to get it; under ``CI=true`` it
  **fails** instead, so a CI run can never go green by skipping.
* PostgreSQL: ``VEZA_TEST_DATABASE_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Every pytest process gets its
  own freshly created database, dropped at the end, so parallel sessions never collide.
* S3: moto's standalone server (``moto.server.ThreadedMotoServer``) on an ephemeral
  127.0.0.1 port, reached over real HTTP.

This module is test infrastructure. It imports service client libraries lazily so that
a package's isolated test environment only needs what that package's tests use.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def in_ci() -> bool:
    """Whether this run is CI, where a missing service is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def service_unavailable(service: str, reason: str, how_to_get_it: str) -> NoReturn:
    """Skip the current test locally, fail it under CI, with a reason naming the fix."""
    message = f"{service} is unavailable: {reason}. To run this test: {how_to_get_it}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago (for servers that need one)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ PostgreSQL


def _libpq_url(sqlalchemy_url: str) -> str:
    """Turn ``postgresql+psycopg://…`` into the plain ``postgresql://…`` libpq reads."""
    parts = urlsplit(sqlalchemy_url)
    scheme = parts.scheme.split("+", 1)[0]
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL to a PostgreSQL database created for this pytest process alone."""
    base_url = os.environ.get("VEZA_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        import psycopg
    except ImportError:
        service_unavailable(
            "PostgreSQL",
            "the psycopg driver is not installed in this environment",
            "install the package's test extra (it declares psycopg)",
        )
    database = f"veza_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_libpq_url(base_url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        service_unavailable(
            "PostgreSQL",
            f"cannot connect to {urlsplit(base_url).hostname}:{urlsplit(base_url).port}"
            f" ({type(exc).__name__})",
            "start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
            " or point VEZA_TEST_DATABASE_URL at a server with trust auth",
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield _with_database(base_url, database)
    finally:
        with psycopg.connect(_libpq_url(base_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# ------------------------------------------------------------------ S3, served by moto


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """The endpoint URL of a moto standalone S3 server on an ephemeral 127.0.0.1 port.

    State is shared for the whole session: tests create uniquely named buckets.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        service_unavailable(
            "moto S3 server",
            "moto[server] is not installed in this environment",
            "install the package's test extra (it declares moto[server,s3])",
        )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy credentials moto accepts, isolated from any real AWS configuration."""
    creds = {
        "aws_access_key_id": "testing-access-key",
        "aws_secret_access_key": "testing-secret-key",
        "region_name": "us-east-1",
    }
    for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return creds


# ------------------------------------------------------------------ coturn (Debian's)


_STUN_MAGIC = 0x2112A442


def stun_binding_ok(host: str, port: int, timeout: float = 0.5) -> bool:
    """Send one STUN Binding request over UDP; true when a Binding success answers."""
    import os as _os
    import struct

    transaction = _os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, _STUN_MAGIC) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            data, _ = sock.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == transaction


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP+TCP port found")


class TurnClientResult:
    """What ``turnutils_uclient`` reported: messages sent and received through the relay."""

    def __init__(self, returncode: int, output: str) -> None:
        import re

        self.returncode = returncode
        self.output = output
        totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", output, re.MULTILINE)
        self.sent, self.received = (int(totals[-1][0]), int(totals[-1][1])) if totals else (0, 0)
        self.forbidden_peer = "403 (Forbidden IP)" in output
        self.allocation_refused = "Cannot complete Allocation" in output
        self.lost_none = "Total lost packets 0 " in output

    @property
    def relayed(self) -> bool:
        """Data went out through the relay and came back, nothing lost."""
        return (
            self.returncode == 0
            and self.sent > 0
            and self.sent == self.received
            and (self.lost_none)
        )


class CoturnServer:
    """A running ``turnserver`` on 127.0.0.1 with an echo peer beside it."""

    def __init__(self, workdir: Path, config_text: str, port: int) -> None:
        import subprocess

        self.port = port
        self.workdir = workdir
        self.config_path = workdir / "turnserver.conf"
        self.config_path.write_text(config_text)
        self.log_path = workdir / "turnserver.log"
        self._process = subprocess.Popen(
            [
                "turnserver",
                "-c",
                str(self.config_path),
                "--db",
                str(workdir / "turndb"),
                "--log-file",
                str(self.log_path),
                "--simple-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.peer_port = free_port(socket.SOCK_DGRAM)
        self._peer = subprocess.Popen(
            ["turnutils_peer", "-L", "127.0.0.1", "-p", str(self.peer_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not stun_binding_ok("127.0.0.1", port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.log_path.read_text() if self.log_path.exists() else ""
                self.stop()
                raise RuntimeError(f"turnserver did not start on port {port}:\n{log[-2000:]}")
            time.sleep(0.1)

    def allocate_and_relay(
        self, username: str, credential: str, *, peer: str = "127.0.0.1", messages: int = 5
    ) -> TurnClientResult:
        """Allocate a relay with these credentials and echo ``messages`` through it."""
        import subprocess

        result = subprocess.run(
            [
                "turnutils_uclient",
                "-u",
                username,
                "-w",
                credential,
                "-e",
                peer,
                "-r",
                str(self.peer_port),
                "-p",
                str(self.port),
                "-n",
                str(messages),
                "-m",
                "1",
                "-l",
                "100",
                "127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return TurnClientResult(result.returncode, result.stdout + result.stderr)

    def log(self) -> str:
        """Coturn's log so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def refused_credentials_of(self, username: str) -> bool:
        """Whether coturn logged an authentication refusal for ``username``."""
        return f"check_stun_auth: Cannot find credentials of user <{username}>" in self.log()

    def stop(self) -> None:
        """Stop the server and the echo peer."""
        for process in (self._process, self._peer):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except Exception:  # noqa: BLE001 - best effort, then kill
                    process.kill()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Callable[[str, int], CoturnServer]]:
    """Start Debian's coturn with a given config text on a given port (a factory).

    The test renders the configuration (the project's own generator, so the real server
    validates it) and picks the port with ``free_udp_tcp_port()``.
    """
    import shutil

    for binary in ("turnserver", "turnutils_uclient", "turnutils_peer"):
        if shutil.which(binary) is None:
            service_unavailable(
                "coturn", f"{binary} is not on PATH", "apt-get install coturn (.ci/run does)"
            )
    servers: list[CoturnServer] = []

    def start(config_text: str, port: int) -> CoturnServer:
        workdir = tmp_path / f"coturn-{len(servers)}"
        workdir.mkdir()
        server = CoturnServer(workdir, config_text, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# ------------------------------------------------------------------ TURN probe helpers
# (veza-webrtc's probe tests and bench/webrtc.py: a TURNS certificate, and coturn's own
# client over UDP, TCP or TLS so its results can be compared with the probe's)


def self_signed_certificate(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throw-away EC certificate and key for TURNS on ``ip``, made with openssl."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        service_unavailable("openssl", "openssl is not on PATH", "apt-get install openssl")
    cert, key = directory / "turns-cert.pem", directory / "turns-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={ip}", "-addext", f"subjectAltName=IP:{ip}", "-days", "2",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


def uclient(
    server: CoturnServer,
    username: str,
    credential: str,
    *,
    port: int | None = None,
    transport: str = "udp",
    peer: str = "127.0.0.1",
    messages: int = 5,
) -> tuple[TurnClientResult, float]:
    """Run ``turnutils_uclient`` over ``udp``, ``tcp`` or ``tls``; result and seconds taken."""
    import subprocess

    flags = {"udp": [], "tcp": ["-t"], "tls": ["-t", "-S"]}[transport]
    started = time.perf_counter()
    result = subprocess.run(
        [
            "turnutils_uclient", *flags, "-u", username, "-w", credential,
            "-e", peer, "-r", str(server.peer_port), "-p", str(port or server.port),
            "-n", str(messages), "-m", "1", "-l", "100", "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    return TurnClientResult(result.returncode, result.stdout + result.stderr), elapsed


# ------------------------------------------------------------------ nginx (Debian's)
# (veza-cdn's probe tests: a real edge with ``secure_link``, configured right and wrong)


class NginxServer:
    """A running ``nginx`` on 127.0.0.1 serving one directory under a given ``location``."""

    def __init__(self, workdir: Path, location: str, root: Path, binary: str = "nginx") -> None:
        import subprocess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        config = workdir / "nginx.conf"
        config.write_text(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {workdir}/nginx.pid;\nerror_log {workdir}/logs/error.log;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"  access_log {workdir}/logs/access.log;\n"
            f"  client_body_temp_path {workdir}/body;\n  proxy_temp_path {workdir}/proxy;\n"
            f"  fastcgi_temp_path {workdir}/fcgi;\n  uwsgi_temp_path {workdir}/uwsgi;\n"
            f"  scgi_temp_path {workdir}/scgi;\n"
            "  types { video/mp2t ts; audio/mpeg mp3; application/vnd.apple.mpegurl m3u8; }\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n    root {root};\n"
            f"    location / {{\n{location}\n    }}\n  }}\n}}\n"
        )
        stderr = workdir / "logs" / "stderr.log"
        with stderr.open("wb") as sink:
            self._process = subprocess.Popen(
                [binary, "-p", str(workdir), "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    error = stderr.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"nginx did not start: {error}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except Exception:  # noqa: BLE001 - best effort, then kill
                self._process.kill()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str, Path], NginxServer]]:
    """Start Debian's nginx with a given ``location /`` body over a root folder (a factory)."""
    import shutil

    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        service_unavailable(
            "nginx", "nginx is not installed", "apt-get install nginx (.ci/run does)"
        )
    servers: list[NginxServer] = []

    def start(location: str, root: Path) -> NginxServer:
        workdir = tmp_path / f"nginx-{len(servers)}"
        workdir.mkdir()
        server = NginxServer(workdir, location, root, binary)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
