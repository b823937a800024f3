"""Browser end-to-end: Playwright driving Debian's Chromium (headless, no download).

1. Upload through the page in chunks, then play: the ``<audio>`` time advances, the
   network shows 302 -> signed URL -> 200/206 from the edge, the origin is hit once.
2. HLS with hls.js (the pinned copy the app's install ships) of segments cut by ffmpeg:
   every segment carries the directory token and succeeds.
3. A relayed WebRTC call between two pages through coturn with ephemeral credentials;
   then a wrong TURN secret shows the warning instead of hanging.
4. An expired link shows a clear error, not a blank player.

A screenshot of each page goes to the test output folder.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from veza_reference._media import publish_hls, tone
from veza_services import free_udp_tcp_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from veza_reference._demo import demo_environment, run_demo

    env = demo_environment(
        {
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "PATH": os.environ.get("PATH", ""),
        },
        str(tmp_path_factory.mktemp("browser")),
        0,
    )
    running = run_demo(env)
    yield running
    running.stop()


def _wait(page: Any, expression: str, timeout: float = 15_000) -> Any:
    """Poll ``expression`` until truthy.

    ``page.wait_for_function`` compiles its predicate with ``eval`` inside the page, which
    the app's CSP (rightly) forbids; ``page.evaluate`` goes through the DevTools
    protocol, outside the page's policy, so the pages are tested under their real CSP.
    """
    import time

    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {expression!r}"
            raise AssertionError(msg)
        time.sleep(0.1)


def _login(page: Any, app: Any, user_id: str) -> None:
    """Log in through the page's form, as a person would."""
    page.fill("#login-user", user_id)
    page.fill("#login-password", app.services.extra["demo_passwords"][user_id])
    page.click("#login")
    _wait(page, f"document.getElementById('whoami').textContent === {user_id!r}", timeout=15_000)


def _audio_time(page: Any) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def test_upload_in_chunks_then_play(
    browser: Any, app: Any, tmp_path: Path, output_dir: Path
) -> None:
    audio = tone([392.0, 440.0, 494.0, 523.3] * 6)  # ~530 kB: three chunks of 256 KiB
    file = tmp_path / "browser tone.wav"
    file.write_bytes(audio)
    page = browser.new_page()
    responses: list[tuple[int, str]] = []
    page.on("response", lambda r: responses.append((r.status, r.url)))
    page.goto(app.url + "/")
    _login(page, app, "artist-ada")
    page.set_input_files("#file", str(file))
    page.fill("#title", "Browser upload")
    page.click("#upload")
    _wait(
        page,
        "document.getElementById('upload-status').textContent.startsWith('uploaded')",
        timeout=30_000,
    )
    progress = page.evaluate(
        "[document.getElementById('progress').value, document.getElementById('progress').max]"
    )
    assert progress[0] == progress[1] >= 3  # every chunk went, with progress
    track_id = page.evaluate("document.getElementById('upload-status').dataset.trackId")
    before = app.edge.stats["origin_fetches"]
    row = f"tr[data-track-id='{track_id}'] button.play"
    for _ in range(2):  # play, and play again: the second comes from the edge's cache
        page.click(row)
        _wait(page, "document.getElementById('player').currentTime > 0.5", timeout=20_000)
    page.screenshot(path=str(output_dir / "1-upload-and-play.png"), full_page=True)
    assert _audio_time(page) > 0.5
    stream = [(s, u) for s, u in responses if f"/api/v1/tracks/{track_id}/stream" in u]
    edge = [(s, u) for s, u in responses if u.startswith(app.edge_url) and "token=HS256-" in u]
    assert stream and all(s == 302 for s, _ in stream)
    assert edge and all(s in (200, 206) for s, _ in edge)
    assert app.edge.stats["origin_fetches"] == before + 1
    page.close()


def test_hls_playback_with_hls_js(browser: Any, app: Any, ffmpeg: str, output_dir: Path) -> None:
    publish_hls(
        app.services, "demo-3", tone([261.6, 329.6, 392.0, 523.3] * 3)
    )  # ~6 s, 2 s segments
    page = browser.new_page()
    segments: list[tuple[int, str]] = []
    page.on(
        "response", lambda r: segments.append((r.status, r.url)) if r.url.endswith(".ts") else None
    )
    page.goto(app.url + "/")
    _login(page, app, "admin")  # admins play every track
    _wait(page, "window.Hls !== undefined", timeout=20_000)
    page.click("tr[data-track-id='demo-3'] button.play-hls")
    _wait(page, "document.getElementById('player').currentTime > 2.5", timeout=30_000)
    page.screenshot(path=str(output_dir / "2-hls.png"), full_page=True)
    assert len(segments) >= 2
    assert all(status == 200 for status, _ in segments), segments
    assert all("/bcdn_token=HS256-" in url and url.startswith(app.edge_url) for _, url in segments)
    assert page.evaluate("document.getElementById('player-error').textContent") == ""
    page.close()


