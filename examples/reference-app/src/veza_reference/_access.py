"""Who may play a track: its owner, admins, its buyers (a paid order), anyone if it is free.

Playback is the hot path, so what it needs is kept in memory for a short while: a
track's key, owner and price (they do not change; a deleted track answers for at most
``ttl`` seconds, to a URL that serves nothing), and each (buyer, track) grant once a
paid order proved it. A refusal is never cached, so a buyer whose payment just landed
plays at once; a full refund stops new redirects after at most ``ttl`` seconds.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veza_reference._db import Purchase, Track
from veza_reference._errors import ClientError
from veza_reference._sessions import Principal

if TYPE_CHECKING:
    from veza_reference._services import Services

ENTITLED = frozenset({"paid", "partially_refunded"})


@attrs.frozen
class TrackInfo:
    """What playback needs of a track."""

    id: str
    key: str
    owner_id: str
    price: int


class Access:
    """Track facts and purchase grants, cached ``ttl`` seconds (``size`` entries each)."""

    def __init__(self, services: Services, *, ttl: float = 60.0, size: int = 10_000) -> None:
        """Read through ``services`` (the app's tables and the ledger)."""
        self.services = services
        self.ttl = ttl
        self.size = size
        self._tracks: collections.OrderedDict[str, tuple[float, TrackInfo]] = (
            collections.OrderedDict()
        )
        self._grants: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()
        self._lock = threading.Lock()  # writers run in the threadpool, several at once

    def __repr__(self) -> str:
        return f"Access(ttl={self.ttl}, size={self.size})"

    def _keep(self, cache: collections.OrderedDict[Any, Any], key: object, value: object) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > self.size:
                cache.popitem(last=False)

    def cached_track(self, track_id: str) -> TrackInfo | None:
        """The track's facts if fresh in memory."""
        item = self._tracks.get(track_id)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def load_track(self, track_id: str) -> TrackInfo:
        """Read the track (404 if there is none) and keep its facts. Blocking."""
        with Session(self.services.engine) as session:
            track = session.get(Track, track_id)
            if track is None or not track.storage_key:
                raise ClientError(404, f"no track {track_id!r}")
            info = TrackInfo(track.id, track.storage_key, track.owner_id, track.price)
        self._keep(self._tracks, track_id, (time.monotonic() + self.ttl, info))
        return info

    def decided(self, principal: Principal | None, track: TrackInfo) -> bool | None:
        """``True``/``False`` when memory decides; ``None`` when the purchases must be read.

        Raises:
            ClientError: 401 for an anonymous caller of a priced track.
        """
        if track.price == 0:
            return True
        if principal is None:
            raise ClientError(401, "log in to play this track (it is for sale)")
        if principal.is_admin or principal.user_id == track.owner_id:
            return True
        expires = self._grants.get((principal.user_id, track.id))
        if expires is not None and expires >= time.monotonic():
            return True
        return None

    def bought(self, user_id: str, track_id: str) -> bool:
        """Whether ``user_id`` holds a paid order for the track (and remember it). Blocking."""
        with Session(self.services.engine) as session:
            orders = list(
                session.scalars(
                    sa.select(Purchase.order_id).where(
                        Purchase.buyer_id == user_id, Purchase.track_id == track_id
                    )
                )
            )
        for order_id in orders:
            if self.services.ledger.orders.get(order_id).status in ENTITLED:
                self._keep(self._grants, (user_id, track_id), time.monotonic() + self.ttl)
                return True
        return False

    def require_play(self, principal: Principal | None, track_id: str) -> TrackInfo:
        """The track if the caller may play it; 401/403/404 otherwise. Blocking."""
        track = self.cached_track(track_id) or self.load_track(track_id)
        if self.decided(principal, track) or (
            principal is not None and self.bought(principal.user_id, track.id)
        ):
            return track
        raise ClientError(403, "buy this track to play it")

    def record_purchase(self, order_id: str, track_id: str, buyer_id: str) -> None:
        """Remember which track an order buys (before the payment is started). Blocking.

        Idempotent: the same ``order_id`` for the same buyer and track again (a retried
        request under one ``Idempotency-Key``) is a no-op, so the retry can go on to
        ``start_payment``, which reuses the order. The same id for another buyer or
        track is a 409.
        """
        try:
            with Session(self.services.engine) as session, session.begin():
                session.add(Purchase(order_id=order_id, track_id=track_id, buyer_id=buyer_id))
        except IntegrityError:
            with Session(self.services.engine) as session:
                known = session.get(Purchase, order_id)
            if known is None or (known.track_id, known.buyer_id) != (track_id, buyer_id):
                raise ClientError(
                    409, "this idempotency key was already used for another purchase"
                ) from None
