"""The demo offline: every page, nothing fetched from anywhere but 127.0.0.1 (issue 17).

Headless Chromium (Debian's) tours the demo as `veza-demo` runs it, with no
``VEZA_HLS_JS_PATH``: hls.js and Swagger UI must come from the app's own install. Every
request to a host other than 127.0.0.1 is aborted by the test (``route.abort``), and
the tour asserts that no request failed (an aborted CDN fetch would be one), that the
console logged no error and that no page raised (an uncaught promise rejection is a
``pageerror``). On the way it plays a plain track, an HLS track through hls.js (its
rendition cut by the app's background job, with ffmpeg), and renders the API viewer.
Screenshots go to the test's temporary folder; the path is printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1"}


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def offline_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`veza-demo`'s app with no hls.js given by hand (no VEZA_HLS_JS_PATH)."""
    from veza_reference._demo import demo_environment, run_demo

    env = demo_environment(
        {
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "VEZA_LOGIN_RATE": "200/60",
            "PATH": os.environ.get("PATH", ""),
        },
        str(tmp_path_factory.mktemp("offline")),
        0,
    )
    assert "VEZA_HLS_JS_PATH" not in env
    running = run_demo(env)
    yield running
    running.stop()


class Tour:
    """A browser context that can reach 127.0.0.1 only, and records every failure."""

    def __init__(self, browser: Any, shots: Path) -> None:
        self.context = browser.new_context()
        self.shots = shots
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.responses: list[tuple[int, str]] = []
        self.context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def page(self) -> Any:
        page = self.context.new_page()
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on(
            "console",
            lambda m: (
                self.console_errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.page_errors.append(f"{page.url}: {e}"))
        page.on("response", lambda r: self.responses.append((r.status, r.url)))
        return page

    def shot(self, page: Any, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


def _wait(page: Any, expression: str, timeout: float = 20.0) -> Any:
    """Poll ``expression`` through DevTools (the pages' CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {expression!r}"
            raise AssertionError(msg)
        time.sleep(0.1)


def test_every_page_offline(browser: Any, offline_demo: Any, ffmpeg: str, tmp_path: Path) -> None:
    app = offline_demo
    assert app.services.config.hls_js_path is None  # hls.js comes from the install
    shots = tmp_path / "offline-tour"
    shots.mkdir()
    print(f"\noffline tour screenshots: {shots}")  # noqa: T201 - where to look
    tour = Tour(browser, shots)
    password = app.services.extra["demo_passwords"]["admin"]

    # logged in before the first page: an anonymous page asks /api/v1/auth/me, whose
    # 401 Chromium logs as a console error (the app's answer for "nobody", not a fault)
    logged_in = tour.context.request.post(
        app.url + "/api/v1/auth/login", data={"user_id": "admin", "password": password}
    )
    assert logged_in.ok, logged_in.text()
    page = tour.page()
    page.goto(app.url + "/")
    _wait(page, "document.getElementById('whoami').textContent === 'admin'")  # admins play all
    _wait(page, "document.querySelectorAll('#tracks tr').length >= 3")
    page.click("tr[data-track-id='demo-1'] button.play")
    _wait(page, "document.getElementById('player').currentTime > 0.5")
    tour.shot(page, "1-index-play")

    # HLS: the background job cuts the seeded tracks' renditions; the page shows it
    # progress and then offers Play HLS, played by hls.js from the app's own install
    _wait(page, "document.querySelector(\"tr[data-track-id='demo-2'] button.play-hls\")", 90)
    _wait(page, "document.getElementById('hls-status').textContent === ''", 90)  # all cut
    page.click("tr[data-track-id='demo-2'] button.play-hls")
    _wait(page, "document.getElementById('player').currentTime > 2.5", 30)
    assert page.evaluate("typeof window.Hls === 'function' && window.Hls.isSupported()")
    assert page.evaluate("document.getElementById('player').src.startsWith('blob:')")
    assert page.evaluate("document.getElementById('player-error').textContent") == ""
    tour.shot(page, "2-index-hls")
    segments = [(s, u) for s, u in tour.responses if urlsplit(u).path.endswith(".ts")]
    assert len(segments) >= 2 and all(s == 200 for s, _ in segments), segments
    assert (200, app.url + "/vendor/hls.min.js") in tour.responses

    # the API viewer, offline: Swagger UI renders the app's operations
    docs = tour.page()
    for path in ("/docs", "/redoc"):
        docs.goto(app.url + path)
        _wait(docs, "document.querySelectorAll('.opblock').length > 20")
        title = docs.evaluate("document.querySelector('.info .title').textContent")
        assert "veza reference app" in title
        tour.shot(docs, f"3-api{path.replace('/', '-')}")

    # the call page, both sides in this browser (no relay needed for a same-host call)
    callee = tour.page()
    callee.goto(app.url + "/call?role=callee")
    caller = tour.page()
    caller.goto(app.url + "/call?role=caller")
    _wait(caller, "window.vezaCall.state === 'connected' && window.vezaCall.received.length")
    tour.shot(caller, "4-call")

    # the metrics the index links to
    metrics = tour.page()
    metrics.goto(app.url + "/metrics")
    assert "veza_app_playback_redirects" in metrics.content()
    tour.shot(metrics, "5-metrics")

    for opened in tour.context.pages:
        opened.close()
    tour.context.close()
    assert tour.blocked == [], tour.blocked
    assert tour.failed == [], tour.failed
    assert tour.console_errors == [], tour.console_errors
    assert tour.page_errors == [], tour.page_errors
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-index-play.png",
        "2-index-hls.png",
        "3-api-docs.png",
        "3-api-redoc.png",
        "4-call.png",
        "5-metrics.png",
    ]


@pytest.mark.parametrize("path", ["/", "/call", "/docs", "/redoc"])
def test_no_page_names_another_host(offline_demo: Any, path: str) -> None:
    """Every page's policy and markup stay on this origin: 'self', no inline script."""
    import re

    import httpx

    answer = httpx.get(offline_demo.url + path)
    assert answer.status_code == 200
    policy = {
        words[0]: words[1:]
        for part in answer.headers["content-security-policy"].split(";")
        if (words := part.split())
    }
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert "https:" not in answer.headers["content-security-policy"]
    assert not re.search(r"<script>|\s(src|href)=\"(https?:)?//", answer.text)
    for asset in re.findall(r"\s(?:src|href)=\"(/[^\"]+)\"", answer.text):
        assert httpx.get(offline_demo.url + asset).status_code == 200, asset


def test_the_page_says_when_ffmpeg_is_missing(
    browser: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No ffmpeg on the server: no rendition, and the page says why in words."""
    from veza_reference._demo import demo_environment, run_demo
    from veza_reference._hls_jobs import NO_FFMPEG

    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the server process finds no ffmpeg
    env = demo_environment(
        {"VEZA_FAST_PASSWORD_HASHING": "true", "VEZA_WORKERS": "false", "PATH": str(empty)},
        str(tmp_path_factory.mktemp("no-ffmpeg")),
        0,
    )
    app = run_demo(env)
    try:
        tour = Tour(browser, tmp_path)
        password = app.services.extra["demo_passwords"]["listener"]
        logged_in = tour.context.request.post(
            app.url + "/api/v1/auth/login", data={"user_id": "listener", "password": password}
        )
        assert logged_in.ok, logged_in.text()
        page = tour.page()
        page.goto(app.url + "/")
        _wait(page, "document.querySelectorAll('#tracks tr').length >= 3")
        message = _wait(page, "document.getElementById('hls-status').textContent")
        assert message == NO_FFMPEG
        assert page.evaluate("document.getElementById('hls-status').className") == "error"
        assert page.evaluate("document.querySelectorAll('button.play-hls').length") == 0
        tour.shot(page, "no-ffmpeg")
        tour.context.close()
    finally:
        app.stop()
    assert tour.blocked == [] and tour.failed == [], (tour.blocked, tour.failed)
    assert tour.console_errors == [] and tour.page_errors == []
