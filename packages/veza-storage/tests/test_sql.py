"""Track columns and the SQL session store, on SQLite and PostgreSQL."""

import hashlib
import os
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from veza_storage import ResumableUploads, UploadSession
from veza_storage.sql import SQLUploadSessionStore, StorageColumnsMixin


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    yield engine
    with engine.begin() as connection:
        for table in ("tracks", "veza_upload_sessions"):
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


class Base(DeclarativeBase):
    pass


class Track(StorageColumnsMixin, Base):
    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))


def test_columns_defaults_check_and_partial_index(engine):
    Base.metadata.create_all(engine)
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("tracks")}
    assert columns["storage_backend"]["nullable"] is False
    assert columns["storage_backend"]["type"].length == 16
    assert columns["storage_key"]["nullable"] is True
    assert columns["storage_key"]["type"].length == 512
    with Session(engine) as session:
        session.add(Track(title="local by default"))
        session.commit()
        assert session.scalar(sa.select(Track.storage_backend)) == "local"
    with engine.begin() as connection:  # the server default too, for rows the ORM did not write
        connection.execute(sa.text("INSERT INTO tracks (id, title) VALUES (99, 'raw')"))
        assert (
            connection.scalar(sa.text("SELECT storage_backend FROM tracks WHERE id = 99"))
            == "local"
        )
    for bad in ("S3", "minio", ""):
        with Session(engine) as session:
            session.add(Track(title="bad", storage_backend=bad))
            with pytest.raises(IntegrityError):
                session.commit()
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            sql = connection.scalar(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'ix_tracks_storage_backend_s3'")
            )
    else:
        with engine.connect() as connection:
            sql = connection.scalar(
                sa.text(
                    "SELECT indexdef FROM pg_indexes"
                    " WHERE indexname = 'ix_tracks_storage_backend_s3'"
                )
            )
    assert sql is not None
    assert "WHERE" in sql.upper()
    assert "s3" in sql


def test_partial_index_serves_the_migration_progress_query_on_postgresql(postgres_url):
    engine = sa.create_engine(postgres_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO tracks (id, title, storage_backend) "
                "SELECT g, 't', CASE WHEN g % 100 = 0 THEN 's3' ELSE 'local' END "
                "FROM generate_series(1, 20000) g"
            )
        )
        connection.execute(sa.text("ANALYZE tracks"))
        plan = "\n".join(
            connection.scalars(
                sa.text("EXPLAIN SELECT count(*) FROM tracks WHERE storage_backend = 's3'")
            )
        )
    Base.metadata.drop_all(engine)
    engine.dispose()
    assert "ix_tracks_storage_backend_s3" in plan


def test_session_store_compare_and_set(engine):
    store = SQLUploadSessionStore(engine)
    store.create_table()
    session = UploadSession(
        id="s1",
        key="k",
        total_size=10,
        chunk_size=65536,
        content_type="x/y",
        sha256=None,
        metadata={},
        created_at=0,
        expires_at=100,
    )
    store.create(session)
    loaded = store.get("s1")
    assert loaded == session
    loaded.chunks[0] = "a" * 64
    loaded.version = 1
    assert store.replace(loaded, expected_version=0)
    stale = session.copy()
    stale.version = 1
    assert not store.replace(stale, expected_version=0)  # someone else already moved it on
    assert store.get("s1").chunks == {0: "a" * 64}
    assert [s.id for s in store.expired(101)] == ["s1"]
    assert store.expired(99) == []
    store.delete("s1")
    assert store.get("s1") is None


def test_resumable_uploads_through_the_sql_store_with_concurrent_chunks(engine, local_storage):
    store = SQLUploadSessionStore(engine)
    store.create_table()
    uploads = ResumableUploads(local_storage, store)
    data = os.urandom(8 * 64 * 1024)
    session = uploads.begin(
        "sql/t.bin",
        len(data),
        chunk_size=64 * 1024,
        content_type="x/y",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    threads = [
        threading.Thread(
            target=uploads.put_chunk,
            args=(session, i),
            kwargs={"data": data[i * 65536 : (i + 1) * 65536]},
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert uploads.status(session).ready
    assert uploads.complete(session).sha256 == hashlib.sha256(data).hexdigest()
