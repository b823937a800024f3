"""Playback never blocks on a CDN fault; metrics live only in the caller's registry."""

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

from veza_cdn import (
    CDN,
    CDNConfig,
    CDNConfigurationError,
    CDNMetrics,
    PlaybackResolver,
    Secret,
    SigningError,
)

ENABLED = CDNConfig(
    enabled=True, provider="bunny", base_url="https://z.b-cdn.net", security_key=Secret("k")
)


class BrokenSigner:
    def sign_url(self, url: str, *, expires: int) -> str:
        raise SigningError(f"edge key store unreachable ({len(url)}, {expires})")


def presign(key: str) -> str:
    return f"https://s3.example/{key}?X-Amz-Signature=abc"


def test_cdn_url_is_preferred_when_enabled():
    resolution = PlaybackResolver(CDN(ENABLED), presign).resolve("tracks/a.mp3")
    assert resolution.source == "cdn"
    assert resolution.url.startswith("https://z.b-cdn.net/tracks/a.mp3?token=HS256-")


def test_disabled_cdn_uses_the_fallback():
    resolution = PlaybackResolver(CDN(CDNConfig()), presign).resolve("tracks/a.mp3")
    assert (resolution.source, resolution.reason) == ("fallback", "cdn_disabled")
    assert resolution.url == presign("tracks/a.mp3")


def test_signing_failure_falls_back_and_is_counted(caplog):
    registry = CollectorRegistry()
    metrics = CDNMetrics(registry)
    cdn = CDN(ENABLED, signer=BrokenSigner(), metrics=metrics)
    resolution = PlaybackResolver(cdn, presign, metrics=metrics).resolve("tracks/a.mp3")
    assert resolution.source == "fallback"
    assert resolution.reason == "signing_failed:SigningError"
    assert (
        registry.get_sample_value(
            "veza_cdn_playback_resolutions_total",
            {"source": "fallback", "reason": "signing_failed:SigningError"},
        )
        == 1.0
    )
    assert registry.get_sample_value("veza_cdn_signing_failures_total", {"provider": "bunny"}) == 1
    assert "SigningError" in caplog.text


def test_when_both_paths_fail_the_fallback_error_is_raised_chained():
    def broken_fallback(key: str) -> str:
        raise OSError("storage down")

    resolver = PlaybackResolver(CDN(ENABLED, signer=BrokenSigner()), broken_fallback)
    with pytest.raises(OSError, match="storage down") as info:
        resolver.resolve("k")
    assert isinstance(info.value.__cause__, SigningError)


def test_two_signers_and_services_share_one_metrics_object():
    registry = CollectorRegistry()
    metrics = CDNMetrics(registry)
    first, second = CDN(ENABLED, metrics=metrics), CDN(ENABLED, metrics=metrics)
    first.signed_url("a")
    second.signed_url("b")
    assert registry.get_sample_value("veza_cdn_signed_urls_total", {"provider": "bunny"}) == 2


def test_a_second_metrics_object_on_one_registry_is_a_clear_error():
    registry = CollectorRegistry()
    CDNMetrics(registry)
    with pytest.raises(CDNConfigurationError, match="one CDNMetrics per registry"):
        CDNMetrics(registry)


def test_two_applications_in_one_process_do_not_collide():
    for _ in range(2):
        CDN(ENABLED, metrics=CDNMetrics(CollectorRegistry())).signed_url("a")


def test_importing_twice_registers_nothing_globally():
    # in a fresh interpreter: reloading modules here would replace classes other tests use
    code = (
        "import importlib, sys, prometheus_client\n"
        "before = set(prometheus_client.REGISTRY._names_to_collectors)\n"
        "import veza_cdn\n"
        "for name in [m for m in sys.modules if m.startswith('veza_cdn')]:\n"
        "    importlib.reload(sys.modules[name])\n"
        "veza_cdn.CDN(veza_cdn.CDNConfig(enabled=True, provider='bunny',"
        " base_url='https://z.b-cdn.net', security_key=veza_cdn.Secret('k'))).signed_url('a')\n"
        "assert set(prometheus_client.REGISTRY._names_to_collectors) == before\n"
        "print('clean')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "clean", result.stderr


def test_metrics_need_a_registry():
    with pytest.raises(CDNConfigurationError, match="CollectorRegistry"):
        CDNMetrics(None)  # type: ignore[arg-type]
