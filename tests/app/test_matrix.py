"""Route x role matrix: every route, called by anonymous, a buyer, another buyer, a creator
and an admin. Allowed calls succeed; the others get 401 (anonymous) or 403, and the
database (every table, every row) and the storage (every file under its root) are the
same after each refused call as before it.

The app runs on real HTTP with its sandbox providers but without the background
webhook emitter or workers, so nothing but the call under test changes anything; the
test delivers the sandbox's webhooks itself (``sandbox.tick()``) where it needs a paid
order. A route added to the app without a row here fails ``test_the_matrix_covers_every_route``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from veza_payments import sign_payload
from veza_reference._media import tone

ROLES = ("anonymous", "buyer", "buyer2", "creator", "admin")
USERS = frozenset(ROLES) - {"anonymous"}
EVERYONE = frozenset(ROLES)
CHUNK = 256 * 1024


@attrs.define
class World:
    """The running app, its accounts' clients and the objects the calls act on."""

    services: Any
    url: str
    clients: dict[str, httpx.Client]
    passwords: dict[str, str]
    track: str = ""
    order: dict[str, Any] = attrs.field(factory=dict)
    pending_order: dict[str, Any] = attrs.field(factory=dict)
    upload: str = ""
    ready_upload: str = ""
    refund: str = ""
    transfer: str = ""
    audio: bytes = b""

    def client(self, role: str) -> httpx.Client:
        return self.clients[role]

    def fresh_client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=30)
        self.clients[f"extra-{len(self.clients)}"] = client
        return client

    def fresh_login(self, role: str) -> httpx.Client:
        client = self.fresh_client()
        answer = client.post(
            "/api/v1/auth/login", json={"user_id": f"m-{role}", "password": self.passwords[role]}
        )
        answer.raise_for_status()
        client.headers["x-csrf-token"] = answer.json()["csrf_token"]
        return client

    def begin_upload(self, *, send: bool) -> str:
        creator = self.client("creator")
        begin = creator.post(
            "/api/v1/uploads",
            json={"filename": "m.wav", "size": len(self.audio), "chunk_size": CHUNK},
        )
        begin.raise_for_status()
        upload_id: str = begin.json()["upload_id"]
        if send:
            for index in range(begin.json()["chunk_count"]):
                creator.put(
                    f"/api/v1/uploads/{upload_id}/chunks/{index}",
                    content=self.audio[index * CHUNK : (index + 1) * CHUNK],
                ).raise_for_status()
        return upload_id

    def new_order(self) -> dict[str, Any]:
        answer = self.client("buyer").post("/api/v1/orders", json={"track_id": self.track})
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]


Call = tuple[httpx.Client, str, str, dict[str, Any]]
Maker = Callable[[World, str], Call]


def simple(method: str, path: str, **kwargs: Any) -> Maker:
    """The same request for every role (``{track}``, ``{order}``… filled in)."""

    def make(world: World, role: str) -> Call:
        values = {
            "track": world.track,
            "order": world.order["order_id"],
            "upload": world.upload,
            "ready_upload": world.ready_upload,
            "refund": world.refund,
            "transfer": world.transfer,
            "payment": world.pending_order.get("payment_id", ""),
        }
        return world.client(role), method, path.format(**values), dict(kwargs)

    return make


def login_as_self(world: World, role: str) -> Call:
    """Each role logs in as itself (anonymous: as the buyer) on a client of its own."""
    user = "buyer" if role == "anonymous" else role
    body = {"user_id": f"m-{user}", "password": world.passwords[user]}
    return world.fresh_client(), "POST", "/api/v1/auth/login", {"json": body}


def logout(world: World, role: str) -> Call:
    client = world.client("anonymous") if role == "anonymous" else world.fresh_login(role)
    return client, "POST", "/api/v1/auth/logout", {}


def complete_fresh(world: World, role: str) -> Call:
    """Allowed callers complete an upload of their own; others try the ready one."""
    upload = world.begin_upload(send=True) if role in ("creator", "admin") else world.ready_upload
    return world.client(role), "POST", f"/api/v1/uploads/{upload}/complete", {}


