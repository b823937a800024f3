"""Uploads, tracks, playback redirects, locally signed files, the origin, HLS.

Routes translate HTTP to veza-storage and veza-cdn calls. Playback answers a 302: to
the CDN-signed URL when the CDN is enabled, to the storage's presigned URL otherwise or
when signing fails (``PlaybackResolver`` counts that fallback). The redirect is never
cached by a shared cache, so a ``Range`` request always gets a fresh URL to an origin
or edge that serves ranges.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

import sqlalchemy as sa
from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import veza_storage
from veza_cdn import UnknownMediaTypeError, cache_control_for
from veza_reference._access import Access
from veza_reference._audio import HEAD, NOT_AUDIO, NOT_AUDIO_TYPE, is_audio_type, looks_like_audio
from veza_reference._auth import Caller, Creator, User
from veza_reference._db import Track, UploadOwner
from veza_reference._edge import ORIGIN_SECRET_HEADER, secret_matches
from veza_reference._errors import ClientError
from veza_reference._hls_jobs import AUDIO_PREFIX, HlsJobs
from veza_reference._playlists import sign_stored_playlist
from veza_reference._services import Services
from veza_reference._sessions import Principal
from veza_storage import (
    LocalStorage,
    ObjectNotFoundError,
    StorageError,
    UploadStatus,
    answer_range,
    content_disposition,
)

CHUNK = 1 << 20
MAX_CHUNK = 16 * 2**20
NO_STORE = {"Cache-Control": "private, no-store"}
UploadId = Annotated[str, PathParam(min_length=1, max_length=64)]
TrackId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class UploadRequest(BaseModel):
    """Begin a resumable upload."""

    filename: str = Field(min_length=1, max_length=200)
    size: int = Field(gt=0, le=2 * 2**30)
    content_type: str = Field(
        default="audio/mpeg", min_length=3, max_length=100, pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$"
    )
    chunk_size: int = Field(default=CHUNK, ge=256 * 1024, le=MAX_CHUNK)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    title: str = Field(default="", max_length=200)
    price: int = Field(default=299, ge=1, le=10**7)


def _track_json(track: Track) -> dict[str, Any]:
    return {
        "id": track.id,
        "title": track.title,
        "owner_id": track.owner_id,
        "price": track.price,
        "currency": track.currency,
        "content_type": track.content_type,
        "size": track.size,
        "storage_backend": track.storage_backend,
        "storage_key": track.storage_key,
        "hls": bool(track.hls_key),
        "stream_url": f"/api/v1/tracks/{track.id}/stream",
        "download_url": f"/api/v1/tracks/{track.id}/download",
    }


def get_track(services: Services, track_id: str) -> Track:
    """The track, or a 404."""
    with Session(services.engine, expire_on_commit=False) as session:
        track = session.get(Track, track_id)
    if track is None or not track.storage_key:
        raise ClientError(404, f"no track {track_id!r}")
    return track


def add_track(
    services: Services,
    *,
    key: str,
    title: str,
    owner_id: str,
    price: int,
    content_type: str,
    size: int,
    sha256: str | None,
    track_id: str | None = None,
) -> Track:
    """Record a stored object as a track (``storage_backend``/``storage_key``).

    Idempotent on ``track_id``: when the row exists already (a retried or concurrent
    ``complete``), that row is returned instead of a second track.
    """
    track = Track(
        id=track_id or uuid.uuid4().hex,
        title=title[:200] or Path(key).name,
        owner_id=owner_id,
        price=price,
        currency="EUR",
        content_type=content_type,
        size=size,
        sha256=sha256,
        storage_backend=services.storage_config.backend,
        storage_key=key,
        created_at=dt.datetime.now(dt.UTC),
    )
    try:
        with Session(services.engine, expire_on_commit=False) as session, session.begin():
            session.add(track)
    except IntegrityError:
        # recorded already (a retried complete, or a concurrent one): answer that row
        with Session(services.engine, expire_on_commit=False) as session:
            existing = session.get(Track, track.id)
        if existing is None:
            raise
        return existing
    return track


def _content_length(value: str | None) -> int | None:
    """The declared body size, or ``None``; a malformed header is the client's 400."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise ClientError(400, "Content-Length must be a number of bytes")
    return int(value)


def track_id_for_upload(upload_id: str) -> str:
    """The track id an upload becomes: derived, so completing twice records one track."""
    return hashlib.sha256(f"veza-track:{upload_id}".encode()).hexdigest()[:32]


