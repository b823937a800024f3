"""What each page's examples leave to the reader, built from real parts.

A documentation block often starts from the reader's own objects: ``storage``, ``order``,
``api_key``. ``PAGE_SETUPS`` gives each page those names and nothing more (never a name
the example imports or defines itself), built on the packages' fakes: FakeHyperswitch
and FakeStripe as real HTTP servers, a SQLite ledger at the head, a local storage root,
the local CDN edge. A setup may also prepare a step between two blocks (``before``) and
check afterwards what the page claims (``after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

Namespace = dict[str, Any]
BUNNY_KEY = "docs-bunny-security-key"
CDN_BASE = "https://media.example.b-cdn.net"


@dataclass
class Page:
    """A page's hidden preamble: the reader's names, steps between blocks, checks after."""

    namespace: Namespace = field(default_factory=dict)
    before: dict[int, Callable[[Namespace], None]] = field(default_factory=dict)
    after: Callable[[Namespace], None] | None = None
    around: dict[int, Callable[[Namespace], contextlib.AbstractContextManager[Any]]] = field(
        default_factory=dict
    )


Setup = Callable[[pytest.FixtureRequest], Page]
PAGE_SETUPS: dict[str, Setup] = {}


def setup_for(*names: str) -> Callable[[Setup], Setup]:
    """Register a setup for one or more pages (paths relative to the repository)."""

    def register(setup: Setup) -> Setup:
        for name in names:
            PAGE_SETUPS[name] = setup
        return setup

    return register


@pytest.fixture
def page_setups() -> dict[str, Setup]:
    return PAGE_SETUPS


# ---------------------------------------------------------------- shared parts


def _enter(request: pytest.FixtureRequest, context: contextlib.AbstractContextManager[Any]) -> Any:
    """Enter a context manager for the test's duration."""
    stack = contextlib.ExitStack()
    request.addfinalizer(stack.close)
    return stack.enter_context(context)


def _env(request: pytest.FixtureRequest, **values: str) -> None:
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def _bunny_env(request: pytest.FixtureRequest, base_url: str = CDN_BASE) -> None:
    _env(
        request,
        CDN_ENABLED="true",
        CDN_PROVIDER="bunny",
        CDN_BASE_URL=base_url,
        CDN_SECURITY_KEY=BUNNY_KEY,
    )