def _call_app(tmp_path_factory: pytest.TempPathFactory, turn_url: str, secret: str) -> Any:
    from veza_reference._demo import demo_environment, run_demo

    env = demo_environment(
        {
            "WEBRTC_TURN_URLS": turn_url,
            "WEBRTC_TURN_SECRET": secret,
            "WEBRTC_TURN_TTL": "600",
            "VEZA_WORKERS": "false",
            "VEZA_FAST_PASSWORD_HASHING": "true",
        },
        str(tmp_path_factory.mktemp("call")),
        0,
    )
    return run_demo(env)


def _call(browser: Any, app: Any) -> tuple[Any, Any]:
    url = app.url
    context = browser.new_context()
    password = app.services.extra["demo_passwords"]["listener"]
    logged_in = context.request.post(
        url + "/api/v1/auth/login", data={"user_id": "listener", "password": password}
    )
    assert logged_in.ok, logged_in.text()
    callee = context.new_page()
    callee.goto(url + "/call?role=callee&relay=1")
    caller = context.new_page()
    caller.goto(url + "/call?role=caller&relay=1")
    return caller, callee


def test_relayed_call_through_coturn(
    browser: Any, coturn: Any, tmp_path_factory: pytest.TempPathFactory, output_dir: Path
) -> None:
    from veza_webrtc import coturn_config

    port = free_udp_tcp_port()
    low = random.randrange(40000, 60000, 200)
    coturn(
        coturn_config(
            realm="veza.test",
            secrets=["turn-secret"],
            listening_ip="127.0.0.1",
            relay_ip="127.0.0.1",
            listening_port=port,
            min_port=low,
            max_port=low + 199,
            allow_loopback_peers=True,
        ),
        port,
    )
    turn_url = f"turn:127.0.0.1:{port}?transport=udp"
    good = _call_app(tmp_path_factory, turn_url, "turn-secret")
    try:
        caller, callee = _call(browser, good)
        _wait(caller, "window.vezaCall && window.vezaCall.localType !== null", timeout=30_000)
        _wait(callee, "window.vezaCall.received.length > 0", timeout=10_000)
        _wait(caller, "window.vezaCall.received.length > 0", timeout=10_000)
        caller.screenshot(path=str(output_dir / "3-call-relay.png"), full_page=True)
        result = caller.evaluate("window.vezaCall")
        assert result["state"] == "connected"
        assert result["localType"] == "relay" and result["remoteType"] == "relay"
        assert result["received"] == ["pong from callee"]
        assert callee.evaluate("window.vezaCall.received") == ["ping from caller"]
        caller.context.close()
    finally:
        good.stop()
    wrong = _call_app(tmp_path_factory, turn_url, "not-the-turn-secret")
    try:
        caller, _callee = _call(browser, wrong)
        _wait(caller, "window.vezaCall && window.vezaCall.warning", timeout=30_000)
        caller.screenshot(path=str(output_dir / "3-call-wrong-secret.png"), full_page=True)
        assert "could not connect" in caller.evaluate(
            "window.vezaCall.warning"
        ) or "did not connect" in caller.evaluate("window.vezaCall.warning")
        assert caller.is_visible("#warning")
        assert caller.evaluate("window.vezaCall.reason") == "relay-refused"
        assert "relay (TURN server) refused" in caller.inner_text("#warning")
        caller.context.close()
    finally:
        wrong.stop()


def test_an_expired_link_shows_a_clear_error(
    browser: Any, app: Any, output_dir: Path, login: Any
) -> None:
    import time

    owner = login(app.url, "artist-ada", app.services.extra["demo_passwords"]["artist-ada"])
    link = owner.get("/api/v1/tracks/demo-1/link", params={"expires_in": 1}).json()["url"]
    time.sleep(2.1)
    page = browser.new_page()
    page.goto(app.url + "/")
    page.evaluate("(url) => window.veza.playUrl(url, 'expired link')", link)
    _wait(page, "document.getElementById('player-error').textContent.length > 0", timeout=15_000)
    page.screenshot(path=str(output_dir / "4-expired-link.png"), full_page=True)
    message = page.inner_text("#player-error")
    assert "expired" in message.lower()
    page.close()


