"""The HTTP side of a demo that speaks the user's language (issue 17).

Through the live demo server: "who am I" answers a logged-out browser 200, Buy is
idempotent per ``Idempotency-Key``, non-audio uploads are refused by their content,
owners make, list and revoke share links, and admins (only) read the books' summary.
The pages that use these are toured in ``test_offline_tour.py``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from veza_reference._audio import HEAD, NOT_AUDIO, looks_like_audio
from veza_reference._db import Purchase
from veza_reference._media import tone


def _client(demo: Any, login: Any, user: str) -> httpx.Client:
    return login(demo.url, user, demo.services.extra["demo_passwords"][user])  # type: ignore[no-any-return]


def _wait_for(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_session_answers_nobody_with_a_200(demo: Any, login: Any) -> None:
    anonymous = httpx.get(demo.url + "/api/v1/auth/session")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"user": None}
    assert httpx.get(demo.url + "/api/v1/auth/me").status_code == 401  # /me keeps its contract
    listener = _client(demo, login, "listener")
    user = listener.get("/api/v1/auth/session").json()["user"]
    assert user["user_id"] == "listener" and user["role"] == "buyer"
    assert user["csrf_token"] == listener.headers["x-csrf-token"]


def _purchases(demo: Any, order_id: str) -> int:
    with Session(demo.services.engine) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Purchase).where(Purchase.order_id == order_id)
            )
            or 0
        )


def test_the_same_idempotency_key_makes_one_order(demo: Any, login: Any) -> None:
    listener = _client(demo, login, "listener")
    key = {"idempotency-key": f"click-{uuid.uuid4().hex}"}
    first = listener.post("/api/v1/orders", json={"track_id": "demo-2"}, headers=key)
    again = listener.post("/api/v1/orders", json={"track_id": "demo-2"}, headers=key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["order_id"] == again.json()["order_id"]
    assert first.json()["payment_id"] == again.json()["payment_id"]
    assert _purchases(demo, first.json()["order_id"]) == 1
    other_click = listener.post(
        "/api/v1/orders", json={"track_id": "demo-2"}, headers={"idempotency-key": "other"}
    )
    assert other_click.json()["order_id"] != first.json()["order_id"]
    # the key is the caller's: another buyer's same key is another order
    admin = _client(demo, login, "admin")
    theirs = admin.post("/api/v1/orders", json={"track_id": "demo-2"}, headers=key)
    assert theirs.status_code == 201 and theirs.json()["order_id"] != first.json()["order_id"]
    # the same key for another track is refused, not silently answered with the first
    clash = listener.post("/api/v1/orders", json={"track_id": "demo-1"}, headers=key)
    assert clash.status_code == 409, clash.text


@pytest.mark.parametrize(
    ("head", "audio"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", True),
        (b"\xff\xfb\x90\x64" + bytes(8), True),  # an MPEG-1 layer III frame
        (b"\xff\xf1\x50\x80" + bytes(8), True),  # ADTS AAC
        (b"RIFF\x24\x00\x00\x00WAVE", True),
        (b"fLaC\x00\x00\x00\x22" + bytes(4), True),
        (b"OggS\x00\x02" + bytes(6), True),
        (b"\x00\x00\x00\x20ftypM4A ", True),
        (b"FORM\x00\x00\x00\x00AIFF", True),
        (b"\x1a\x45\xdf\xa3" + bytes(8), True),
        (b"%PDF-1.7\n%\xe2\xe3", False),
        (b"\x89PNG\r\n\x1a\n" + bytes(4), False),
        (b"RIFF\x24\x00\x00\x00AVI ", False),
        (b"PK\x03\x04" + bytes(8), False),
        (b"\xff\xd8\xff\xe0" + bytes(8), False),  # JPEG: a sync-like start, no audio layer
        (b"", False),
    ],
)
def test_looks_like_audio(head: bytes, audio: bool) -> None:
    assert looks_like_audio(head[:HEAD]) is audio


def _begin(http: httpx.Client, size: int, content_type: str) -> httpx.Response:
    return http.post(
        "/api/v1/uploads",
        json={"filename": "song.mp3", "size": size, "content_type": content_type},
    )


def test_non_audio_uploads_are_refused_in_words(demo: Any, login: Any) -> None:
    creator = _client(demo, login, "artist-ada")
    declared = _begin(creator, 1000, "application/pdf")
    assert declared.status_code == 415
    assert "Only audio files" in declared.json()["error"]["message"]
    # a PDF claiming to be audio: refused by its first chunk, nothing stored
    pdf = b"%PDF-1.7\n" + b"0" * 991
    begin = _begin(creator, len(pdf), "audio/mpeg")
    assert begin.status_code == 201, begin.text
    upload_id = begin.json()["upload_id"]
    refused = creator.put(f"/api/v1/uploads/{upload_id}/chunks/0", content=pdf)
    assert refused.status_code == 415
    assert refused.json()["error"]["message"] == NOT_AUDIO
    assert creator.get(f"/api/v1/uploads/{upload_id}").json()["received"] == []
    # real audio goes through
    wav = tone([440.0], seconds_per_note=0.1)
    begin = _begin(creator, len(wav), "audio/wav")
    accepted = creator.put(f"/api/v1/uploads/{begin.json()['upload_id']}/chunks/0", content=wav)
    assert accepted.status_code == 200, accepted.text


def test_owner_makes_lists_and_revokes_a_share_link(demo: Any, login: Any) -> None:
    owner = _client(demo, login, "artist-ada")
    listener = _client(demo, login, "listener")
    track = next(t for t in owner.get("/api/v1/tracks").json() if t["owner_id"] == "artist-ada")
    path = f"/api/v1/tracks/{track['id']}/shares"
    assert listener.post(path, json={}).status_code == 403  # not theirs
    made = owner.post(path, json={"expires_in": 3600})
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["state"] == "active" and link["url"].startswith(demo.url + "/s/")
    with httpx.Client(follow_redirects=True) as anyone:  # no account needed
        played = anyone.get(link["url"])
        assert played.status_code == 200, played.text
        assert played.content[:4] == b"RIFF"
    listed = owner.get("/api/v1/shares").json()
    mine = next(s for s in listed if s["share_id"] == link["share_id"])
    assert mine["uses"] == 1 and mine["state"] == "active" and "url" not in mine
    assert all(s["share_id"] != link["share_id"] for s in listener.get("/api/v1/shares").json())
    assert listener.delete(f"/api/v1/shares/{link['share_id']}").status_code == 403
    revoked = owner.delete(f"/api/v1/shares/{link['share_id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    gone = httpx.get(link["url"])
    assert gone.status_code == 410
    assert "revoked by its owner" in gone.text
    unknown = httpx.get(demo.url + "/s/" + "x" * 32)
    assert unknown.status_code == 404 and "does not exist" in unknown.text


def test_admins_alone_read_the_money_summary(demo: Any, login: Any) -> None:
    listener = _client(demo, login, "listener")
    order = listener.post(
        "/api/v1/orders", json={"track_id": "demo-2"}, headers={"idempotency-key": "money"}
    ).json()
    listener.post(f"/api/v1/sandbox/payments/{order['payment_id']}/confirm").raise_for_status()
    path = f"/api/v1/orders/{order['order_id']}"
    _wait_for(lambda: listener.get(path).json()["status"] == "paid")
    assert listener.get("/api/v1/admin/money").status_code == 403
    admin = _client(demo, login, "admin")
    money = admin.get("/api/v1/admin/money").json()
    payments = [f for f in money["flows"] if f["kind"] == "payment"]
    assert payments and payments[0]["currency"] == "EUR"
    assert payments[0]["amount"] >= order["amount"]
    assert money["orders"].get("paid", 0) >= 1
    assert sum(b["amount"] for b in money["balances"] if b["currency"] == "EUR") == 0  # balanced


def test_concurrent_requests_with_one_key_make_one_order(demo: Any, login: Any) -> None:
    """Four requests at once under one key (a retry racing the original): one order."""
    import threading

    listener = _client(demo, login, "listener")
    key = {"idempotency-key": f"race-{uuid.uuid4().hex}"}
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def send() -> None:
        start.wait()
        answers.append(listener.post("/api/v1/orders", json={"track_id": "demo-2"}, headers=key))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    order_ids = {a.json()["order_id"] for a in answers}
    assert len(order_ids) == 1
    assert _purchases(demo, order_ids.pop()) == 1