def confirm_fresh(world: World, role: str) -> Call:
    """The buyer and admins pay a fresh order; others try the pending one."""
    order = world.new_order() if role in ("buyer", "admin") else world.pending_order
    return world.client(role), "POST", f"/api/v1/sandbox/payments/{order['payment_id']}/confirm", {}


def force_fresh(world: World, role: str) -> Call:
    order = world.new_order() if role == "admin" else world.pending_order
    body = {
        "machine": "order",
        "object_id": order["order_id"],
        "to_status": "cancelled",
        "reason": "matrix test",
    }
    return world.client(role), "POST", "/api/v1/admin/transitions", {"json": body}


def signed_file(world: World, role: str) -> Call:
    key = world.services.storage.presign_get(f"tracks/{world.track}.wav", expires_in=600)
    return world.client(role), "GET", key, {}


def webhook(world: World, role: str) -> Call:
    body = json.dumps(
        {"event_id": f"evt_m_{role}", "event_type": "mandate_revoked", "content": {}}
    ).encode()
    signature = sign_payload(body, world.services.sandbox.webhook_key)
    headers = {"x-webhook-signature-512": signature, "content-type": "application/json"}
    return (
        world.client(role),
        "POST",
        "/webhooks/hyperswitch",
        {"content": body, "headers": headers},
    )


def buy(world: World, role: str) -> Call:
    return world.client(role), "POST", "/api/v1/orders", {"json": {"track_id": world.track}}


def chunk(world: World, role: str) -> Call:
    return (
        world.client(role),
        "PUT",
        f"/api/v1/uploads/{world.upload}/chunks/0",
        {"content": world.audio[:CHUNK]},
    )


def new_share(world: World) -> dict[str, Any]:
    made = world.client("creator").post(f"/api/v1/tracks/{world.track}/shares", json={})
    made.raise_for_status()
    return made.json()  # type: ignore[no-any-return]


def revoke_fresh(world: World, role: str) -> Call:
    """Each role tries to revoke a fresh link of the creator's."""
    share = new_share(world)
    return world.client(role), "DELETE", f"/api/v1/shares/{share['share_id']}", {}


def open_share(world: World, role: str) -> Call:
    """Anyone with a link opens it (a fresh one each time): the token is the permission."""
    path = new_share(world)["url"].removeprefix(world.url)
    return world.client(role), "GET", path, {}


OWNER_OR_ADMIN = frozenset({"creator", "admin"})
PLAYERS = frozenset({"buyer", "creator", "admin"})
PARTIES = frozenset({"buyer", "creator", "admin"})