def upload_owner(services: Services, principal: Principal, upload_id: str) -> None:
    """404 for an unknown upload, 403 unless the caller began it (or is an admin). Blocking."""
    with Session(services.engine) as session:
        row = session.get(UploadOwner, upload_id)
    if row is None:
        raise ClientError(404, f"no upload {upload_id!r}")
    if not principal.is_admin and row.owner_id != principal.user_id:
        raise ClientError(403, "this upload belongs to another account")


def chunk_target(services: Services, principal: Principal, upload_id: str) -> UploadStatus:
    """The session a chunk goes to, once its owner is checked. Blocking.

    The session lookup and the owner check are one trip to the threadpool, not two:
    each trip costs the event loop a hand-off to a worker thread and back (and a wait
    for the GIL each way), on every chunk of every upload.
    """
    expected = services.uploads.status(upload_id)  # an unknown id: a 404 first
    upload_owner(services, principal, upload_id)
    return expected


def build_router(services: Services, access: Access, hls_jobs: HlsJobs | None = None) -> APIRouter:
    """The media routes; ``hls_jobs`` cuts a rendition of each completed audio upload."""
    router = APIRouter()
    jobs = hls_jobs if hls_jobs is not None else HlsJobs(services, enabled=False)
    _upload_routes(router, services, jobs)
    _track_routes(router, services, access, jobs)
    if isinstance(services.storage, LocalStorage):
        _local_files(router, services)
    _origin(router, services)
    return router


def _upload_routes(router: APIRouter, services: Services, jobs: HlsJobs) -> None:
    """Resumable uploads: begin, chunks, status and complete (creators)."""

    @router.post("/api/v1/uploads", status_code=201, tags=["uploads"])
    def begin_upload(request: UploadRequest, principal: Creator) -> dict[str, Any]:
        """Begin a resumable upload (creators): then PUT each chunk, then complete.

        Only audio is accepted: a declared type other than ``audio/*`` is a 415 here,
        and the first chunk's content is checked too (see ``put_chunk``).
        """
        if not is_audio_type(request.content_type):
            raise ClientError(415, NOT_AUDIO_TYPE.format(content_type=request.content_type))
        suffix = Path(request.filename).suffix.lower()
        suffix = suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 8 else ""
        key = f"tracks/{uuid.uuid4().hex}{suffix}"
        metadata = {
            "title": quote(request.title or request.filename),
            "owner": principal.user_id,
            "price": str(request.price),
        }
        session_id = services.uploads.begin(
            key,
            request.size,
            chunk_size=request.chunk_size,
            content_type=request.content_type,
            sha256=request.sha256,
            metadata=metadata,
        )
        with Session(services.engine) as session, session.begin():
            session.add(UploadOwner(upload_id=session_id, owner_id=principal.user_id))
        status = services.uploads.status(session_id)
        return {
            "upload_id": session_id,
            "key": key,
            "chunk_size": status.chunk_size,
            "chunk_count": status.chunk_count,
            "expires_at": status.expires_at,
        }

    @router.put("/api/v1/uploads/{upload_id}/chunks/{index}", tags=["uploads"])
    async def put_chunk(
        request: Request,
        upload_id: UploadId,
        index: Annotated[int, PathParam(ge=0, le=100_000)],
        principal: User,
    ) -> dict[str, Any]:
        """Send chunk ``index`` (any order, any number of times with the same bytes).

        The session is looked up first (an unknown id is a 404 before anything is
        read), then the owner checked; the body is read with the session's chunk size
        as the limit (a larger ``Content-Length`` is a 413 before a byte is read).
        Different bytes for a received index are a 409. Storage calls run in the
        threadpool. Chunk 0 must start like audio (``_audio.looks_like_audio``): a
        415 otherwise, before anything is stored, so a PDF renamed ``.mp3`` is refused
        at its first chunk rather than after the whole file was sent.
        """
        expected = await run_in_threadpool(chunk_target, services, principal, upload_id)
        data = await veza_storage.aread_limited(
            request.stream(),
            limit=expected.chunk_size,
            declared_length=_content_length(request.headers.get("content-length")),
        )
        if index == 0 and not looks_like_audio(data[:HEAD]):
            raise ClientError(415, NOT_AUDIO)
        status = await run_in_threadpool(
            services.uploads.put_chunk,
            upload_id,
            index,
            data=data,
            sha256=request.headers.get("x-chunk-sha256"),
        )
        return {
            "upload_id": upload_id,
            "received": list(status.received),
            "chunk_count": status.chunk_count,
            "ready": status.ready,
        }

    @router.get("/api/v1/uploads/{upload_id}", tags=["uploads"])
    def upload_status(upload_id: UploadId, principal: User) -> dict[str, Any]:
        """Which chunks arrived (resume from here after a dropped connection)."""
        upload_owner(services, principal, upload_id)
        status = services.uploads.status(upload_id)
        return {
            "upload_id": upload_id,
            "state": status.state,
            "received": list(status.received),
            "chunk_count": status.chunk_count,
            "ready": status.ready,
        }

    @router.post("/api/v1/uploads/{upload_id}/complete", status_code=201, tags=["uploads"])
    def complete_upload(upload_id: UploadId, principal: User) -> dict[str, Any]:
        """Assemble and verify the object, then record the track."""
        upload_owner(services, principal, upload_id)
        status = services.uploads.status(upload_id)
        info = services.uploads.complete(upload_id)
        meta = dict(info.metadata)
        track = add_track(
            services,
            key=status.key,
            title=unquote(meta.get("title", "")),
            owner_id=meta.get("owner", principal.user_id),
            price=int(meta.get("price", "299") or 299),
            content_type=info.content_type or "application/octet-stream",
            size=info.size,
            sha256=info.sha256,
            track_id=track_id_for_upload(upload_id),
        )
        if not track.hls_key and track.content_type.startswith(AUDIO_PREFIX):
            jobs.submit(track.id)  # a background job: this answer does not wait for ffmpeg
        return _track_json(track)