def _tmp(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue("tmp_path")
    return path


def _local_storage(request: pytest.FixtureRequest) -> Any:
    from veza_storage import StorageConfig

    root = _tmp(request) / "objects"
    root.mkdir()
    return StorageConfig.from_env(
        {
            "VEZA_STORAGE_BACKEND": "local",
            "VEZA_STORAGE_LOCAL_ROOT": str(root),
            "VEZA_STORAGE_SIGNING_KEY": "docs-local-signing-key",
            "VEZA_STORAGE_PUBLIC_URL": "http://127.0.0.1:8000/files",
        },
        production=False,
    ).build()


def _ledger(request: pytest.FixtureRequest) -> tuple[Any, Any, str]:
    """A SQLite ledger at the head (``veza-ledger db upgrade`` done): engine, ledger, url."""
    from veza_ledger import Ledger, create_engine, upgrade

    url = f"sqlite:///{_tmp(request) / 'ledger.db'}"
    engine = create_engine(url)
    request.addfinalizer(engine.dispose)
    upgrade(engine)
    return engine, Ledger(engine), url


def _hyperswitch(request: pytest.FixtureRequest) -> Any:
    from veza_payments.testing import FakeHyperswitch

    return _enter(request, FakeHyperswitch())


def _pay_everything(psp: Any) -> Callable[[Namespace], None]:
    """The buyer pays every payment created so far (what the SDK and webhook do)."""

    def pay(_: Namespace) -> None:
        for payment_id in list(psp.payments):
            psp.set_payment_status(payment_id, "succeeded")

    return pay


def _row(**values: Any) -> types.SimpleNamespace:
    """A row of the reader's own table."""
    return types.SimpleNamespace(**values)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- the READMEs


@setup_for("packages/veza-cdn/README.md")
def _cdn_readme(request: pytest.FixtureRequest) -> Page:
    _bunny_env(request)

    def after(ns: Namespace) -> None:
        assert ns["url"].startswith(f"{CDN_BASE}/"), ns["url"]
        assert ns["cdn"].verify(ns["url"]), "the edge would refuse the resolved URL"

    return Page({"storage": _local_storage(request)}, after=after)


@setup_for("packages/veza-ledger/README.md")
def _ledger_readme(request: pytest.FixtureRequest) -> Page:
    _, _, url = _ledger(request)
    return Page({"url": url})


@setup_for("packages/veza-payments/README.md")
def _payments_readme(request: pytest.FixtureRequest) -> Page:
    psp = _hyperswitch(request)

    def after(ns: Namespace) -> None:
        ns["client"].close()
        assert list(psp.payments) == [ns["payment"].payment_id]
        assert [r["amount"] for r in psp.refunds.values()] == [500]

    return Page(
        {
            "api_key": psp.api_key,
            "base_url": psp.url,
            "order": _row(id="o-1"),
            "refund_row": _row(id="rf-1"),
        },
        before={1: _pay_everything(psp)},
        after=after,
    )


# ---------------------------------------------------------------- the reference app


@setup_for("docs/app/guide.md")
def _app_guide(request: pytest.FixtureRequest) -> Page:
    _env(request, VEZA_DATA_DIR=str(_tmp(request) / "data"), VEZA_PORT="0")

    def after(ns: Namespace) -> None:
        try:
            assert asyncio.run(_asgi_get(ns["app"], "/healthz")) == 200
        finally:
            ns["services"].close()

    return Page(after=after)


# ---------------------------------------------------------------- veza-cdn


def _pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@setup_for("docs/cdn/guide.md")
def _cdn_guide(request: pytest.FixtureRequest) -> Page:
    _bunny_env(request)
    exp = 1_900_000_000
    return Page(
        {
            "key": BUNNY_KEY,
            "storage": _local_storage(request),
            "track": _row(storage_key="tracks/8f3a/9c1e.mp3"),
            "security_key": BUNNY_KEY,
            "pem_bytes": _pem(),
            "url": "https://d.cloudfront.net/hls/x/index.m3u8",
            "exp": exp,
            "hex_key": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        }
    )


PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg-00001.ts\n#EXT-X-ENDLIST\n"


@setup_for("docs/cdn/hls.md")
def _cdn_hls(request: pytest.FixtureRequest) -> Page:
    from veza_cdn import CDN, BunnySigner, ExpiryPolicy

    _bunny_env(request, "https://cdn.example.com")

    def after(ns: Namespace) -> None:
        lines = ns["signed_text"].splitlines()
        (segment,) = [line for line in lines if "seg-00001.ts" in line]
        assert segment.startswith("https://cdn.example.com/"), segment
        assert segment.endswith("/hls/track-1/seg-00001.ts"), segment
        assert ns["cdn"].verify(segment), segment

    return Page(
        {
            "playlist_text": PLAYLIST,
            "signer": BunnySigner(BUNNY_KEY),
            "expiry": ExpiryPolicy(ttl=3600),
            "cdn": CDN.from_env(),
        },
        after=after,
    )


def _raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` byte for byte over a socket (no client library normalising it)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode("utf-8", "surrogateescape"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/"):  # the connection closed: judge the bytes
        return 999, answer
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@setup_for("docs/cdn/testing.md")
def _cdn_testing(request: pytest.FixtureRequest) -> Page:
    from veza_cdn import CDN, BunnySigner
    from veza_cdn.testing import LocalEdge

    port = _free_port()
    _bunny_env(request, f"http://127.0.0.1:{port}")
    cdn = CDN.from_env()
    secret = "docs-origin-secret"

    def edge_under_test(ns: Namespace) -> None:
        """The reader's edge: here veza's own, serving until the test ends."""
        edge = LocalEdge(
            cdn,
            f"http://127.0.0.1:{port}",
            origin_url="http://127.0.0.1:9/origin",
            origin_secret=secret,
        )
        base = _enter(request, edge.serve(port=port))
        signer = cdn.signer
        assert isinstance(signer, BunnySigner)  # CDN_PROVIDER=bunny: scoped URLs exist
        signed = signer.scoped(f"{base}/hls/1", expires=2_000_000_000)(f"{base}/hls/1/a.ts")
        ns.update(
            raw_get=_raw_get,
            edge_base=base,
            token_prefix=signed[len(base) : signed.index("/hls/1/a.ts")],
        )

    return Page({"cdn": cdn, "port": port, "secret": secret}, before={1: edge_under_test})


# ---------------------------------------------------------------- veza-ledger


def _paid_order(ledger: Any, order_id: str) -> Any:
    ledger.orders.create(
        buyer_id="b1",
        seller_id="s1",
        amount=1999,
        currency="EUR",
        fee_amount=300,
        order_id=order_id,
    )
    return ledger.orders.mark_paid(order_id)


@setup_for("docs/ledger/disputes.md")
def _ledger_disputes(request: pytest.FixtureRequest) -> Page:
    _, ledger, _ = _ledger(request)
    _paid_order(ledger, "order-1")

    def after(ns: Namespace) -> None:
        (dispute,) = ledger.disputes.of_order("order-1")
        assert dispute.status == "lost", dispute

    return Page({"ledger": ledger}, after=after)


@setup_for("docs/ledger/guide.md")
def _ledger_guide(request: pytest.FixtureRequest) -> Page:
    """The guide's flow, as tests/app/test_docs_flow.py checked it (issue 16), now here."""
    from veza_payments import HyperswitchClient, payment_id_for

    _, _, url = _ledger(request)
    _env(request, VEZA_DATABASE_URL=url)
    psp = _hyperswitch(request)
    namespace = "shop1"
    hyperswitch = _enter(
        request,
        HyperswitchClient(
            psp.api_key, base_url=psp.url, idempotency_namespace=namespace, sleep=lambda _s: None
        ),
    )

    def buyer_pays_before_mark_paid(ns: Namespace) -> None:
        reader_ledger = ns["ledger"]
        original = reader_ledger.orders.mark_paid

        def mark_paid(order_id: str, **kw: Any) -> Any:
            order = reader_ledger.orders.get(order_id)
            psp.set_payment_status(order.psp_payment_id or "", "succeeded")  # the buyer paid
            return original(order_id, **kw)

        reader_ledger.orders.mark_paid = mark_paid

    def after(ns: Namespace) -> None:
        order = ns["ledger"].orders.get("o-42")
        assert order.psp_payment_id == payment_id_for("o-42", namespace=namespace)
        assert order.psp_payment_id != payment_id_for("o-42")
        assert list(psp.payments) == [order.psp_payment_id]
        (refund,) = ns["ledger"].refunds.of_order("o-42")
        assert (refund.status, refund.hyperswitch_refund_id) == ("succeeded", *psp.refunds)
        ns["engine"].dispose()

    return Page(
        {"hyperswitch": hyperswitch, "order_id": "o-42"},
        before={1: buyer_pays_before_mark_paid},
        after=after,
    )


@setup_for("docs/ledger/migrations.md")
def _ledger_migrations(request: pytest.FixtureRequest) -> Page:
    import logging

    engine, _, url = _ledger(request)
    diffs: list[Any] = []
    return Page(
        {"engine": engine, "log": logging.getLogger("docs.example")},
        around={1: lambda _ns: _alembic_environment(request, url, diffs)},
        after=lambda _ns: _check_application_diffs(diffs),
    )


APP_MODELS = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Playlist(Base):
    __tablename__ = "playlists"
    id: Mapped[int] = mapped_column(primary_key=True)
"""


@contextlib.contextmanager
def _alembic_environment(
    request: pytest.FixtureRequest, url: str, diffs: list[Any]
) -> Iterator[None]:
    """Run the page's ``env.py`` as Alembic does, comparing the models with the database.

    The database is at the ledger's head and holds no application table: the
    comparison must propose the application's table and nothing of the ledger's.
    """
    import sys

    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    app = _tmp(request) / "app"
    (app / "myapp").mkdir(parents=True)
    (app / "myapp" / "__init__.py").write_text("")
    (app / "myapp" / "models.py").write_text(APP_MODELS)
    (app / "migrations" / "versions").mkdir(parents=True)
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.syspath_prepend(str(app))
    request.addfinalizer(
        lambda: [sys.modules.pop(m) for m in list(sys.modules) if m.startswith("myapp")]
    )
    config = Config()
    config.set_main_option("script_location", str(app / "migrations"))
    config.set_main_option("sqlalchemy.url", url)

    def compare(_revision: Any, context: Any) -> list[Any]:
        diffs.extend(compare_metadata(context, context.opts["target_metadata"]))
        return []

    with EnvironmentContext(config, ScriptDirectory.from_config(config), fn=compare):
        yield


def _check_application_diffs(diffs: list[Any]) -> None:
    assert [d[0] for d in diffs] == ["add_table"], diffs
    assert diffs[0][1].name == "playlists"


@setup_for("docs/ledger/reconciliation.md")
def _ledger_reconciliation(request: pytest.FixtureRequest) -> Page:
    from veza_payments import HyperswitchClient, StripeConnect
    from veza_payments.testing import FakeStripe

    engine, _, _ = _ledger(request)
    psp = _hyperswitch(request)
    stripe = _enter(request, FakeStripe())
    return Page(
        {
            "engine": engine,
            "hyperswitch_client": _enter(request, HyperswitchClient(psp.api_key, base_url=psp.url)),
            "stripe_connect": _enter(request, StripeConnect(stripe.api_key, base_url=stripe.url)),
        }
    )


# ---------------------------------------------------------------- veza-payments

WEBHOOK_KEY = "whsec_docs_payment_response_hash_key"


def _payments_env(request: pytest.FixtureRequest, psp: Any) -> None:
    _env(
        request,
        HYPERSWITCH_API_KEY=psp.api_key,
        HYPERSWITCH_BASE_URL=psp.url,
        HYPERSWITCH_WEBHOOK_KEYS=WEBHOOK_KEY,
    )


@setup_for("docs/payments/guide.md")
def _payments_guide(request: pytest.FixtureRequest) -> Page:
    """The guide's flow, as tests/app/test_docs_flow.py checked it (issue 16), now here."""
    from veza_payments import InMemoryWebhookLog, payment_id_for

    psp = _hyperswitch(request)
    _payments_env(request, psp)
    saved: list[str] = []

    def save(row: Any) -> None:
        """The reader's persistence: the provider must not hold the id yet."""
        provider_id = getattr(row, "psp_payment_id", None) or row.provider_refund_id
        held = psp.payments if provider_id.startswith("p_") else psp.refunds
        assert provider_id not in held, "stored after the provider call"
        saved.append(provider_id)
        if provider_id.startswith("r_"):  # the buyer paid before the seller refunds
            psp.set_payment_status(payment_id_for("o-7", namespace="shop1"), "succeeded")

    def checkout(client: Any, *, order_id: str) -> Any:
        """The reader's checkout, which the guide's test drives through a lost response."""
        return client.create_payment(order_id, amount=1999, currency="EUR")

    def first_block_done(ns: Namespace) -> None:
        ns["client"].close()
        assert saved == [*psp.payments, *psp.refunds]
        assert saved[0] == payment_id_for("o-7", namespace="shop1")

    def after(ns: Namespace) -> None:
        ns["client"].close()
        assert ns["intake"] is not None

    return Page(
        {
            "api_key": psp.api_key,
            "base_url": psp.url,
            "order": _row(id="o-7", psp_payment_id=None),
            "refund_row": _row(id="rf-7", provider_refund_id=None),
            "user": _row(id="u-1"),
            "return_url": "https://shop.example/back",
            "save": save,
            "log": InMemoryWebhookLog(),
            "checkout": checkout,
        },
        before={1: first_block_done},
        after=after,
    )


@setup_for("docs/payments/idempotency.md")
def _payments_idempotency(request: pytest.FixtureRequest) -> Page:
    def after(ns: Namespace) -> None:
        ns["client"].close()

    return Page({"api_key": "snd_docs_key"}, after=after)


@setup_for("docs/payments/probe.md")
def _payments_probe(request: pytest.FixtureRequest) -> Page:
    """The reader's deployed endpoint: a server verifying with WebhookIntake."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from veza_payments import InMemoryWebhookLog, WebhookIntake

    _payments_env(request, _hyperswitch(request))
    intake = WebhookIntake(InMemoryWebhookLog(), [WEBHOOK_KEY])

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            outcome = intake.handle(self.headers.items(), body, source_ip=self.client_address[0])
            self.send_response(outcome.status)
            self.send_header("content-length", str(len(outcome.body)))
            self.end_headers()
            self.wfile.write(outcome.body)

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request.addfinalizer(server.server_close)
    request.addfinalizer(server.shutdown)

    def after(ns: Namespace) -> None:
        assert ns["report"].ok, ns["report"].diagnosis

    url = f"http://127.0.0.1:{server.server_port}/webhooks/hyperswitch"
    return Page({"webhook_url": url}, after=after)


@setup_for("docs/payments/stripe-connect.md")
def _stripe_connect(request: pytest.FixtureRequest) -> Page:
    from veza_payments.testing import FakeStripe

    stripe = _enter(request, FakeStripe())
    seller = _row(stripe_account="acct_docs_seller")

    @contextlib.contextmanager
    def async_alternative(ns: Namespace) -> Iterator[None]:
        """The async block is an alternative: its own row and seller, then the sync names back.

        Reusing the first block's row would be ``idempotency_error`` (same key, other
        parameters), and its 1700 would stay on the first seller's balance.
        """
        kept = {name: ns[name] for name in ("connect", "transfer", "transfer_row", "seller")}
        ns["transfer_row"] = _row(id="tr-async-1", stripe_transfer_id=None)
        ns["seller"] = _row(stripe_account="acct_docs_async_seller")
        yield
        made = ns["transfer"]
        assert stripe.transfers[made.id]["destination"] == "acct_docs_async_seller"
        assert stripe.balance("acct_docs_async_seller", "eur") == 1700
        ns.update(kept)

    def after(ns: Namespace) -> None:
        ns["connect"].close()
        assert ns["transfer_row"].stripe_transfer_id == ns["transfer"].id
        assert ns["lost"] is None  # no reversal under that intent id
        assert stripe.balance("acct_docs_seller", "eur") == 0  # reversed 500, paid out 1200

    return Page(
        {
            "stripe_secret_key": stripe.api_key,
            "stripe_base_url": stripe.url,
            "transfer_row": _row(id="tr-1", stripe_transfer_id=None),
            "payout_row": _row(id="po-1"),
            "seller": seller,
            "order": _row(id="o-1"),
            "charge_id": None,
            "row": _row(id="tr-1", created_at_epoch=1_900_000_000, stripe_transfer_id=None),
            "intent_id": "rv-1",
        },
        after=after,
        around={1: async_alternative},
    )


@setup_for("docs/payments/webhooks.md")
def _payments_webhooks(request: pytest.FixtureRequest) -> Page:
    from fastapi import FastAPI

    from veza_payments import SIGNATURE_HEADER, InMemoryWebhookLog, sign_payload
    from veza_payments.testing import FakeHyperswitch

    class Orders:
        """The reader's database: which payments were marked paid, by which delivery."""

        def __init__(self) -> None:
            self.paid: list[tuple[str, str | None]] = []

        def mark_paid(self, payment_id: str, *, request_id: str | None) -> None:
            self.paid.append((payment_id, request_id))

    orders = Orders()
    psp = FakeHyperswitch()  # only its webhook bodies: not started
    payload = psp.webhook_body("payment_succeeded", {"payment_id": "pay_docs_1"})
    apps: list[Any] = []

    def post(app: Any, key: str) -> int:
        """Deliver the signed payload to the reader's endpoint, in-process (ASGI)."""
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign_payload(payload, key)}
        return asyncio.run(_asgi_post(app, "/webhooks/hyperswitch", payload, headers))

    def fresh_app(ns: Namespace) -> None:
        apps.append(ns["app"])
        ns["app"] = FastAPI()  # the second endpoint is an alternative to the first

    def signed_request(ns: Namespace) -> None:
        """The async block's delivery: a request as Starlette hands it over, and its peer."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign_payload(payload, WEBHOOK_KEY),
        }
        ns["request"] = _starlette_request(payload, headers)
        ns["peer"] = "127.0.0.1"

    @contextlib.contextmanager
    def async_alternative(ns: Namespace) -> Iterator[None]:
        """The async intake is an alternative: the endpoints above keep their sync one."""
        kept = ns["intake"]
        yield
        assert ns["outcome"].status == 200, ns["outcome"].body
        assert ns["outcome"].processing_result == "ok"  # the handler ran, in the thread
        assert [payment for payment, _ in orders.paid] == ["pay_docs_1"]
        ns["intake"] = kept

    def body_request(ns: Namespace) -> None:
        ns["request"] = _starlette_request(payload)

    def after(ns: Namespace) -> None:
        assert ns["body"] == payload
        assert post(apps[0], "whsec_docs_previous_key") == 200  # the old key still verifies
        assert post(ns["app"], WEBHOOK_KEY) == 200  # a second delivery: applied once
        assert [payment for payment, _ in orders.paid] == ["pay_docs_1"]
        assert post(ns["app"], "whsec_not_ours") == 401

    return Page(
        {
            "log": InMemoryWebhookLog(),
            "current_key": WEBHOOK_KEY,
            "old_key": "whsec_docs_previous_key",
            "orders": orders,
            "open_dispute_case": lambda event: None,
        },
        before={1: fresh_app, 2: signed_request, 3: body_request},
        around={2: async_alternative},
        after=after,
    )


# ---------------------------------------------------------------- veza-storage


@setup_for("docs/storage/guide.md")
def _storage_guide(request: pytest.FixtureRequest) -> Page:
    import hashlib

    from sqlalchemy.orm import DeclarativeBase

    from veza_storage import ByteRange, InMemoryUploadSessionStore

    class Base(DeclarativeBase):
        """The reader's declarative base."""

    root = _tmp(request) / "tracks"
    root.mkdir()
    _env(
        request,
        VEZA_STORAGE_BACKEND="local",
        VEZA_STORAGE_LOCAL_ROOT=str(root),
        VEZA_STORAGE_SIGNING_KEY="docs-local-signing-key",
        VEZA_STORAGE_PUBLIC_URL="http://127.0.0.1:8000/files",
    )
    body = b"fLaC" + bytes(4096)

    def objects_it_names(ns: Namespace) -> None:
        """The reader's other objects: ``key`` and "a" exist before the block runs."""
        ns["storage"].put(ns["key"], io.BytesIO(b"other"), content_type="audio/flac")
        ns["storage"].put("a", io.BytesIO(b"a"), content_type="text/plain")

    def async_names(ns: Namespace) -> None:
        """Check the sync block, then give the async one its request, range and store."""
        assert ns["first_kib"] == body[:1024]
        assert not ns["storage"].exists(ns["key"])  # deleted: the async block writes it again
        with ns["storage"].open("b") as reader:
            assert reader.read() == b"a"
        ns["request"] = _starlette_request(body)
        ns["r"] = ByteRange(0, 1023)
        ns["size"] = len(body)
        ns["digest"] = hashlib.sha256(body).hexdigest()
        ns["store"] = InMemoryUploadSessionStore()

    def after(ns: Namespace) -> None:
        assert ns["data"] == body  # the async put streamed the request's body whole
        assert ns["url"].startswith("http://127.0.0.1:8000/files/tracks/8f3a/other.flac?")
        assert (ns["info"].key, ns["info"].size) == (ns["key"], len(body))
        assert ns["info"].sha256 == ns["digest"]  # the resumable upload, completed
        with ns["storage"].open(ns["key"]) as reader:
            assert reader.read() == body

    return Page(
        {
            "app_is_in_production": False,
            "request_body": io.BytesIO(body),
            "key": "tracks/8f3a/other.flac",
            "Base": Base,
        },
        before={1: objects_it_names, 2: async_names},
        after=after,
    )


@setup_for("docs/storage/uploads.md")
def _storage_uploads(request: pytest.FixtureRequest) -> Page:
    import hashlib

    chunk = b"fLaC" + bytes(1000)

    def next_upload(ns: Namespace) -> None:
        """A second upload, its first chunk arriving as a Starlette request."""
        ns["upload_id"] = ns["uploads"].begin(
            "tracks/next.flac", len(chunk), chunk_size=len(chunk), content_type="audio/flac"
        )
        ns["request"] = _starlette_request(chunk)

    def after(ns: Namespace) -> None:
        assert ns["info"].size == len(chunk)
        assert ns["uploads"].complete(ns["upload_id"]).size == len(chunk)
        with ns["storage"].open("tracks/next.flac") as reader:
            assert reader.read() == chunk

    return Page(
        {
            "storage": _local_storage(request),
            "sessions_dir": str(_tmp(request) / "upload-sessions"),
            "total_size": len(chunk),
            "client_sha256": hashlib.sha256(chunk).hexdigest(),
            "index": 0,
            "chunk_bytes": chunk,
            "chunk_sha256": hashlib.sha256(chunk).hexdigest(),
        },
        before={1: next_upload},
        after=after,
    )


# ---------------------------------------------------------------- veza-webrtc


@setup_for("docs/webrtc/guide.md")
def _webrtc_guide(request: pytest.FixtureRequest) -> Page:
    return Page({"key_id": "docs-turn-key-id", "api_token": "docs-turn-api-token"})


@setup_for("docs/webrtc/probe.md")
def _webrtc_probe(request: pytest.FixtureRequest) -> Page:
    return Page({"password": "docs-turn-password"})


def _starlette_request(body: bytes, headers: dict[str, str] | None = None) -> Any:
    """A Starlette request whose body is ``body``, as the server would hand it over."""
    from starlette.requests import Request

    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/",
        "query_string": b"",
        "headers": [
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
        ],
        "client": ("127.0.0.1", 50000),
    }
    return Request(scope, receive)


async def _asgi_post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://docs.test") as client:
        return (await client.post(path, content=body, headers=headers)).status_code


async def _asgi_get(app: Any, path: str) -> int:
    import httpx

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://docs.test") as client:
        return (await client.get(path)).status_code


# ---------------------------------------------------------------- tracing


@setup_for("docs/tracing.md")
def _tracing(request: pytest.FixtureRequest) -> Page:
    """A local OTLP/HTTP collector; the global provider the page sets is undone after.

    ``trace.set_tracer_provider`` works once per process: the test saves OpenTelemetry's
    global and restores it, so no later test exports to the page's provider.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry import trace
    from opentelemetry.util._once import Once

    received: list[tuple[str, int]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers["content-length"])
            received.append((self.path, len(self.rfile.read(size))))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request.addfinalizer(server.server_close)
    request.addfinalizer(server.shutdown)
    _env(request, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())

    def after(ns: Namespace) -> None:
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

        from veza_cdn import BunnySigner

        with trace.get_tracer("docs").start_as_current_span("docs.example"):
            BunnySigner(BUNNY_KEY).sign_url(f"{CDN_BASE}/a.mp3", expires=1_900_000_000)
        provider: SdkTracerProvider = ns["provider"]  # the SDK's, which the page built
        assert trace.get_tracer_provider() is provider
        assert provider.force_flush()
        provider.shutdown()
        assert received and all(path == "/v1/traces" and size for path, size in received)

    return Page(after=after)
