"""Probe results for a readiness endpoint: cached, bounded in time, one probe at a time.

A ``/readyz`` is polled every few seconds by every load balancer and orchestrator; each
probe opens a TURN allocation. :class:`CachedIceProbe` reuses the last results for
``ttl`` seconds and lets only one caller probe at a time (the others wait for that
probe's results instead of starting their own), so the TURN server sees at most one
allocation per ``ttl`` whatever the polling rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from veza_webrtc._config import IceConfig, IceServers
from veza_webrtc._probe import ProbeResult, probe_ice_servers

Probe = Callable[..., list[ProbeResult]]


class CachedIceProbe:
    """The ICE servers of ``config`` probed at most once per ``ttl`` seconds.

    Args:
        config: The application's ICE configuration (credentials are issued per probe).
        ttl: Seconds a set of results is reused.
        timeout: Seconds each URL's probe may take (the URLs are probed concurrently).
        clock: Monotonic clock (tests pass a fake).
        probe: The probe function (tests pass a fake that blocks).
    """

    def __init__(
        self,
        config: IceServers | IceConfig,
        *,
        ttl: float = 60.0,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        probe: Probe = probe_ice_servers,
    ) -> None:
        self._config = config
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._probe = probe
        self._lock = threading.Lock()
        self._results: list[ProbeResult] | None = None
        self._at = 0.0

    def __repr__(self) -> str:
        return f"CachedIceProbe(config={self._config!r}, ttl={self._ttl}, timeout={self._timeout})"

    def results(self) -> list[ProbeResult]:
        """The latest results, probing first when they are older than ``ttl``."""
        with self._lock:
            if self._results is None or self._clock() - self._at >= self._ttl:
                self._results = self._probe(self._config, timeout=self._timeout)
                self._at = self._clock()
            return list(self._results)

    def status(self) -> str:
        """``"ok"``, or ``"failed: <url> <failure>; ..."`` for a readiness check's dict."""
        failed = [f"{r.url} {r.failure}" for r in self.results() if not r.ok]
        return "ok" if not failed else "failed: " + "; ".join(failed)