def _track_routes(router: APIRouter, services: Services, access: Access, jobs: HlsJobs) -> None:
    """Tracks, streaming, downloads, share links and HLS playlists."""

    @router.get("/api/v1/hls/status", tags=["playback"])
    def hls_status() -> dict[str, Any]:
        """Whether HLS renditions can be cut here (ffmpeg) and each job's progress.

        The demo page polls it while jobs run: ``message`` says in words what is going
        on (``ffmpeg`` missing, or how many renditions are left), ``jobs`` maps a track
        id to ``{"state": "queued"|"running"|"ready"|"failed", "detail": ...}``.
        """
        return jobs.status()

    @router.get("/api/v1/tracks", tags=["tracks"])
    def list_tracks() -> list[dict[str, Any]]:
        """Every track, newest first."""
        with Session(services.engine, expire_on_commit=False) as session:
            tracks = session.scalars(sa.select(Track).order_by(Track.created_at.desc()).limit(500))
            return [_track_json(t) for t in tracks]

    @router.get("/api/v1/tracks/{track_id}", tags=["tracks"])
    def track_detail(track_id: TrackId) -> dict[str, Any]:
        """One track."""
        return _track_json(get_track(services, track_id))

    @router.get(
        "/api/v1/tracks/{track_id}/stream",
        status_code=302,
        tags=["playback"],
        response_class=RedirectResponse,
    )
    async def stream(track_id: TrackId, principal: Caller) -> Response:
        """302 to the CDN-signed URL (or the storage's presigned URL as a fallback).

        Only for the track's buyers, its owner and admins (anyone when it is free). The
        caller's cookie is checked by HMAC and the track's facts come from memory: no
        database round trip on the hot path; misses are read off the event loop.
        """
        track = access.cached_track(track_id)
        if track is None:
            track = await run_in_threadpool(access.load_track, track_id)
        if not access.decided(principal, track):
            if principal is None:
                raise ClientError(401, "log in to play this track")
            if not await run_in_threadpool(access.bought, principal.user_id, track.id):
                raise ClientError(403, "buy this track to play it")
        resolution = services.resolver.resolve(track.key)
        services.metrics.playback.labels(resolution.source).inc()
        return RedirectResponse(
            resolution.url, status_code=302, headers={**NO_STORE, "Vary": "Range"}
        )

    @router.get(
        "/api/v1/tracks/{track_id}/download",
        status_code=302,
        tags=["playback"],
        response_class=RedirectResponse,
    )
    def download(track_id: TrackId, principal: Caller) -> Response:
        """302 to a presigned URL that downloads as an attachment named after the track."""
        access.require_play(principal, track_id)
        track = get_track(services, track_id)
        suffix = Path(track.storage_key or "").suffix
        url = services.storage.presign_get(
            track.storage_key or "",
            expires_in=600,
            download_filename=f"{track.title}{suffix}",
            content_type=track.content_type,
        )
        services.metrics.playback.labels("download").inc()
        return RedirectResponse(url, status_code=302, headers=NO_STORE)

    @router.get("/api/v1/tracks/{track_id}/link", tags=["playback"])
    def share_link(
        track_id: TrackId,
        principal: User,
        expires_in: Annotated[int, Query(ge=1, le=7 * 86400)] = 3600,
    ) -> dict[str, Any]:
        """A private link valid ``expires_in`` seconds (the storage's presigned URL).

        Only the track's owner shares it: whoever holds the link plays without an account.
        """
        track = get_track(services, track_id)
        if track.owner_id != principal.user_id:
            raise ClientError(403, "only the track's owner makes share links")
        url = services.storage.presign_get(
            track.storage_key or "", expires_in=expires_in, content_type=track.content_type
        )
        return {"url": url, "expires_at": int(time.time()) + expires_in}

    @router.get(
        "/api/v1/tracks/{track_id}/hls", tags=["playback"], response_class=PlainTextResponse
    )
    def hls_playlist(track_id: TrackId, principal: Caller) -> Response:
        """The track's HLS playlist, every URI signed by veza-cdn's playlist signer.

        Segment lines and ``URI="…"`` attributes alike, with the CDN's signer (one
        directory token) or, with the CDN off, the storage's presigned URLs.
        """
        access.require_play(principal, track_id)
        track = get_track(services, track_id)
        if not track.hls_key:
            raise ClientError(404, f"track {track_id!r} has no HLS rendition")
        with services.storage.open(track.hls_key) as reader:
            text = reader.read().decode("utf-8")
        if services.cdn.is_enabled:
            signed = services.cdn.sign_playlist(text, playlist_key=track.hls_key)
        else:
            signed = sign_stored_playlist(
                text, playlist_key=track.hls_key, storage=services.storage
            )
        return Response(
            signed,
            media_type="application/vnd.apple.mpegurl",
            headers={"Cache-Control": "private, max-age=30"},
        )


