"""``veza-cdn probe``: the edge is asked, and its wrong answers are named.

Proven against two real edges on 127.0.0.1: veza's own ``LocalEdge`` (every provider's
token, over HTTP) and Debian's nginx with ``secure_link`` checking Bunny's MD5 form,
configured right and in the three ways operators get it wrong (no token check at all,
no expiry check, no IP binding in the hash). The diagnosis table is also checked check
by check with an edge whose every answer the test decides.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings, strategies as st

from veza_cdn import (
    CDN,
    AkamaiSigner,
    BunnySigner,
    CachePolicy,
    CDNConfig,
    CDNConfigurationError,
    CloudFrontSigner,
    GoogleCDNSigner,
    probe_cdn,
)
from veza_cdn._cli import main
from veza_cdn._probe import OTHER_IP, EdgeAnswer, tamper
from veza_cdn.testing import ORIGIN_SECRET_HEADER, LocalEdge, secret_matches
from veza_services import free_port

SECRET = "origin-secret"
FILES = {
    "hls/1/a.ts": b"segment-bytes",
    "tracks/a.mp3": b"ID3-audio-bytes",
    "tracks/a.wav": b"RIFF-bytes",
}
NOW = 1_900_000_000


class _Origin:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = FILES.get(unquote(self.path.removeprefix("/origin/")))
                if not secret_matches(self.headers.get(ORIGIN_SECRET_HEADER), SECRET):
                    self.send_response(403)
                    body = b""
                elif body is None:
                    self.send_response(404)
                    body = b""
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/origin"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def origin() -> Iterator[_Origin]:
    server = _Origin()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _edge(origin: _Origin, signer: object) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    edge = LocalEdge(
        CDN(CDNConfig(enabled=False), signer=signer),  # type: ignore[arg-type]
        base,
        origin_url=origin.url,
        origin_secret=SECRET,
    )
    with edge.serve(port=port) as url:
        yield url


SIGNERS = {
    "bunny-hs256": lambda ec: BunnySigner("bunny-key"),
    "bunny-sha256": lambda ec: BunnySigner("bunny-key", scheme="sha256"),
    "bunny-md5": lambda ec: BunnySigner("bunny-key", scheme="md5"),
    "google": lambda ec: GoogleCDNSigner("g", "nZtRohdNF9m3cKM24IcK4w=="),
    "akamai": lambda ec: AkamaiSigner("0123456789abcdef"),
    "cloudfront": lambda ec: CloudFrontSigner("K1", ec),
}


@pytest.mark.parametrize("provider", sorted(SIGNERS))
@pytest.mark.parametrize("key", ["hls/1/a.ts", "tracks/a.mp3"])
def test_a_correct_edge_passes_every_check(origin, ec_key, provider, key):
    signer = SIGNERS[provider](ec_key)
    for base in _edge(origin, signer):
        report = probe_cdn(f"{base}/{key}", signer)
        assert report.ok, report.diagnosis
        outcomes = {c.name: (c.outcome, c.status) for c in report.checks}
        assert outcomes == {
            "valid": ("served", 206),  # one byte asked, one byte served
            "unsigned": ("refused", 403),
            "tampered": ("refused", 403),
            "expired": ("refused", 403),
        }


def test_ip_binding_is_checked_with_the_probers_own_address(origin):
    signer = BunnySigner("bunny-key")
    for base in _edge(origin, signer):
        report = probe_cdn(f"{base}/hls/1/a.ts", signer, ip_bound=True, client_ip="127.0.0.1")
        assert report.ok, report.diagnosis
        check = report.check("other_ip")
        assert check is not None
        assert (check.outcome, check.status) == ("refused", 403)
        # bound to the wrong address, the valid token itself is refused: said as such
        wrong = probe_cdn(f"{base}/hls/1/a.ts", signer, ip_bound=True, client_ip="192.0.2.99")
        assert not wrong.ok
        assert "refuses a valid token" in wrong.diagnosis[0]


def test_an_edge_with_another_key_refuses_valid_tokens(origin):
    for base in _edge(origin, BunnySigner("the-edge-key")):
        report = probe_cdn(f"{base}/hls/1/a.ts", BunnySigner("the-apps-key"))
        assert not report.ok
        assert report.check("valid").outcome == "refused"
        assert report.diagnosis[0].startswith("the edge refuses a valid token (403)")


def test_a_cache_policy_the_edge_does_not_send_is_named(origin):
    signer = BunnySigner("bunny-key")
    for base in _edge(origin, signer):
        report = probe_cdn(f"{base}/hls/1/a.ts", signer, cache_policy=CachePolicy(600))
        assert not report.ok
        assert "Cache-Control is 'public, max-age=86400, immutable'" in report.diagnosis[0]
        assert "'public, max-age=600, immutable'" in report.diagnosis[0]
        # a media type without a policy (wav) is not compared
        assert probe_cdn(f"{base}/tracks/a.wav", signer, cache_policy=CachePolicy(600)).ok


def test_an_unreachable_edge_is_one_failed_check():
    port = free_port()  # nothing listens there
    report = probe_cdn(f"http://127.0.0.1:{port}/a.ts", BunnySigner("k"))
    assert [c.name for c in report.checks] == ["valid"]
    assert report.checks[0].outcome == "unreachable"
    assert not report.ok
    assert report.diagnosis[0].startswith("the edge is unreachable")


def test_bad_arguments_are_configuration_errors():
    with pytest.raises(CDNConfigurationError, match="absolute"):
        probe_cdn("/relative.ts", BunnySigner("k"))
    with pytest.raises(CDNConfigurationError, match="client_ip"):
        probe_cdn("http://127.0.0.1:9/a.ts", BunnySigner("k"), ip_bound=True)
    with pytest.raises(CDNConfigurationError, match="cannot bind a token to an IP"):
        probe_cdn(
            "http://127.0.0.1:9/a.ts",
            GoogleCDNSigner("g", "nZtRohdNF9m3cKM24IcK4w=="),
            ip_bound=True,
            client_ip="127.0.0.1",
        )


# ------------------------------------------------------------------ the diagnosis table


URL = "https://cdn.example/hls/7/seg.ts"


def _scripted(served: set[str], signer: BunnySigner) -> tuple[dict[str, str], object]:
    """An edge whose answer to each of the probe's URLs the test decides."""
    valid = signer.sign_url(URL, expires=NOW + 300, user_ip="198.51.100.7")
    urls = {
        "valid": valid,
        "unsigned": URL,
        "tampered": tamper(valid, URL),
        "expired": signer.sign_url(URL, expires=NOW - 3600),
        "other_ip": signer.sign_url(URL, expires=NOW + 300, user_ip=OTHER_IP),
    }
    by_url = {u: name for name, u in urls.items()}

    def fetch(url: str) -> EdgeAnswer:
        name = by_url[url]
        ok = name == "valid" or name in served
        return EdgeAnswer(200 if ok else 403, "public, max-age=86400, immutable")

    return urls, fetch


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        (set(), []),
        (
            {"unsigned", "tampered", "expired", "other_ip"},
            ["the edge serves URLs without a valid token: token authentication is off"],
        ),
        (
            {"expired"},
            ["the edge serves expired tokens: it checks the signature, not the expiry"],
        ),
        (
            {"other_ip"},
            ["the edge serves tokens bound to another IP: IP binding is off at the edge"],
        ),
        ({"tampered"}, ["the edge serves tampered tokens"]),
        ({"unsigned"}, ["the edge serves the URL without a token"]),
        (
            {"expired", "other_ip"},
            ["the edge serves expired tokens", "the edge serves tokens bound to another IP"],
        ),
    ],
)
def test_each_wrong_answer_has_its_diagnosis(served, expected):
    signer = BunnySigner("k")
    _, fetch = _scripted(served, signer)
    report = probe_cdn(URL, signer, ip_bound=True, client_ip="198.51.100.7", fetch=fetch, now=NOW)
    assert len(report.diagnosis) == len(expected)
    for sentence, start in zip(report.diagnosis, expected, strict=True):
        assert sentence.startswith(start)
    assert report.ok is (not served)
    for check in report.checks:
        assert check.ok is (check.name not in served)


