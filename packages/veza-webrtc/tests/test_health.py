"""CachedIceProbe: one probe per ttl, one prober at a time, a readiness string."""

import threading

import pytest

from veza_webrtc import CachedIceProbe, IceConfig, ProbeResult

CONFIG = IceConfig(turn_urls="turn:turn.example:3478", turn_secrets=["s"])
GOOD = ProbeResult(url="turn:turn.example:3478", transport="udp", reachable=True)
BAD = ProbeResult(url="turn:turn.example:3478", transport="udp", failure="udp_blocked")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_results_are_reused_for_ttl_seconds():
    clock, calls = Clock(), []

    def probe(config, *, timeout):
        calls.append((config, timeout))
        return [GOOD]

    cached = CachedIceProbe(CONFIG, ttl=30, timeout=2.5, clock=clock, probe=probe)
    assert cached.results() == [GOOD]
    clock.now += 29.9
    assert cached.status() == "ok"
    assert calls == [(CONFIG, 2.5)]
    clock.now += 0.1
    cached.results()
    assert len(calls) == 2


def test_status_names_each_failed_url():
    cached = CachedIceProbe(CONFIG, probe=lambda config, *, timeout: [GOOD, BAD])
    assert cached.status() == "failed: turn:turn.example:3478 udp_blocked"


def test_concurrent_callers_share_one_probe():
    started, release, calls = threading.Event(), threading.Event(), []

    def blocking_probe(config, *, timeout):
        calls.append(1)
        started.set()
        assert release.wait(5)  # blocks inside the call until the second caller waits
        return [GOOD]

    cached = CachedIceProbe(CONFIG, ttl=60, probe=blocking_probe)
    answers = []
    first = threading.Thread(target=lambda: answers.append(cached.results()))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: answers.append(cached.results()))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the running probe, not starting another
    release.set()
    first.join(5)
    second.join(5)
    assert answers == [[GOOD], [GOOD]]
    assert calls == [1]


def test_a_probe_that_raises_is_not_cached():
    outcomes = iter([RuntimeError("boom"), [GOOD]])

    def flaky(config, *, timeout):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    cached = CachedIceProbe(CONFIG, probe=flaky)
    with pytest.raises(RuntimeError):
        cached.results()
    assert cached.results() == [GOOD]


def test_repr_shows_no_secret():
    config = IceConfig(turn_urls="turn:t", turn_secrets=["Sup3r-Secr3t"])
    assert "Sup3r-Secr3t" not in repr(CachedIceProbe(config))