# (method, route path as the app declares it) -> (who may, how to call it)
MATRIX: dict[tuple[str, str], tuple[frozenset[str], Maker]] = {
    ("POST", "/api/v1/auth/login"): (EVERYONE, login_as_self),
    ("POST", "/api/v1/auth/logout"): (USERS, logout),
    ("GET", "/api/v1/auth/me"): (USERS, simple("GET", "/api/v1/auth/me")),
    ("GET", "/api/v1/auth/session"): (EVERYONE, simple("GET", "/api/v1/auth/session")),
    ("POST", "/api/v1/tracks/{track_id}/shares"): (
        frozenset({"creator"}),  # the track's owner only, like /link
        simple("POST", "/api/v1/tracks/{track}/shares", json={}),
    ),
    ("GET", "/api/v1/shares"): (USERS, simple("GET", "/api/v1/shares")),  # each their own
    ("DELETE", "/api/v1/shares/{share_id}"): (OWNER_OR_ADMIN, revoke_fresh),
    ("GET", "/s/{token}"): (EVERYONE, open_share),
    ("GET", "/api/v1/admin/money"): (frozenset({"admin"}), simple("GET", "/api/v1/admin/money")),
    ("GET", "/shares"): (EVERYONE, simple("GET", "/shares")),  # the data needs an account
    ("GET", "/admin"): (EVERYONE, simple("GET", "/admin")),  # the data needs the admin role
    ("POST", "/api/v1/uploads"): (
        OWNER_OR_ADMIN,
        simple("POST", "/api/v1/uploads", json={"filename": "x.wav", "size": 10}),
    ),
    ("PUT", "/api/v1/uploads/{upload_id}/chunks/{index}"): (OWNER_OR_ADMIN, chunk),
    ("GET", "/api/v1/uploads/{upload_id}"): (
        OWNER_OR_ADMIN,
        simple("GET", "/api/v1/uploads/{upload}"),
    ),
    ("POST", "/api/v1/uploads/{upload_id}/complete"): (OWNER_OR_ADMIN, complete_fresh),
    ("GET", "/api/v1/tracks"): (EVERYONE, simple("GET", "/api/v1/tracks")),
    ("GET", "/api/v1/tracks/{track_id}"): (EVERYONE, simple("GET", "/api/v1/tracks/{track}")),
    ("GET", "/api/v1/tracks/{track_id}/stream"): (
        PLAYERS,
        simple("GET", "/api/v1/tracks/{track}/stream"),
    ),
    ("GET", "/api/v1/tracks/{track_id}/download"): (
        PLAYERS,
        simple("GET", "/api/v1/tracks/{track}/download"),
    ),
    ("GET", "/api/v1/tracks/{track_id}/link"): (
        frozenset({"creator"}),  # share links: the owner only, not even admins
        simple("GET", "/api/v1/tracks/{track}/link"),
    ),
    ("GET", "/api/v1/tracks/{track_id}/hls"): (
        PLAYERS,
        simple("GET", "/api/v1/tracks/{track}/hls"),
    ),
    ("GET", "/files/{key:path}"): (EVERYONE, signed_file),  # the signature is the permission
    ("GET", "/origin/{key:path}"): (
        frozenset(),  # the edge's secret header only: no account gets in
        simple("GET", "/origin/tracks/{track}.wav"),
    ),
    ("POST", "/api/v1/orders"): (USERS, buy),
    ("GET", "/api/v1/orders"): (USERS, simple("GET", "/api/v1/orders")),
    ("GET", "/api/v1/orders/{order_id}"): (PARTIES, simple("GET", "/api/v1/orders/{order}")),
    ("POST", "/api/v1/orders/{order_id}/refunds"): (
        OWNER_OR_ADMIN,  # the order's seller or an admin
        simple("POST", "/api/v1/orders/{order}/refunds", json={"amount": 1}),
    ),
    ("POST", "/webhooks/hyperswitch"): (EVERYONE, webhook),  # the signature is the permission
    ("POST", "/api/v1/subscriptions"): (
        USERS,
        simple("POST", "/api/v1/subscriptions", json={"plan": "creator"}),
    ),
    ("GET", "/api/v1/users/{user_id}/distribution"): (
        OWNER_OR_ADMIN,
        simple("GET", "/api/v1/users/m-creator/distribution"),
    ),
    ("POST", "/api/v1/users/{user_id}/distribution"): (
        OWNER_OR_ADMIN,
        simple("POST", "/api/v1/users/m-creator/distribution"),
    ),
    ("POST", "/api/v1/sandbox/payments/{payment_id}/confirm"): (
        frozenset({"buyer", "admin"}),
        confirm_fresh,
    ),
    ("POST", "/api/v1/sandbox/refunds/{refund_id}/settle"): (
        frozenset({"admin"}),
        simple("POST", "/api/v1/sandbox/refunds/{refund}/settle"),
    ),
    ("GET", "/api/v1/admin/findings"): (
        frozenset({"admin"}),
        simple("GET", "/api/v1/admin/findings"),
    ),
    ("POST", "/api/v1/admin/reconcile"): (
        frozenset({"admin"}),
        simple("POST", "/api/v1/admin/reconcile", json={"dry_run": True}),
    ),
    ("POST", "/api/v1/admin/transitions"): (frozenset({"admin"}), force_fresh),
    ("POST", "/api/v1/admin/transfers/{transfer_id}/retry"): (
        frozenset({"admin"}),
        simple("POST", "/api/v1/admin/transfers/{transfer}/retry"),
    ),
    ("GET", "/api/v1/admin/webhooks"): (
        frozenset({"admin"}),
        simple("GET", "/api/v1/admin/webhooks"),
    ),
    ("POST", "/api/v1/admin/uploads/reap"): (
        frozenset({"admin"}),
        simple("POST", "/api/v1/admin/uploads/reap"),
    ),
    ("GET", "/api/v1/config/webrtc"): (USERS, simple("GET", "/api/v1/config/webrtc")),
    ("GET", "/metrics"): (EVERYONE, simple("GET", "/metrics")),
    ("GET", "/healthz"): (EVERYONE, simple("GET", "/healthz")),
    ("GET", "/readyz"): (EVERYONE, simple("GET", "/readyz")),
    ("GET", "/openapi.json"): (EVERYONE, simple("GET", "/openapi.json")),
    ("GET", "/"): (EVERYONE, simple("GET", "/")),
    ("GET", "/call"): (EVERYONE, simple("GET", "/call")),
    ("GET", "/docs"): (EVERYONE, simple("GET", "/docs")),
    ("GET", "/redoc"): (EVERYONE, simple("GET", "/redoc")),
    ("GET", "/vendor/hls.min.js"): (EVERYONE, simple("GET", "/vendor/hls.min.js")),
    ("GET", "/vendor/swagger-ui"): (
        EVERYONE,
        simple("GET", "/vendor/swagger-ui/swagger-ui-bundle.js"),
    ),
    ("GET", "/api/v1/hls/status"): (EVERYONE, simple("GET", "/api/v1/hls/status")),
    ("GET", "/static"): (EVERYONE, simple("GET", "/static/app.js")),
}