def test_a_title_full_of_markup_is_shown_as_text(
    browser: Any, app: Any, tmp_path: Path, output_dir: Path
) -> None:
    """Stored XSS: the title goes through the API into every visitor's page, as text."""
    title = (
        '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
        '<b onmouseover="window.__xss=3">bold</b><style>body{display:none}</style>'
    )
    file = tmp_path / "markup.wav"
    file.write_bytes(tone([300.0] * 2))
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(app.url + "/")
    _login(page, app, "artist-ada")
    page.set_input_files("#file", str(file))
    page.fill("#title", title)
    page.click("#upload")
    _wait(page, "document.getElementById('upload-status').textContent.startsWith('uploaded')")
    track_id = page.evaluate("document.getElementById('upload-status').dataset.trackId")
    visitor = browser.new_page()  # another visitor, anonymous, loads the page
    visitor.goto(app.url + "/")
    row = f"tr[data-track-id='{track_id}']"
    _wait(visitor, f'document.querySelector("{row}") !== null')
    for each in (page, visitor):
        each.reload()
        _wait(each, f'document.querySelector("{row}") !== null')
        shown = each.evaluate(f'document.querySelector("{row} td.title").textContent')
        assert shown == title
        assert (
            each.evaluate(
                "document.querySelectorAll("
                "'#tracks img, #tracks script, #tracks b, #tracks style').length"
            )
            == 0
        )
        assert each.evaluate("window.__xss") is None
        assert each.evaluate("getComputedStyle(document.body).display") != "none"
    visitor.screenshot(path=str(output_dir / "5-markup-title.png"), full_page=True)
    assert dialogs == []
    page.close()
    visitor.close()


def _pay_then_play_at_once(buyer: Any, row: str) -> None:
    """Pay, and press Play the moment "Paid" shows, before the track list has reloaded.

    The track list reloads after "Paid" appears; that reload is held until Play has
    started, so Play is clicked in the window a quick buyer has (CI once clicked there
    and the page still said "Buy this track").
    """
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    orders_list = re.compile(r"/api/v1/orders$")
    buyer.route(orders_list, hold)
    buyer.click("#order button.pay")
    _wait(buyer, "document.getElementById('order-status').dataset.status === 'paid'", 30_000)
    buyer.click(f"{row} button.play")
    _wait(buyer, "document.getElementById('player').currentTime > 0.5", 20_000)
    assert held, "the track list's reload was not held: Play was not tested in the window"
    for route in held:
        route.continue_()
    buyer.unroute(orders_list)
    _wait(buyer, f'document.querySelector("{row} .owned") !== null')


def test_buy_pay_play_then_the_seller_refunds(browser: Any, app: Any, output_dir: Path) -> None:
    buyer_context = browser.new_context()
    buyer = buyer_context.new_page()
    buyer.goto(app.url + "/")
    _login(buyer, app, "listener")
    row = "tr[data-track-id='demo-2']"
    buyer.click(f"{row} button.play")  # not bought: a clear message, no playback
    _wait(buyer, "document.getElementById('player-error').textContent.length > 0")
    assert "buy this track" in buyer.inner_text("#player-error").lower()
    buyer.click(f"{row} button.buy")
    _wait(buyer, "document.getElementById('order-status') !== null")
    order_id = buyer.evaluate("document.getElementById('order').dataset.orderId")
    _pay_then_play_at_once(buyer, row)
    buyer.screenshot(path=str(output_dir / "6-buyer-paid-and-playing.png"), full_page=True)
    assert buyer.query_selector("#order button.refund-part") is None  # buyers do not refund
    # another user's TURN credentials: refused, from the buyer's own logged-in page
    other = buyer.evaluate(
        "fetch('/api/v1/config/webrtc?user_id=artist-ada').then((r) => r.status)"
    )
    assert other == 403
    own = buyer.evaluate("fetch('/api/v1/config/webrtc').then((r) => r.status)")
    assert own == 200

    seller_context = browser.new_context()
    seller = seller_context.new_page()
    seller.goto(app.url + "/")
    _login(seller, app, "artist-ada")
    seller.click("#my-orders")
    _wait(seller, f"document.querySelector(\"li[data-order-id='{order_id}']\") !== null")
    seller.click(f"li[data-order-id='{order_id}'] button.open-order")
    _wait(seller, "document.querySelector('#order button.refund-part') !== null")
    seller.click("#order button.refund-part")
    _wait(
        seller,
        "document.getElementById('order-status').dataset.status === 'partially_refunded'",
        30_000,
    )
    seller.screenshot(path=str(output_dir / "7-seller-refunded.png"), full_page=True)

    anonymous_context = browser.new_context()
    anonymous = anonymous_context.new_page()
    anonymous.goto(app.url + "/")
    refused = anonymous.evaluate(
        f"""fetch('/api/v1/orders/{order_id}/refunds', {{
              method: 'POST', headers: {{'content-type': 'application/json'}}, body: '{{}}'
            }}).then((r) => r.status)"""
    )
    assert refused == 401
    turn = anonymous.evaluate("fetch('/api/v1/config/webrtc').then((r) => r.status)")
    assert turn == 401
    anonymous.goto(app.url + "/call?role=caller")
    _wait(anonymous, "window.vezaCall && window.vezaCall.warning")
    assert "log in" in anonymous.evaluate("window.vezaCall.warning").lower()
    order = app.services.ledger.orders.get(order_id)
    assert order.refunded_amount == 100 and order.status == "partially_refunded"
    for context in (buyer_context, seller_context, anonymous_context):
        context.close()