# ------------------------------------------------------------------ tampering


SEGMENT = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_"),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(SEGMENT, min_size=1, max_size=4),
    form=st.sampled_from(
        ["bunny-hs256", "bunny-dir", "bunny-sha256", "bunny-md5", "google", "akamai", "cf"]
    ),
    query=st.sampled_from(["", "a=1", "quality=hi&x=y"]),
)
def test_a_tampered_token_never_verifies(ec_key, segments, form, query):
    """For every provider and URL shape, the probe's tampered URL is one the signer refuses."""
    url = "https://cdn.example/" + "/".join(segments) + ".ts" + (f"?{query}" if query else "")
    signers = {
        "bunny-hs256": BunnySigner("k"),
        "bunny-dir": BunnySigner("k"),
        "bunny-sha256": BunnySigner("k", scheme="sha256"),
        "bunny-md5": BunnySigner("k", scheme="md5"),
        "google": GoogleCDNSigner("g", "nZtRohdNF9m3cKM24IcK4w=="),
        "akamai": AkamaiSigner("0123456789abcdef"),
        "cf": CloudFrontSigner("K1", ec_key),
    }
    signer = signers[form]
    if form == "bunny-dir":
        signed = signer.sign_url(url, expires=NOW + 60, directory=True)
    else:
        signed = signer.sign_url(url, expires=NOW + 60)
    cdn = CDN(CDNConfig(enabled=False), signer=signer, clock=lambda: float(NOW))
    assert cdn.verify(signed)
    changed = tamper(signed, url)
    assert changed != signed
    assert len(changed) == len(signed)  # one character changed, the shape kept
    assert not cdn.verify(changed)


