"""The application's own tables: tracks, users, purchases, upload owners, upload sessions.

The ledger's tables come from veza-ledger's migrations (``veza-ledger db upgrade``); the
app's two tables are small enough to be created with ``create_all`` at start-up. A real
application would put them in its own Alembic history; veza-ledger's version table is
separate, so both histories live side by side.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from veza_storage.sql import StorageColumnsMixin, upload_sessions_table


class AppBase(DeclarativeBase):
    """The application's declarative base (its own metadata, apart from the ledger's)."""

    metadata = sa.MetaData()


class Track(StorageColumnsMixin, AppBase):
    """A track: who owns it, what it costs, and where its bytes are."""

    __tablename__ = "app_tracks"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    owner_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    price: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    hls_key: Mapped[str | None] = mapped_column(sa.String(512))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=lambda: dt.datetime.now(dt.UTC)
    )


class User(AppBase):
    """An account: its role decides what it may do (see ``_auth``)."""

    __tablename__ = "app_users"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    demo: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=lambda: dt.datetime.now(dt.UTC)
    )


class Purchase(AppBase):
    """Which track an order buys: the ledger's order knows the money, not the track."""

    __tablename__ = "app_purchases"

    order_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    track_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    buyer_id: Mapped[str] = mapped_column(sa.String(64), index=True)


class UploadOwner(AppBase):
    """Who began an upload session: only they (or an admin) may send its chunks."""

    __tablename__ = "app_upload_owners"

    upload_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(sa.String(64))


class ShareLink(AppBase):
    """A track's share link: whoever holds its token plays the track without an account.

    Only the token's SHA-256 is stored (the URL is shown once, when it is made), so a
    copy of the database does not hand out working links. Revoking sets ``revoked_at``;
    the row stays so the owner's list shows what was shared and when it stopped.
    """

    __tablename__ = "app_share_links"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    track_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    owner_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=lambda: dt.datetime.now(dt.UTC)
    )
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    uses: Mapped[int] = mapped_column(sa.Integer, default=0)


UPLOAD_SESSIONS = upload_sessions_table(AppBase.metadata, "app_upload_sessions")


def create_app_tables(engine: sa.Engine) -> None:
    """Create the app's tables if missing (idempotent)."""
    AppBase.metadata.create_all(engine)