def test_errors_are_sentences_and_a_stale_success_goes(
    browser: Any, app: Any, output_dir: Path
) -> None:
    """A refund the order cannot take, in a buyer's words: no JSON, no cents, no states."""
    context = browser.new_context()
    buyer = context.new_page()
    buyer.goto(app.url + "/")
    _login(buyer, app, "listener")
    _wait(buyer, "document.querySelector(\"tr[data-track-id='demo-1'] button.buy\") !== null")
    buyer.click("tr[data-track-id='demo-1'] button.buy")
    _wait(buyer, "document.querySelector('#order button.pay') !== null")
    buyer.click("#order button.pay")
    _wait(buyer, "document.getElementById('order-status').dataset.status === 'paid'", 30_000)
    order_id = buyer.evaluate("document.getElementById('order').dataset.orderId")
    context.close()

    context = browser.new_context()
    seller = context.new_page()
    seller.goto(app.url + "/")
    _login(seller, app, "artist-ada")
    seller.evaluate(f"window.veza.refund({{order_id: {order_id!r}, currency: 'EUR'}}, null)")
    _wait(seller, "document.getElementById('order-status').dataset.status === 'refunded'", 30_000)
    assert seller.inner_text("#order-message").startswith("Refund of ")  # a success shown
    # the API refuses a second refund (nothing left): the page says so in words, and the
    # success above is gone
    seller.evaluate(f"window.veza.refund({{order_id: {order_id!r}, currency: 'EUR'}}, 100)")
    _wait(seller, "document.getElementById('order-message').className === 'error'")
    message = seller.inner_text("#order-message")
    assert message.startswith("Could not refund: "), message
    assert "Refund of" not in message
    for internal in ("{", "->", "_refunded", "cents", "EUR", "Error", "transition", " 100 "):
        assert internal not in message, (internal, message)
    seller.screenshot(path=str(output_dir / "8-refund-refused-in-words.png"), full_page=True)
    context.close()


def test_a_file_that_is_not_audio_is_refused_by_its_content(
    browser: Any, app: Any, output_dir: Path
) -> None:
    """A PDF named .mp3 passes the picker and the type check; the server reads it and says no."""
    from veza_reference._audio import NOT_AUDIO

    context = browser.new_context()
    page = context.new_page()
    page.goto(app.url + "/")
    _login(page, app, "artist-ada")
    assert page.get_attribute("#file", "accept").startswith("audio/*")
    page.set_input_files(
        "#file",
        files=[{"name": "song.mp3", "mimeType": "audio/mpeg", "buffer": b"%PDF-1.7\n" * 100}],
    )
    page.click("#upload")
    _wait(page, "document.getElementById('upload-status').className === 'error'")
    assert page.inner_text("#upload-status") == f"Upload refused: {NOT_AUDIO}"
    assert page.query_selector("tr td.title >> text=song.mp3") is None
    page.screenshot(path=str(output_dir / "9-not-audio.png"), full_page=True)
    context.close()


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", ["€1.99", "¥199", "KWD 1.999"]),
        ("fr-FR", ["1,99 €", "199 JPY", "1,999 KWD"]),
    ],
)
def test_money_follows_the_currency_exponent(
    browser: Any, app: Any, locale: str, expected: list[str]
) -> None:
    """Minor units over 10**exponent: EUR 2 digits, JPY none, KWD 3; the reader's locale."""
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.goto(app.url + "/")
    shown = page.evaluate(
        "[[199, 'EUR'], [199, 'JPY'], [1999, 'KWD']].map(([m, c]) => window.vezaUi.money(m, c))"
    )
    context.close()
    # Intl separates with (narrow) no-break spaces; compare with plain ones
    assert [" ".join(s.replace("\u202f", " ").replace("\xa0", " ").split()) for s in shown] == (
        expected
    )
