"""Share links an owner makes, lists and revokes, and the public ``/s/{token}`` they open.

``GET /api/v1/tracks/{id}/link`` hands out a raw presigned URL: it cannot be listed or
taken back, and it lives as long as it was signed for. A share link here is a row: the
owner sees every link they made (when, until when, how often it was opened) and can
revoke one, which stops it at once. Opening ``/s/{token}`` checks the row and then
redirects to a presigned URL of :data:`REDIRECT_TTL` seconds, so a revoked link stops
working for new plays immediately and an already opened one within that time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path as PathParam
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from veza_reference._auth import User
from veza_reference._db import ShareLink, Track
from veza_reference._errors import ClientError
from veza_reference._routes_media import get_track
from veza_reference._services import Services

REDIRECT_TTL = 300
"""Seconds the presigned URL behind an opened share link stays valid."""
ShareId = Annotated[str, PathParam(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
Token = Annotated[str, PathParam(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
GONE = "This share link {why}. Ask the person who sent it for a new one."


class ShareRequest(BaseModel):
    """Make a share link valid ``expires_in`` seconds (an hour to a week; a day by default)."""

    expires_in: int = Field(default=86400, ge=60, le=7 * 86400)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands timezone-aware columns back naive: they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _state(link: ShareLink, now: dt.datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if _utc(link.expires_at) <= now else "active"


def _link_json(link: ShareLink, title: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "share_id": link.id,
        "track_id": link.track_id,
        "track_title": title,
        "created_at": _utc(link.created_at).isoformat(),
        "expires_at": _utc(link.expires_at).isoformat(),
        "revoked_at": _utc(link.revoked_at).isoformat() if link.revoked_at else None,
        "state": _state(link, now),
        "uses": link.uses,
    }


def build_router(services: Services) -> APIRouter:
    """The share-link routes."""
    router = APIRouter()

    @router.post("/api/v1/tracks/{track_id}/shares", status_code=201, tags=["shares"])
    def create_share(
        track_id: Annotated[str, PathParam(min_length=1, max_length=64)],
        request: ShareRequest,
        principal: User,
    ) -> dict[str, Any]:
        """A new share link for one of the caller's tracks; its URL is shown only now."""
        track = get_track(services, track_id)
        if track.owner_id != principal.user_id:
            raise ClientError(403, "only the track's owner makes share links")
        token = secrets.token_urlsafe(24)
        now = dt.datetime.now(dt.UTC)
        link = ShareLink(
            id=uuid.uuid4().hex,
            token_sha256=_digest(token),
            track_id=track.id,
            owner_id=principal.user_id,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=request.expires_in),
            uses=0,
        )
        with Session(services.engine, expire_on_commit=False) as session, session.begin():
            session.add(link)
        return {**_link_json(link, track.title, now), "url": f"{services.public_url}/s/{token}"}

    @router.get("/api/v1/shares", tags=["shares"])
    def my_shares(principal: User) -> list[dict[str, Any]]:
        """The caller's share links, newest first (their URLs are not kept)."""
        now = dt.datetime.now(dt.UTC)
        query = (
            sa.select(ShareLink, Track.title)
            .join(Track, Track.id == ShareLink.track_id)
            .where(ShareLink.owner_id == principal.user_id)
            .order_by(ShareLink.created_at.desc())
            .limit(200)
        )
        with Session(services.engine) as session:
            return [_link_json(link, title, now) for link, title in session.execute(query)]

    @router.delete("/api/v1/shares/{share_id}", tags=["shares"])
    def revoke_share(share_id: ShareId, principal: User) -> dict[str, Any]:
        """Revoke a link (its owner or an admin): it stops working at once."""
        now = dt.datetime.now(dt.UTC)
        with Session(services.engine, expire_on_commit=False) as session, session.begin():
            link = session.get(ShareLink, share_id)
            if link is None:
                raise ClientError(404, "no such share link")
            if link.owner_id != principal.user_id and not principal.is_admin:
                raise ClientError(403, "only the link's owner (or an admin) revokes it")
            if link.revoked_at is None:
                link.revoked_at = now
            title = session.scalar(sa.select(Track.title).where(Track.id == link.track_id))
        return _link_json(link, title or "", now)

    @router.get("/s/{token}", include_in_schema=False)
    def open_share(token: Token) -> Response:
        """Anyone holding the token: a short presigned redirect, or words saying why not."""
        now = dt.datetime.now(dt.UTC)
        with Session(services.engine, expire_on_commit=False) as session, session.begin():
            link = session.scalar(
                sa.select(ShareLink).where(ShareLink.token_sha256 == _digest(token))
            )
            state = _state(link, now) if link is not None else "unknown"
            if link is not None and state == "active":
                link.uses += 1
        if link is None:
            return PlainTextResponse(GONE.format(why="does not exist"), status_code=404)
        if state != "active":
            why = "was revoked by its owner" if state == "revoked" else "has expired"
            return PlainTextResponse(GONE.format(why=why), status_code=410)
        track = get_track(services, link.track_id)
        url = services.storage.presign_get(
            track.storage_key or "", expires_in=REDIRECT_TTL, content_type=track.content_type
        )
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    return router