def _serve_object(
    services: Services,
    request: Request,
    key: str,
    *,
    content_type: str | None,
    disposition: str | None,
    cache_control: str,
) -> Response:
    storage = services.storage
    info = storage.stat(key)
    answer = answer_range(request.headers.get("range"), info.size)
    headers = {**answer.headers, "Cache-Control": cache_control}
    if disposition:
        headers["Content-Disposition"] = disposition
    if answer.status == 416:
        return Response(status_code=416, headers=headers)
    media = (
        content_type
        or info.content_type
        or mimetypes.guess_type(key)[0]
        or "application/octet-stream"
    )
    if request.method == "HEAD":
        return Response(status_code=answer.status, headers=headers, media_type=media)

    def body() -> Iterator[bytes]:
        with storage.open(key, byte_range=answer.byte_range) as reader:
            while chunk := reader.read(CHUNK):
                yield chunk

    return StreamingResponse(body(), status_code=answer.status, headers=headers, media_type=media)


def _local_files(router: APIRouter, services: Services) -> None:
    storage = services.storage
    signer = storage.signer if isinstance(storage, LocalStorage) else None
    if signer is None:  # served by the storage's own presigned URLs instead
        return

    @router.api_route(
        "/files/{key:path}", methods=["GET", "HEAD"], tags=["playback"], include_in_schema=False
    )
    def local_file(key: str, request: Request) -> Response:
        """A locally signed URL: verified, then served with Range support (206/416)."""
        query = dict(request.query_params.items())
        try:
            grant = signer.verify(key, query)
        except StorageError as exc:  # SignatureError, or a key the storage refuses: a 403
            return JSONResponse(
                {"error": {"type": "link_invalid", "message": str(exc)}},
                status_code=403,
                headers=NO_STORE,
            )
        disposition = None
        if grant.download_filename:
            disposition = content_disposition(grant.download_filename)
        try:
            return _serve_object(
                services,
                request,
                grant.key,
                content_type=grant.content_type,
                disposition=disposition,
                cache_control="private, max-age=300",
            )
        except ObjectNotFoundError:
            return JSONResponse(
                {"error": {"type": "not_found", "message": "no such object"}}, status_code=404
            )


def _origin(router: APIRouter, services: Services) -> None:
    @router.get("/origin/{key:path}", include_in_schema=False)
    def origin(key: str, request: Request) -> Response:
        """What the CDN edge pulls on a miss; only the edge's secret header gets in."""
        if not secret_matches(
            request.headers.get(ORIGIN_SECRET_HEADER), services.config.origin_secret.reveal()
        ):
            return Response("403 Forbidden\n", status_code=403, media_type="text/plain")
        try:
            cache_control = cache_control_for(key)
        except UnknownMediaTypeError:  # not a streaming object: cached like media
            cache_control = "public, max-age=86400"
        try:
            return _serve_object(
                services,
                request,
                key,
                content_type=None,
                disposition=None,
                cache_control=cache_control,
            )
        except ObjectNotFoundError:
            return Response("404 Not Found\n", status_code=404, media_type="text/plain")