# ------------------------------------------------------------------ nginx secure_link


KEY = "nginx-probe-key"
CACHE = 'add_header Cache-Control "public, max-age=86400, immutable";\n'
CHECKED = CACHE + (
    "secure_link $arg_token,$arg_expires;\n"
    'secure_link_md5 "{key}$uri$arg_expires{ip}";\n'
    'if ($secure_link = "") {{ return 403; }}\n'
    'if ($secure_link = "0") {{ return 410; }}\n'
)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "hls" / "1").mkdir(parents=True)
    (root / "hls" / "1" / "a.ts").write_bytes(b"segment-bytes")
    (root / "a.mp3").write_bytes(b"ID3-audio-bytes")
    return root


def test_nginx_secure_link_configured_right(nginx, media):
    server = nginx(CHECKED.format(key=KEY, ip=""), media)
    report = probe_cdn(f"{server.url}/a.mp3", BunnySigner(KEY, scheme="md5"))
    assert report.ok, report.diagnosis
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {"valid": 206, "unsigned": 403, "tampered": 403, "expired": 410}


def test_nginx_secure_link_with_the_client_address(nginx, media):
    server = nginx(CHECKED.format(key=KEY, ip="$remote_addr"), media)
    signer = BunnySigner(KEY, scheme="md5")
    report = probe_cdn(f"{server.url}/a.mp3", signer, ip_bound=True, client_ip="127.0.0.1")
    assert report.ok, report.diagnosis
    assert report.check("other_ip").status == 403


def test_nginx_without_an_expiry_check_serves_expired_tokens(nginx, media):
    location = CACHE + f'secure_link $arg_token;\nsecure_link_md5 "{KEY}$uri$arg_expires";\n'
    location += 'if ($secure_link = "") { return 403; }\n'
    server = nginx(location, media)
    report = probe_cdn(f"{server.url}/a.mp3", BunnySigner(KEY, scheme="md5"))
    assert not report.ok
    assert report.diagnosis == (
        "the edge serves expired tokens: it checks the signature, not the expiry",
    )
    assert report.check("expired").status == 206