def _routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, through included routers and mounts."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any, prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's lazily included router
                context_prefix = getattr(route.include_context, "prefix", "") or ""
                walk(route.original_router.routes, prefix + context_prefix)
            elif hasattr(route, "methods") and route.methods is not None:
                found.update((m, prefix + route.path) for m in route.methods if m != "HEAD")
            else:  # a mount (static files): GET under its path
                found.add(("GET", prefix + route.path))

    walk(app.routes, "")
    return found


def _snapshot(world: World) -> tuple[Any, ...]:
    """Every row of every table, every file under the storage root, the sandbox's state."""
    engine = world.services.engine
    tables = []
    with engine.connect() as connection:
        for name in sorted(sa.inspect(engine).get_table_names()):
            rows = connection.execute(sa.text(f'SELECT * FROM "{name}"')).all()
            tables.append((name, sorted(repr(tuple(r)) for r in rows)))
    root = Path(world.services.storage_config.local_root)
    files = sorted(
        (str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in root.rglob("*")
        if p.is_file()
    )
    hyperswitch = world.services.sandbox.hyperswitch
    with hyperswitch.lock:
        fake = sorted(
            (k, v.get("status")) for k, v in {**hyperswitch.payments, **hyperswitch.refunds}.items()
        )
    return tuple(tables), tuple(files), tuple(fake)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from veza_reference import build_services, create_app
    from veza_reference._db import Track
    from veza_reference._demo import seed_users
    from veza_reference._routes_media import add_track
    from veza_reference._serve import _serve_in_thread

    data = tmp_path_factory.mktemp("matrix")
    hls_js = data / "hls.min.js"
    hls_js.write_text("// hls.js stand-in\n")
    services = build_services(
        {
            "VEZA_DATA_DIR": str(data),
            "VEZA_PORT": "0",
            "VEZA_WORKERS": "false",
            "VEZA_LOCAL_EDGE": "false",
            "VEZA_LOGIN_RATE": "1000/60",
            "VEZA_FAST_PASSWORD_HASHING": "true",
            "VEZA_HLS_JS_PATH": str(hls_js),
            "PATH": os.environ.get("PATH", ""),
        }
    )
    seed_users(services)  # as the demo does; the matrix uses accounts of its own below
    passwords = {role: secrets.token_urlsafe(16) for role in USERS}
    for role, password in passwords.items():
        services.users.create(f"m-{role}", password, {"buyer2": "buyer"}.get(role, role))
    # no background HLS job: the matrix compares the storage before and after each call
    app = create_app(services, render_hls=False)
    server = _serve_in_thread(
        app, "127.0.0.1", services.config.port, "matrix", services.listeners.get("app")
    )
    url = services.public_url
    clients = {"anonymous": httpx.Client(base_url=url, timeout=30)}
    world = World(services, url, clients, passwords, audio=tone([330.0, 440.0] * 8))
    for role in USERS:
        clients[role] = world.fresh_login(role)
    # a priced track owned by the creator, with an HLS playlist
    world.track = "m-track"
    services.storage.put("tracks/m-track.wav", io.BytesIO(world.audio), content_type="audio/wav")
    add_track(
        services,
        key="tracks/m-track.wav",
        title="Matrix",
        owner_id="m-creator",
        price=500,
        content_type="audio/wav",
        size=len(world.audio),
        sha256=None,
        track_id="m-track",
    )
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg000.ts\n#EXT-X-ENDLIST\n"
    services.storage.put(
        "hls/m-track/index.m3u8",
        io.BytesIO(playlist.encode()),
        content_type="application/vnd.apple.mpegurl",
    )
    services.storage.put(
        "hls/m-track/seg000.ts", io.BytesIO(b"\0" * 188), content_type="video/mp2t"
    )
    with Session(services.engine) as session, session.begin():
        row = session.get(Track, "m-track")
        assert row is not None
        row.hls_key = "hls/m-track/index.m3u8"
    # the buyer's paid order (its webhook delivered), its seller transfer, one refund
    world.order = world.new_order()
    services.sandbox.confirm_payment(world.order["payment_id"])
    services.sandbox.tick()
    assert (
        world.client("buyer").get(f"/api/v1/orders/{world.order['order_id']}").json()["status"]
        == "paid"
    )
    world.transfer = f"{world.order['order_id']}-seller"
    refund = world.client("creator").post(
        f"/api/v1/orders/{world.order['order_id']}/refunds", json={"amount": 1}
    )
    refund.raise_for_status()
    world.refund = refund.json()["provider_refund_id"]
    world.pending_order = world.new_order()
    # the creator's paid subscription (so distributing is allowed for them)
    subscription = world.client("creator").post("/api/v1/subscriptions", json={"plan": "creator"})
    services.sandbox.confirm_payment(subscription.json()["payment_id"])
    services.sandbox.tick()
    world.upload = world.begin_upload(send=False)
    world.ready_upload = world.begin_upload(send=True)
    yield world
    for client in clients.values():
        client.close()
    server[0].should_exit = True
    server[1].join(timeout=10)
    services.close()


def test_the_matrix_covers_every_route(world: World) -> None:
    from veza_reference import create_app

    served = _routes(create_app(world.services, render_hls=False))
    assert served == set(MATRIX), (
        f"routes without a matrix row: {sorted(served - set(MATRIX))}; "
        f"rows without a route: {sorted(set(MATRIX) - served)}"
    )


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_gets_what_it_may_and_nothing_else(world: World, route: tuple[str, str]) -> None:
    allowed, make = MATRIX[route]
    outcomes = {}
    for role in ROLES:
        client, method, path, kwargs = make(world, role)
        if role in allowed:
            answer = client.request(method, path, **kwargs)
            assert answer.status_code < 400, f"{role}: {answer.status_code} {answer.text[:300]}"
        else:
            before = _snapshot(world)
            answer = client.request(method, path, **kwargs)
            expected = {401} if role == "anonymous" and route[1] != "/origin/{key:path}" else {403}
            assert answer.status_code in expected, (
                f"{role}: {answer.status_code} {answer.text[:300]}"
            )
            assert _snapshot(world) == before, f"{role}'s refused call changed something"
        outcomes[role] = answer.status_code
    print(f"{route[0]} {route[1]}: {outcomes}")  # noqa: T201 - the matrix, with -s