def test_nginx_without_secure_link_has_token_authentication_off(nginx, media):
    server = nginx(CACHE + "try_files $uri =404;", media)
    report = probe_cdn(f"{server.url}/a.mp3", BunnySigner(KEY, scheme="md5"))
    assert not report.ok
    assert report.diagnosis[0] == (
        "the edge serves URLs without a valid token: token authentication is off"
    )


def test_nginx_hashing_without_the_address_refuses_ip_bound_tokens(nginx, media):
    server = nginx(CHECKED.format(key=KEY, ip=""), media)
    report = probe_cdn(
        f"{server.url}/a.mp3", BunnySigner(KEY, scheme="md5"), ip_bound=True, client_ip="127.0.0.1"
    )
    assert not report.ok
    assert report.check("valid").status == 403


def test_an_edge_without_the_cache_policy_is_named(nginx, media):
    bare = 'secure_link $arg_token,$arg_expires;\nsecure_link_md5 "' + KEY + '$uri$arg_expires";'
    bare += '\nif ($secure_link = "") { return 403; }\nif ($secure_link = "0") { return 410; }'
    server = nginx(bare, media)
    report = probe_cdn(f"{server.url}/a.mp3", BunnySigner(KEY, scheme="md5"))
    wanted = "'public, max-age=86400, immutable'"
    assert report.diagnosis == (
        f"served, but the edge sends no Cache-Control; the cache policy says {wanted}",
    )


def test_a_missing_object_is_inconclusive_not_a_pass(nginx, media):
    server = nginx(CHECKED.format(key=KEY, ip=""), media)
    report = probe_cdn(f"{server.url}/missing.mp3", BunnySigner(KEY, scheme="md5"))
    assert not report.ok
    assert report.check("valid").outcome == "inconclusive"
    assert "has no such object (404)" in report.diagnosis[0]


# ------------------------------------------------------------------ the command line


def _env(monkeypatch, base: str, key: str, scheme: str = "hs256") -> None:
    for name, value in {
        "CDN_ENABLED": "true",
        "CDN_PROVIDER": "bunny",
        "CDN_BASE_URL": base,
        "CDN_SECURITY_KEY": key,
        "CDN_TOKEN_SCHEME": scheme,
    }.items():
        monkeypatch.setenv(name, value)


def test_cli_probe_exit_codes(monkeypatch, capsys, nginx, media):
    server = nginx(CHECKED.format(key=KEY, ip=""), media)
    _env(monkeypatch, server.url, KEY, "md5")
    assert main(["probe", "a.mp3"]) == 0
    out = capsys.readouterr().out
    assert "the edge checks tokens" in out
    assert KEY not in out

    off = nginx(CACHE + "try_files $uri =404;", media)
    _env(monkeypatch, off.url, KEY, "md5")
    assert main(["probe", "a.mp3", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["diagnosis"][0].endswith("token authentication is off")
    assert KEY not in json.dumps(data)


def test_cli_probe_without_configuration_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("CDN_ENABLED", "false")
    with pytest.raises(SystemExit) as exit_info:
        main(["probe", "https://cdn.example/a.ts"])
    assert exit_info.value.code == 2
    assert "CDN_ENABLED" in capsys.readouterr().err


def test_probe_of_a_closed_port_over_the_cli(monkeypatch, capsys):
    port = free_port()
    _env(monkeypatch, f"http://127.0.0.1:{port}", "k")
    assert main(["probe", "a.ts", "--timeout", "2"]) == 1
    assert "unreachable" in capsys.readouterr().out
    with socket.socket() as sock:  # the port really was closed
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_probe_is_one_span_with_an_event_per_check(origin):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for base in _edge(origin, BunnySigner("the-edge-key")):
        report = probe_cdn(
            f"{base}/hls/1/a.ts", BunnySigner("the-apps-key"), tracer_provider=provider
        )
    (span,) = exporter.get_finished_spans()
    assert span.name == "cdn probe"
    assert span.attributes["url.full"] == report.url
    assert span.attributes["veza.probe.ok"] is False
    assert [e.name for e in span.events] == ["valid", "unsigned", "tampered", "expired"]
    assert span.status.status_code is StatusCode.ERROR
    assert "token" not in json.dumps(dict(span.attributes))
